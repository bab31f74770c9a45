"""Run under torchrun by tests/training/test_distributed.py (not a test module): `fit` on every rank, then
this rank's weights and history to <out>/rank<r>.pt.

    python ddp_worker.py <out> fit <variant>   one run of the variant on 512 noise images
    python ddp_worker.py <out> stream          the final variant with train.stream false, then true, on the
                                               prepared split in <out>/prepared (read memory-mapped)
"""

import sys
from pathlib import Path

import torch

from dcgan_lab.core.params import parse_params
from dcgan_lab.data.splits import load_split
from dcgan_lab.training import distributed
from dcgan_lab.training.loop import fit, history_frame
from helpers import random_images, raw_params_file, shrink, spec, with_train

CPU = torch.device("cpu")


def result(run, world) -> dict:
    return {"g": run.g.state_dict(), "d": run.d.state_dict(), "ema": run.ema.model.state_dict(),
            "history": history_frame(run).to_dict("list"), "world": world.size}


def main(out: Path, mode: str, variant: str = "final") -> None:
    params = parse_params(shrink(raw_params_file()))
    params = with_train(params, max_steps=6, checkpoint_every=3, eval_every=0)
    world = distributed.init("cpu")
    if mode == "fit":
        labels = torch.arange(512) % 10  # a conditional variant's classes; the others ignore them
        saved = result(fit(spec(params, variant, seed=0, n_classes=10), random_images(512), CPU, world=world,
                           labels=labels), world)
    elif mode == "stream":  # the same 6 steps (4 per epoch per rank) with stream false, then true
        images = load_split(out / "prepared", "train", mmap=True)[0]
        saved = {stream: result(fit(spec(with_train(params, stream=stream), "final", seed=0), images, CPU,
                                    world=world), world)
                 for stream in (False, True)}
    else:
        raise SystemExit(f"unknown mode {mode!r}: fit or stream")
    torch.save(saved, out / f"rank{world.rank}.pt")
    distributed.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]), *sys.argv[2:])
