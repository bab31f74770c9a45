"""train.on_divergence: rollback: back to the last checkpoint with both learning rates halved, at most
train.max_rollbacks times; what the rollbacks changed carries over."""

from __future__ import annotations

import pytest
import torch

from dcgan_lab.training.guard import Diverged
from dcgan_lab.training.distributed import World
from dcgan_lab.training.loop import fit, history_frame, snapshot
from dcgan_lab.training.state import new_state
from dcgan_lab.training.rollback import Rollback
from dcgan_lab.training.speed import Precision
from helpers import calling, spec, with_train

CPU = torch.device("cpu")


def test_rollback_recovers_from_a_nan_with_halved_learning_rates(params, images):
    p = with_train(params, max_steps=12, checkpoint_every=5, inject_nan_at=8, on_divergence="rollback")
    rollbacks = []
    run = fit(spec(p, "baseline"), images, CPU,
              hooks=calling(on_rollback=lambda exc, r: rollbacks.append((exc.step, r.step, r.lr_scale))))
    assert rollbacks == [(8, 5, 0.5)]  # NaN seen at step 8, back to the checkpoint at 5, lrs halved
    assert run.step == 12 and run.rollbacks == 1
    assert [g["lr"] for g in run.opt_d.param_groups] == [p.train.lr_d / 2]
    assert list(history_frame(run)["step"]) == list(range(1, 13))
    assert all(torch.isfinite(w).all() for w in run.d.state_dict().values() if w.is_floating_point())


def test_rollback_gives_up_after_max_rollbacks(params, images):
    p = with_train(params, lr_g=1.0e30, lr_d=1.0e30, on_divergence="rollback", max_rollbacks=2)
    seen = []
    with pytest.raises(Diverged, match="step 1"):
        fit(spec(p, "baseline"), images, CPU, hooks=calling(on_rollback=lambda e, r: seen.append(r.lr_scale)))
    assert seen == [0.5, 0.25]


def test_restore_puts_back_the_kept_snapshot_and_keeps_the_count_the_scale_and_the_time(params):
    prec = Precision(None, "cpu")
    run = new_state(spec(params, "baseline", seed=0), CPU)
    kept = snapshot(run, prec, World())
    rollback = Rollback(enabled=True, max_rollbacks=2, snapshot=kept)
    with torch.no_grad():
        for w in run.g.parameters():
            w.add_(1.0)  # training went on past the snapshot
    run.step, run.seconds = 9, 3.0
    rollback.restore(Diverged(9, "loss_d is nan"), run, prec, seconds=4.5)
    assert run.step == 0 and all(torch.equal(w, kept["g"][k]) for k, w in run.g.state_dict().items())
    assert (run.rollbacks, run.lr_scale, run.seconds) == (1, 0.5, 4.5)
    assert [g["lr"] for g in run.opt_g.param_groups] == [params.train.lr_g / 2]
    rollback.restore(Diverged(3, "loss_g is inf"), run, prec, seconds=5.0)
    assert (run.rollbacks, run.lr_scale) == (2, 0.25)
    with pytest.raises(Diverged, match="step 4"):  # max_rollbacks used up: the divergence stands
        rollback.restore(Diverged(4, "loss_d is nan"), run, prec, seconds=6.0)
    with pytest.raises(Diverged, match="step 1"):  # on_divergence: stop
        Rollback(False, 3, kept).restore(Diverged(1, "loss_d is nan"), run, prec, seconds=0.0)
