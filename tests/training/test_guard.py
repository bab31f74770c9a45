"""The divergence guard: a non-finite loss or a saturated D stops training at the step it happened,
with the reason; the last good checkpoint is what the run keeps."""

from __future__ import annotations

import math

import pytest
import torch

from dcgan_lab.core.errors import UserError
from dcgan_lab.training.guard import Diverged, DivergenceGuard
from dcgan_lab.training.loop import fit
from helpers import calling, spec, with_train

CPU = torch.device("cpu")


def test_injected_nan_stops_with_the_step_and_keeps_the_last_good_checkpoint(params, images):
    p = with_train(params, max_steps=12, checkpoint_every=5, inject_nan_at=8, log_every=3)
    snapshots = []
    with pytest.raises(Diverged, match=r"^training diverged at step 8: loss_d is nan$"):
        fit(spec(p, "baseline"), images, CPU, hooks=calling(on_checkpoint=snapshots.append))
    assert [s["step"] for s in snapshots] == [5]
    assert all(torch.isfinite(w).all() for w in snapshots[0]["d"].values() if w.is_floating_point())


def test_lr_bomb_stops_at_the_first_step(params, images):
    p = with_train(params, lr_g=1.0e30, lr_d=1.0e30)
    with pytest.raises(Diverged, match=r"step 1: loss_\w is nan"):
        fit(spec(p, "final"), images, CPU)


def test_saturated_discriminator_stops_training(params, images):
    # G barely moves and D learns fast: D(x) -> 1, D(G(z)) -> 0 within a few dozen steps.
    p = with_train(params, lr_g=1.0e-12, lr_d=0.5, max_steps=32, collapse_patience=4, saturation=1.0e-3)
    with pytest.raises(Diverged, match=r"D saturated for 4 steps \(D\(x\)=.*G gets no gradient"):
        fit(spec(p, "baseline"), images, CPU)


def test_guard_counts_consecutive_saturated_steps_only():
    guard = DivergenceGuard(patience=3, eps=0.01)
    row = {"loss_d": 0.1, "loss_g": 5.0, "d_real": 0.999, "d_fake": 0.001, "d_fake_after": 0.001}
    ok = {**row, "d_real": 0.7}
    guard.check([1, 2, 3, 4], [row, row, ok, row])  # 2, then reset, then 1
    with pytest.raises(Diverged, match="step 6"):
        guard.check([5, 6], [row, row])
    with pytest.raises(Diverged, match="loss_g is inf"):
        DivergenceGuard(0, 0.01).check([1], [{**ok, "loss_g": math.inf}])


def test_reset_forgets_the_count_and_patience_0_never_stops_for_saturation():
    guard = DivergenceGuard(patience=2, eps=0.01)
    row = {"loss_d": 0.1, "loss_g": 5.0, "d_real": 0.001, "d_fake": 0.999, "d_fake_after": 0.5}  # pinned the wrong way
    guard.check([1], [row])
    guard.reset()  # after a rollback the count starts over
    guard.check([2], [row])
    with pytest.raises(Diverged, match=r"^training diverged at step 3: D saturated for 2 steps"):
        guard.check([3], [row])
    DivergenceGuard(patience=0, eps=0.01).check(list(range(1, 101)), [row] * 100)


def test_divergence_is_a_user_error_with_the_step_and_the_reason():
    exc = Diverged(7, "loss_d is nan")
    assert isinstance(exc, UserError)  # the train stage prints it as one line and exits 2
    assert (str(exc), exc.step, exc.reason) == ("training diverged at step 7: loss_d is nan", 7, "loss_d is nan")
