"""Where the training loop's batches come from: the whole set on the device, or streamed from the host.

Both feeders hand out the same batch for the same order and step: the images at
`order[i * B : (i + 1) * B]`, as uint8 (B, C, S, S) on the device. So streaming changes where the
gather runs, never which images a step sees: on the CPU both give bitwise equal runs. `fit` calls
`set_order` at every epoch start, resume and rollback, then `batch(i)` for each step i of the epoch.
"""

from __future__ import annotations

import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ..core.errors import ConfigError
from .distributed import World


class OnDevice:
    """The whole training set on the device, a batch is an index gather there: the fast path while it fits.
    On the CPU a memory-mapped set is used in place (the page cache holds it once, no second copy)."""

    def __init__(self, images: torch.Tensor, device: torch.device, batch_size: int):
        self.images, self.device, self.batch_size = images.to(device), device, batch_size
        self.order: torch.Tensor | None = None

    def set_order(self, order: torch.Tensor) -> None:  # (n,) int64 indices on the host
        self.order = order.to(self.device)

    def batch(self, i: int) -> torch.Tensor:
        # index_select, not images[index]: the same bits, and much faster for these row gathers on a CPU
        return torch.index_select(self.images, 0, self.order[i * self.batch_size : (i + 1) * self.batch_size])

    def close(self) -> None:
        pass


class Streamed:
    """The set stays on the host (memory-mapped: read from disk on demand). One background thread gathers
    the next `ahead` batches of the epoch's order while the step runs; on CUDA into pinned memory, so the
    copy to the device does not block the host."""

    def __init__(self, images: torch.Tensor, device: torch.device, batch_size: int, ahead: int = 4):
        self.images, self.device, self.batch_size, self.ahead = images, device, batch_size, ahead
        self.pixels = images.numpy()  # a view of the same (mapped) memory
        self.pin = device.type == "cuda"
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dcgan-lab-batches")
        self.pending: dict[int, Future] = {}  # step -> its batch, being gathered or ready
        self.order: torch.Tensor | None = None

    def set_order(self, order: torch.Tensor) -> None:
        for future in self.pending.values():  # gathers of the old order are dropped, not waited for
            future.cancel()
        self.pending, self.order = {}, order

    def _gather(self, order: torch.Tensor, i: int) -> torch.Tensor:
        index = order[i * self.batch_size : (i + 1) * self.batch_size]
        out = torch.empty((len(index), *self.images.shape[1:]), dtype=self.images.dtype, pin_memory=self.pin)
        # numpy's take, not torch.index_select: it runs on this thread alone (index_select would start a second
        # OpenMP team beside the step's, slowing it: benchmarks/RESULTS.md, "Streaming") and releases the GIL.
        # mode="clip" skips numpy's buffered copy; the indices are a permutation's, never out of range.
        np.take(self.pixels, index.numpy(), axis=0, out=out.numpy(), mode="clip")
        return out

    def batch(self, i: int) -> torch.Tensor:
        steps = len(self.order) // self.batch_size  # in this epoch: the reads never run past its end
        for j in range(i, min(i + 1 + self.ahead, steps)):
            if j not in self.pending:
                self.pending[j] = self.pool.submit(self._gather, self.order, j)
        return self.pending.pop(i).result().to(self.device, non_blocking=True)

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


def free_bytes(device: torch.device) -> int | None:
    """Memory free for the training set: the GPU's free memory, or the host's MemAvailable (None: unknown)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def feeder(images: torch.Tensor, device: torch.device, batch_size: int, stream: bool | None,
           announce: bool = True) -> OnDevice | Streamed:
    """The feeder `train.stream` asks for; null streams when the set is over half the device's free
    memory (room is left for the models, activations and the rest of the process), and says so once."""
    if stream is None:
        free = free_bytes(device)
        stream = free is not None and images.nbytes > free / 2
        if stream and announce:
            print(f"train.stream: streaming batches from the memory-mapped training set: its "
                  f"{images.nbytes / 2**30:.2f} GiB are more than half of the {free / 2**30:.2f} GiB free on "
                  f"{device} (set train.stream: false to load it whole)", file=sys.stderr)
    return Streamed(images, device, batch_size) if stream else OnDevice(images, device, batch_size)


def check_batch_size(batch_size: int, n: int, world: World, d_steps: int = 1) -> None:
    """A step's batches must fit in the training set (in each rank's share of it under torchrun)."""
    per_rank = f", {n // world.size} per rank" if world.distributed else ""
    if batch_size > n // world.size:
        raise ConfigError(f"train.batch_size: {batch_size} is larger than the training set ({n} images{per_rank})")
    if batch_size * d_steps > n // world.size:
        raise ConfigError(f"train.d_steps: {d_steps} D updates of {batch_size} images per step need "
                          f"{batch_size * d_steps}; the training set has {n} images{per_rank}")


class Shard:
    """This rank's batches: its share of every epoch's permutation (all of it with one process), gathered
    by the feeder `train.stream` asks for. `set_order` is called at each epoch start, resume and rollback.
    With `labels` (conditional variants), batch i's labels too: all labels sit on the device (8 bytes an
    image), gathered by the same order."""

    def __init__(self, images: torch.Tensor, device: torch.device, batch_size: int, stream: bool | None,
                 world: World, labels: torch.Tensor | None = None, d_steps: int = 1):
        n = images.shape[0]
        self.world, self.size, self.batch_size = world, n // world.size, batch_size
        check_batch_size(batch_size, n, world, d_steps)
        self.batches_per_epoch = self.size // batch_size
        self.feed = feeder(images, device, batch_size, stream, announce=world.is_main)
        self.all_labels = None if labels is None else labels.to(device)
        self.order: torch.Tensor | None = None  # this rank's order, on the device (for the labels)

    def set_order(self, order: torch.Tensor | None) -> None:
        if order is not None:
            mine = order[self.world.rank :: self.world.size][: self.size]
            self.feed.set_order(mine)
            if self.all_labels is not None:
                self.order = mine.to(self.all_labels.device)

    def batch(self, i: int) -> torch.Tensor:
        return self.feed.batch(i)

    def labels(self, i: int) -> torch.Tensor:
        """(B,) int64 labels of batch i, on the device."""
        return torch.index_select(self.all_labels, 0, self.order[i * self.batch_size : (i + 1) * self.batch_size])

    def close(self) -> None:
        self.feed.close()
