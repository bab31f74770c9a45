"""Stage prepare: params `data` -> <out>/{train,test[,val]}.pt + manifest.json."""

import argparse
from pathlib import Path

from dcgan_lab.core.stage import run_stage


def main(params, args):
    # Imported here, after run_stage has checked params.yaml: torch and torchvision take seconds to import,
    # and a typo in the params should not wait for them.
    from dcgan_lab.data.prepare import prepare

    manifest = prepare(params.data, Path(args.out))
    sizes = ", ".join(f"{k} {v['n']}" for k, v in manifest["splits"].items())
    print(f"prepared {manifest['dataset']} at {params.data.image_size}px: {sizes} -> {args.out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="the prepared data directory, e.g. data/prepared")
    run_stage(main, parser)
