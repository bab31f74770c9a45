"""A scoring stage's process settings (evaluation/process.py): freed memory is reused; inside one_blas_thread NumPy's
BLAS runs on one thread, torch's threads stay as they were, and our per-class scores and FID∞ do not change."""

import subprocess
import sys

import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from dcgan_lab.evaluation.fid_infinity import fid_infinity
from dcgan_lab.evaluation.per_class import intra_diversity, per_class_scores
from dcgan_lab.evaluation.process import one_blas_thread

from helpers import ROOT

FAULTS = """
import resource, sys, torch
from dcgan_lab.evaluation.process import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(32):
    x = torch.ones(16 * 2**20)  # 64 MiB: above glibc's threshold for a mapping of its own
    del x
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

def page_faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_freed_blocks_are_reused_not_faulted_in_again():
    _, plain = page_faults("plain")
    kept, faults = page_faults("keep")
    assert kept == "True"
    if plain < 32 * 16384 / 2:  # 4 KiB pages: 16,384 per block
        pytest.skip(f"{plain} page faults for 32 fresh 64 MiB blocks: the kernel maps them with huge pages here")
    # Without it every 64 MiB block is fresh pages; with it the heap's blocks come back (here: 131k of 524k faults).
    assert faults < plain / 2, (faults, plain)


def blas_threads() -> set[int]:
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_one_blas_thread_inside_the_block_and_as_before_after_it():
    with threadpool_limits(limits=2, user_api="blas"):
        before, torch_threads = blas_threads(), torch.get_num_threads()
        with one_blas_thread():
            assert blas_threads() == {1}
            assert torch.get_num_threads() == torch_threads  # torch's OpenMP pool is not a BLAS
        assert blas_threads() == before


def test_the_per_class_scores_and_fid_infinity_do_not_change_on_one_blas_thread():
    # The evaluation's sizes: 5,000 samples of 64 features in 10 classes against as many real ones.
    g = torch.Generator().manual_seed(0)
    fake, real = torch.randn(5000, 64, generator=g), torch.randn(5000, 64, generator=g) + 0.1
    classes, labels = torch.randint(0, 10, (5000,), generator=g), torch.randint(0, 10, (5000,), generator=g)

    def scores() -> tuple:
        return (per_class_scores(fake, real, classes, None, labels, 10),
                intra_diversity(fake, classes, real, labels, 10, 0), fid_infinity(fake, real, 0))

    with threadpool_limits(limits=2, user_api="blas"):
        many = scores()
    with one_blas_thread():
        one = scores()
    assert many == one
