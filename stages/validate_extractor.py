"""Stage validate_extractor: is the evaluation's feature space a FID space? The held-out val split made worse by
seven disturbances, level by level, scored against the evaluation's real split: FID must rise with every one, recall
must fall as modes go missing, and the features must not depend on the batch size -> <metrics> (JSON, keyed by
extractor) and <plots> (FID against the level). A failed check is a `warning:` line, not a failed stage."""

import argparse
import sys
from pathlib import Path

from dcgan_lab.core.stage import run_stage
from dcgan_lab.validation.checks import summary_line
from dcgan_lab.validation.extractor import validate_extractor_stage


def main(params, args):
    result = validate_extractor_stage(params, Path(args.data), Path(args.classifier), Path(args.metrics),
                                      Path(args.plots), Path(args.second_classifier) if args.second_classifier else None)
    for name, r in result["extractors"].items():
        for line in r["warnings"]:
            print(line, file=sys.stderr)
        print(summary_line(name, r, result["protocol"]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="the prepared data directory")
    parser.add_argument("--classifier", required=True, help="the classifier directory")
    parser.add_argument("--second-classifier", help="the second classifier's directory (evaluate.second_extractor)")
    parser.add_argument("--metrics", required=True, help="where extractor.json goes, e.g. metrics/extractor.json")
    parser.add_argument("--plots", required=True, help="where its figure goes, e.g. plots/extractor.png")
    run_stage(main, parser)
