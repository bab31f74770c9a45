"""Freed memory is reused in the process after keep_freed_memory(): large blocks stop costing a page fault per page."""

import subprocess
import sys

import pytest

from helpers import ROOT

FAULTS = """
import resource, sys, torch
from dcgan_lab.evaluation.memory import keep_freed_memory
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
