"""Run by tests/test_distributed.py under torchrun: fit() on every rank, then save this rank's weights."""

import sys
from dataclasses import replace
from pathlib import Path

import torch
import yaml

from conftest import ROOT, shrink
from dcgan_lab import distributed
from dcgan_lab.config import parse_params
from dcgan_lab.train import fit, history_frame

out, variant = Path(sys.argv[1]), sys.argv[2]
params = parse_params(shrink(yaml.safe_load((ROOT / "params.yaml").read_text())))
params = replace(params, train=replace(params.train, max_steps=6, checkpoint_every=3, eval_every=0))
world = distributed.init("cpu")
images = torch.randint(0, 256, (512, 1, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
run = fit(params, params.variant(variant), images, torch.device("cpu"), seed=0, world=world)
torch.save({"g": run.g.state_dict(), "d": run.d.state_dict(), "ema": run.ema.model.state_dict(),
            "history": history_frame(run).to_dict("list"), "world": world.size}, out / f"rank{world.rank}.pt")
distributed.shutdown()
