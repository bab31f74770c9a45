"""The speed switches of the training step: mixed precision, channels_last and torch.compile.

Each is a `train.*` param where null means "on for CUDA, off for CPU": on a GPU they pay (tensor
cores, fused kernels); on a CPU bf16 autocast and compilation cost more than they save at DCGAN sizes
(see benchmarks/RESULTS.md). channels_last pays on both (oneDNN prefers NHWC), so params.yaml sets it.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch

from ..core.config import TrainConfig


def _auto(flag: bool | None, device: torch.device) -> bool:
    return device.type == "cuda" if flag is None else flag


@dataclass
class Precision:
    """Autocast for the forward passes and, for fp16, one GradScaler per optimizer (D and G step apart)."""

    dtype: torch.dtype | None  # None: full fp32
    device_type: str
    scaler_d: torch.amp.GradScaler | None = None
    scaler_g: torch.amp.GradScaler | None = None

    def autocast(self):
        return torch.autocast(self.device_type, dtype=self.dtype) if self.dtype else nullcontext()

    def step(self, loss: torch.Tensor, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None) -> None:
        opt.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            opt.step()
        else:  # fp16: scale the loss so small gradients survive; skip the step if they overflowed
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

    def state_dict(self) -> dict:
        return {"d": self.scaler_d.state_dict() if self.scaler_d else None,
                "g": self.scaler_g.state_dict() if self.scaler_g else None}

    def load_state_dict(self, sd: dict) -> None:
        for scaler, key in ((self.scaler_d, "d"), (self.scaler_g, "g")):
            if scaler is not None and sd.get(key):
                scaler.load_state_dict(sd[key])


FP32 = Precision(None, "cpu")


def precision(train: TrainConfig, device: torch.device) -> Precision:
    """bf16 where the device supports it (no scaler needed), else fp16 with GradScalers."""
    if not _auto(train.amp, device):
        return Precision(None, device.type)
    if device.type == "cpu" or torch.cuda.is_bf16_supported():
        return Precision(torch.bfloat16, device.type)
    return Precision(torch.float16, device.type, torch.amp.GradScaler("cuda"), torch.amp.GradScaler("cuda"))


def channels_last(train: TrainConfig, device: torch.device) -> bool:
    return _auto(train.channels_last, device)


def maybe_compile(module: torch.nn.Module, train: TrainConfig, device: torch.device) -> torch.nn.Module:
    """torch.compile (inductor) the module the step calls; the uncompiled one is what gets saved."""
    return torch.compile(module) if _auto(train.compile, device) else module
