"""Signals as stop requests: the first SIGTERM or SIGINT is remembered for the loop to act on, a second one
raises at once; handlers are put back on exit; Interrupted says where the checkpoint is and exits 128+n."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from dcgan_lab.core.errors import Stopped
from dcgan_lab.training.interrupt import Interrupted, StopOnSignal


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_first_signal_is_a_request_and_the_second_raises_at_once(signum):
    before = signal.getsignal(signum)
    with StopOnSignal() as stop:
        assert stop() is None
        os.kill(os.getpid(), signum)  # a real signal, handled between bytecodes
        assert stop() == signum
        with pytest.raises(KeyboardInterrupt, match=f"second signal \\({signum.name}\\)"):
            os.kill(os.getpid(), signum)
            for _ in range(1000):  # give the handler a chance to run
                pass
    assert signal.getsignal(signum) is before


def test_interrupted_names_the_step_the_checkpoint_and_the_exit_code():
    exc = Interrupted(812, signal.SIGTERM, Path("checkpoints/final/seed0/state.pt"))
    assert isinstance(exc, Stopped) and exc.exit_code == 143
    assert str(exc) == ("SIGTERM at step 812; a resumable checkpoint of that step is in "
                        "checkpoints/final/seed0/state.pt: rerun `dvc repro` to continue from step 812")
    assert Interrupted(3, signal.SIGINT).exit_code == 130
