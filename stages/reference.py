"""Stage reference: the held-out real split scored against itself (FID/KID of its two halves, IS of real images)
-> <metrics>/reference.json, and its features in torch-fidelity's cache (--features), read by every evaluate@
stage, so no run's evaluation extracts the real split again."""

import argparse
from pathlib import Path

from dcgan_lab.core import paths
from dcgan_lab.core.stage import run_stage
from dcgan_lab.evaluation.reference import reference_stage


def main(params, args):
    reference = reference_stage(params, Path(args.data), Path(args.classifier), paths.EvalPaths(Path(args.metrics)),
                                Path(args.features), Path(args.second_classifier) if args.second_classifier else None)
    print(f"real data ({reference['real_split']}, halves of {reference['n_per_half']}): "
          f"FID {reference['fid_half_vs_half']:.3f}  KID {reference['kid_half_vs_half']:.4f}  "
          f"IS {reference['is_real']:.3f}; features cached in {args.features}")
    if "second" in reference:
        s = reference["second"]
        print(f"in the second space ({s['extractor']}): FID {s['fid_half_vs_half']:.3f}  KID {s['kid_half_vs_half']:.4f}  "
              f"IS {s['is_real']:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="the prepared data directory")
    parser.add_argument("--classifier", required=True, help="the classifier directory")
    parser.add_argument("--second-classifier", help="the second classifier's directory (evaluate.second_extractor)")
    parser.add_argument("--metrics", required=True, help="where reference.json goes")
    parser.add_argument("--features", required=True, help="where the real split's cached features go")
    run_stage(main, parser)
