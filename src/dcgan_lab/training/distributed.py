"""Data-parallel training through torchrun + DistributedDataParallel (PyTorch's engine, not ours).

`torchrun --nproc_per_node=N stages/train.py ...` starts N processes; each trains on its shard of
every epoch's permutation with `train.batch_size` images per step (global batch N x batch_size), DDP
all-reduces the gradients, so the weights stay identical on every rank. Rank 0 alone logs to MLflow and
writes checkpoints and outputs. The same path runs on CPUs with the gloo backend.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..core.errors import ConfigError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one rank: launched by torchrun with --nproc_per_node > 1."""
        return self.size > 1


def init(device_name: str) -> World:
    """Join the process group torchrun set up (if any): nccl with each rank on the GPU numbered by its
    LOCAL_RANK, or gloo on CPUs (train.device)."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return World()
    if device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available()):
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return World(dist.get_rank(), dist.get_world_size())


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class RealFake(nn.Module):
    """D on a real batch, then on a fake batch, in one forward. Under DDP that is one forward and one
    gradient all-reduce per D update; the two batches still pass batch norm separately."""

    def __init__(self, d: nn.Module):
        super().__init__()
        self.d = d

    def forward(self, real: torch.Tensor, fake: torch.Tensor, real_labels: torch.Tensor | None = None,
                fake_labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if real_labels is None:  # an unconditional D takes images alone
            return self.d(real), self.d(fake)
        return self.d(real, real_labels), self.d(fake, fake_labels)


def wrap(g: nn.Module, d: nn.Module, world: World, device: torch.device, sync_batch_norm: bool):
    """(G for the step, RealFake(D) for the D update): DDP-wrapped when there are several ranks."""
    pair = RealFake(d)
    if not world.distributed:
        return g, pair
    if sync_batch_norm:
        if device.type != "cuda":
            raise ConfigError("train.sync_batch_norm: true needs CUDA devices (torch's SyncBatchNorm); "
                              f"this run is on {device.type}; allowed here: false")
        g, pair = nn.SyncBatchNorm.convert_sync_batchnorm(g), nn.SyncBatchNorm.convert_sync_batchnorm(pair)
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(g, device_ids=ids), DistributedDataParallel(pair, device_ids=ids)


def mean(t: torch.Tensor, world: World) -> torch.Tensor:
    """The mean over ranks (every rank gets it), so all ranks take the same decisions from it."""
    if world.distributed:
        t = t.clone()
        dist.all_reduce(t)
        t /= world.size
    return t


def any_signal(signum: signal.Signals | None, world: World, device: torch.device) -> signal.Signals | None:
    """The signal any rank received (the highest number if several), on every rank, so all stop together."""
    flag = torch.tensor([int(signum or 0)], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    value = int(flag.item())
    return signal.Signals(value) if value else None


def gather(obj, world: World) -> list:
    """Every rank's `obj`, in rank order, on every rank."""
    if not world.distributed:
        return [obj]
    out = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def check_in_sync(module: nn.Module, world: World) -> None:
    """DDP keeps the replicas equal; check it cheaply (a checksum per rank) at every checkpoint."""
    if not world.distributed:
        return
    with torch.no_grad():
        total = sum(p.double().sum() for p in module.parameters()).reshape(1)
    sums = gather(total.item(), world)
    if any(s != sums[0] for s in sums):
        raise RuntimeError(f"DDP replicas out of sync: parameter sums per rank {sums}")
