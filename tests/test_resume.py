"""Resume, determinism, divergence guard and EMA, on the real training loop at tiny sizes."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from dcgan_lab.ema import EMA
from dcgan_lab.errors import CheckpointError
from dcgan_lab.guard import Diverged, DivergenceGuard
from dcgan_lab.models import Generator
from dcgan_lab.state import load_checkpoint, save_checkpoint
from dcgan_lab.train import Hooks, fit, gan_specs, history_frame

CPU = torch.device("cpu")


@pytest.fixture
def images():
    return torch.randint(0, 256, (512, 1, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def with_train(params, **changes):
    return replace(params, train=replace(params.train, **changes))


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("variant", ["baseline", "final"])  # final: augmentation draws from its own stream
def test_resumed_run_is_bitwise_equal_to_an_uninterrupted_one(params, images, variant):
    # 16 steps per epoch: checkpoints at 7 and 14 fall mid-epoch, the end crosses an epoch boundary.
    p = with_train(params, max_steps=20, checkpoint_every=7, eval_every=0)
    snapshots = []
    full = fit(p, p.variant(variant), images, CPU, seed=3, hooks=Hooks(on_checkpoint=snapshots.append))
    assert [s["step"] for s in snapshots] == [7, 14, 20]
    torch.manual_seed(12345)  # whatever the process did in between must not matter
    for snapshot in snapshots[:2]:
        resumed = fit(p, p.variant(variant), images, CPU, seed=3, resume=snapshot)
        assert same_weights(resumed.g.state_dict(), full.g.state_dict())
        assert same_weights(resumed.d.state_dict(), full.d.state_dict())
        assert same_weights(resumed.ema.model.state_dict(), full.ema.model.state_dict())
        assert same_weights(resumed.opt_g.state_dict()["state"][0], full.opt_g.state_dict()["state"][0])
        assert history_frame(resumed).equals(history_frame(full))


def test_best_generator_survives_a_resume(params, images):
    p = with_train(params, max_steps=20, checkpoint_every=10, eval_every=5)
    scores = iter([5.0, 1.0, 3.0, 4.0] * 2)  # best at step 10, found before the checkpoint
    snapshots = []
    fit(p, p.variant("baseline"), images, CPU, hooks=Hooks(on_eval=lambda s, g: next(scores),
                                                           on_checkpoint=snapshots.append))
    scores = iter([3.0, 4.0])
    resumed = fit(p, p.variant("baseline"), images, CPU, resume=snapshots[0],
                  hooks=Hooks(on_eval=lambda s, g: next(scores)))
    assert resumed.best["step"] == 10 and resumed.best["score"] == 1.0


def test_checkpoint_file_round_trip_changed_config_and_corrupt_file(params, images, tmp_path, capsys):
    p = with_train(params, max_steps=6, checkpoint_every=3, eval_every=0)
    path = tmp_path / "ckpt" / "state.pt"
    fit(p, p.variant("baseline"), images, CPU,
        hooks=Hooks(on_checkpoint=lambda s: save_checkpoint(path, "tag-a", s, {"mlflow_run_id": "r1"})))
    blob = load_checkpoint(path, "tag-a")
    assert blob["state"]["step"] == 6 and blob["meta"]["mlflow_run_id"] == "r1"
    assert not list(path.parent.glob(".*")), "no temp files are left beside the checkpoint"
    assert load_checkpoint(path, "tag-b") is None
    assert "another config, seed, data set or code version: starting fresh" in capsys.readouterr().err
    path.write_bytes(path.read_bytes()[:1000])  # truncated, as by a full disk
    with pytest.raises(CheckpointError, match=r"state\.pt: not a readable resumable checkpoint .*delete it"):
        load_checkpoint(path, "tag-a")


def test_deterministic_on_cpu_by_default(params, images):
    p = with_train(params, max_steps=8)
    a = fit(p, p.variant("improved"), images, CPU, seed=1)
    assert torch.are_deterministic_algorithms_enabled()
    b = fit(p, p.variant("improved"), images, CPU, seed=1)
    assert same_weights(a.g.state_dict(), b.g.state_dict()) and history_frame(a).equals(history_frame(b))


# --------------------------------------------------------------------------- divergence


def test_injected_nan_stops_with_the_step_and_keeps_the_last_good_checkpoint(params, images):
    p = with_train(params, max_steps=12, checkpoint_every=5, inject_nan_at=8, log_every=3)
    snapshots = []
    with pytest.raises(Diverged, match=r"^training diverged at step 8: loss_d is nan$"):
        fit(p, p.variant("baseline"), images, CPU, hooks=Hooks(on_checkpoint=snapshots.append))
    assert [s["step"] for s in snapshots] == [5]
    assert all(torch.isfinite(w).all() for w in snapshots[0]["d"].values() if w.is_floating_point())


def test_lr_bomb_stops_at_the_first_step(params, images):
    p = with_train(params, lr_g=1.0e30, lr_d=1.0e30)
    with pytest.raises(Diverged, match=r"step 1: loss_\w is nan"):
        fit(p, p.variant("final"), images, CPU)


def test_rollback_recovers_from_a_nan_with_halved_learning_rates(params, images):
    p = with_train(params, max_steps=12, checkpoint_every=5, inject_nan_at=8, on_divergence="rollback")
    rollbacks = []
    run = fit(p, p.variant("baseline"), images, CPU,
              hooks=Hooks(on_rollback=lambda exc, r: rollbacks.append((exc.step, r.step, r.lr_scale))))
    assert rollbacks == [(8, 5, 0.5)]  # NaN seen at step 8, back to the checkpoint at 5, lrs halved
    assert run.step == 12 and run.rollbacks == 1
    assert [g["lr"] for g in run.opt_d.param_groups] == [p.train.lr_d / 2]
    assert list(history_frame(run)["step"]) == list(range(1, 13))
    assert all(torch.isfinite(w).all() for w in run.d.state_dict().values() if w.is_floating_point())


def test_rollback_gives_up_after_max_rollbacks(params, images):
    p = with_train(params, lr_g=1.0e30, lr_d=1.0e30, on_divergence="rollback", max_rollbacks=2)
    seen = []
    with pytest.raises(Diverged, match="step 1"):
        fit(p, p.variant("baseline"), images, CPU, hooks=Hooks(on_rollback=lambda e, r: seen.append(r.lr_scale)))
    assert seen == [0.5, 0.25]


def test_saturated_discriminator_stops_training(params, images):
    # G barely moves and D learns fast: D(x) -> 1, D(G(z)) -> 0 within a few dozen steps.
    p = with_train(params, lr_g=1.0e-12, lr_d=0.5, max_steps=32, collapse_patience=4, saturation=1.0e-3)
    with pytest.raises(Diverged, match=r"D saturated for 4 steps \(D\(x\)=.*G gets no gradient"):
        fit(p, p.variant("baseline"), images, CPU)


def test_guard_counts_consecutive_saturated_steps_only():
    guard = DivergenceGuard(patience=3, eps=0.01)
    row = {"loss_d": 0.1, "loss_g": 5.0, "d_real": 0.999, "d_fake": 0.001, "d_gen": 0.001}
    ok = {**row, "d_real": 0.7}
    guard.check([1, 2, 3, 4], [row, row, ok, row])  # 2, then reset, then 1
    with pytest.raises(Diverged, match="step 6"):
        guard.check([5, 6], [row, row])
    with pytest.raises(Diverged, match="loss_g is inf"):
        DivergenceGuard(0, 0.01).check([1], [{**ok, "loss_g": math.inf}])


# --------------------------------------------------------------------------- EMA


def test_ema_follows_the_weights_and_copies_batch_norm_buffers(params):
    g_spec, _ = gan_specs(params, params.variant("final"), channels=1)
    g = Generator(g_spec)
    ema = EMA(g, decay=0.9)
    before = {k: v.clone() for k, v in ema.model.state_dict().items()}
    with torch.no_grad():
        for w in g.parameters():
            w.add_(1.0)
        for name, b in g.named_buffers():
            if b.is_floating_point():
                b.add_(2.0)
    ema.update(g, step=100)  # past warm-up: decay 0.9
    live = dict(g.named_parameters())
    for name, w in ema.model.named_parameters():
        assert torch.allclose(w, 0.9 * before[name] + 0.1 * live[name])
    for name, b in ema.model.named_buffers():
        assert torch.equal(b, dict(g.named_buffers())[name])  # running statistics are copied
    assert not any(w.requires_grad for w in ema.model.parameters())
    prev = {k: v.clone() for k, v in ema.model.named_parameters()}
    ema.update(g, step=0)  # warm-up: decay min(0.9, (1 + 0) / (10 + 0)) = 0.1, mostly the live weights
    for name, w in ema.model.named_parameters():
        assert torch.allclose(w, 0.1 * prev[name] + 0.9 * live[name])


def test_ema_off_when_decay_is_zero(params, images):
    run = fit(with_train(params, ema_decay=0.0, max_steps=2), params.variant("baseline"), images, CPU)
    assert run.ema is None
