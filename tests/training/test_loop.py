"""The training loop on the real models at tiny sizes: hooks at their schedules, determinism, and a resume
that is bitwise equal to an uninterrupted run."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from dcgan_lab.training import loop
from dcgan_lab.training.loop import Schedule, fit, history_frame
from helpers import calling, spec, with_train

CPU = torch.device("cpu")


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fit_logs_every_step_and_is_deterministic(params, images):
    logged = []
    hooks_seen = []
    evaluated = []
    hooks = calling(on_log=lambda steps, rows: logged.append(steps),
                    on_epoch=lambda epoch, step, g, timing: hooks_seen.append((epoch, step)),
                    on_eval=lambda step, g: evaluated.append((step, g.training)) or g.eval() and None)
    run1 = fit(spec(params, "final", seed=0), images, CPU, hooks=hooks)
    g1, h1 = run1.g, history_frame(run1)
    assert list(h1["step"]) == list(range(1, params.train.max_steps + 1))
    assert [s for chunk in logged for s in chunk] == list(h1["step"])
    assert max(len(c) for c in logged) == params.train.log_every  # one host read per log_every steps
    assert hooks_seen[-1][1] == params.train.max_steps
    assert evaluated == [(5, True), (10, True), (12, True)]  # every eval_every steps and at the end, in train mode
    run2 = fit(spec(params, "final", seed=0), images, CPU)
    g2, h2 = run2.g, history_frame(run2)
    assert h1.equals(h2)
    assert all(torch.equal(a, b) for a, b in zip(g1.state_dict().values(), g2.state_dict().values()))
    h3 = history_frame(fit(spec(params, "final", seed=1), images, CPU))
    assert not h1.equals(h3)  # another seed is another run


def test_train_eval_every_alone_decides_when_g_is_scored(params, images):
    """Quick FID runs when train.eval_every says, whatever the hooks: with 0, an on_eval is never called."""
    scored = []
    fit(spec(with_train(params, eval_every=0), "baseline"), images, CPU,
        hooks=calling(on_eval=lambda step, g: scored.append(step) or 1.0))
    assert scored == []
    run = fit(spec(with_train(params, eval_every=4), "baseline"), images, CPU,
              hooks=calling(on_eval=lambda step, g: scored.append(step) or float(-step)))
    assert scored == [4, 8, 12] and run.best["step"] == 12  # the lowest score is the best
    assert fit(spec(with_train(params, eval_every=4), "baseline"), images, CPU).best is None  # Hooks(): no score


def test_schedule_says_which_steps_end_epochs_evaluate_and_checkpoint():
    s = Schedule(steps_per_epoch=16, total=40, log_every=5, eval_every=15, checkpoint_every=7)
    assert [n for n in range(1, 41) if s.epoch_end(n)] == [16, 32, 40]
    assert [n for n in range(1, 41) if s.evaluates(n)] == [15, 30, 40]
    assert [n for n in range(1, 41) if s.checkpoints(n)] == [7, 14, 21, 28, 35, 40]
    off = Schedule(steps_per_epoch=16, total=40, log_every=5, eval_every=0, checkpoint_every=0)
    assert not any(off.evaluates(n) for n in range(1, 41)) and [n for n in range(1, 41) if off.checkpoints(n)] == [40]


@pytest.mark.parametrize("variant", ["baseline", "final"])  # final: augmentation draws from its own stream
def test_resumed_run_is_bitwise_equal_to_an_uninterrupted_one(params, images, variant):
    # 16 steps per epoch: checkpoints at 7 and 14 fall mid-epoch, the end crosses an epoch boundary.
    p = with_train(params, max_steps=20, checkpoint_every=7, eval_every=0)
    snapshots = []
    full = fit(spec(p, variant, seed=3), images, CPU, hooks=calling(on_checkpoint=snapshots.append))
    assert [s["step"] for s in snapshots] == [7, 14, 20]
    torch.manual_seed(12345)  # whatever the process did in between must not matter
    for snapshot in snapshots[:2]:
        resumed = fit(spec(p, variant, seed=3), images, CPU, resume=snapshot)
        assert same_weights(resumed.g.state_dict(), full.g.state_dict())
        assert same_weights(resumed.d.state_dict(), full.d.state_dict())
        assert same_weights(resumed.ema.model.state_dict(), full.ema.model.state_dict())
        assert same_weights(resumed.opt_g.state_dict()["state"][0], full.opt_g.state_dict()["state"][0])
        assert history_frame(resumed).equals(history_frame(full))


def test_best_generator_survives_a_resume(params, images):
    p = with_train(params, max_steps=20, checkpoint_every=10, eval_every=5)
    scores = iter([5.0, 1.0, 3.0, 4.0] * 2)  # best at step 10, found before the checkpoint
    snapshots = []
    fit(spec(p, "baseline"), images, CPU, hooks=calling(on_eval=lambda s, g: next(scores),
                                                           on_checkpoint=snapshots.append))
    scores = iter([3.0, 4.0])
    resumed = fit(spec(p, "baseline"), images, CPU, resume=snapshots[0],
                  hooks=calling(on_eval=lambda s, g: next(scores)))
    assert resumed.best["step"] == 10 and resumed.best["score"] == 1.0


def test_deterministic_on_cpu_by_default(params, images):
    p = with_train(params, max_steps=8)
    a = fit(spec(p, "improved", seed=1), images, CPU)
    assert torch.are_deterministic_algorithms_enabled()
    b = fit(spec(p, "improved", seed=1), images, CPU)
    assert same_weights(a.g.state_dict(), b.g.state_dict()) and history_frame(a).equals(history_frame(b))


@pytest.mark.parametrize("variant", ["improved", "final"])  # batch norm, spectral norm; DiffAugment
def test_the_nan_fill_deterministic_mode_skips_changes_no_bit(params, images, variant, monkeypatch):
    """set_determinism switches off deterministic mode's NaN fill of fresh tensors, which only exposes reads of
    memory nothing wrote: with the fill forced back on, the step reads no such memory, so the run is bitwise
    the same."""
    p = with_train(params, max_steps=8)
    off = fit(spec(p, variant, seed=2), images, CPU)
    assert torch.utils.deterministic.fill_uninitialized_memory is False
    original = loop.set_determinism

    def filling(deterministic, device):
        on = original(deterministic, device)
        torch.utils.deterministic.fill_uninitialized_memory = True
        return on

    monkeypatch.setattr(loop, "set_determinism", filling)
    try:
        on = fit(spec(p, variant, seed=2), images, CPU)
        assert torch.utils.deterministic.fill_uninitialized_memory is True
    finally:  # the other tests run as the package does
        torch.utils.deterministic.fill_uninitialized_memory = False
    assert same_weights(on.g.state_dict(), off.g.state_dict()) and same_weights(on.d.state_dict(), off.d.state_dict())
    assert same_weights(on.ema.model.state_dict(), off.ema.model.state_dict())
    assert history_frame(on).equals(history_frame(off))


def conv_weights(model: torch.nn.Module) -> list[torch.Tensor]:
    """Every convolution's trainable weight, in layer order (spectral norm's `original` where it has one)."""
    return [m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]


def test_runs_with_the_same_seed_share_init_data_order_and_noise_across_variants(params, images):
    """What pairing by seed rests on: every variant of the study, trained with the same seed, starts from the
    same conv weights (batch norm, biases and spectral norm in some variants do not shift the draws), sees the
    same batches in the same order and the same latent noise. Another seed changes all three."""
    from dcgan_lab.training.state import new_state

    def streams(variant: str, seed: int):
        run = new_state(spec(params, variant, seed=seed), CPU)
        orders = [torch.randperm(512, generator=run.data_gen) for _ in range(2)]  # two epochs' data order
        noise = torch.randn(3, 16, generator=run.noise_gen)
        return conv_weights(run.g), conv_weights(run.d), orders, noise

    variants = list(params.ablation.variants)
    assert len(variants) == 4 and len({str(params.variant(v)) for v in variants}) == 4  # four different models
    reference = streams(variants[0], seed=1)
    for variant in variants[1:]:
        g, d, orders, noise = streams(variant, seed=1)
        assert len(g) == len(reference[0]) == 4 and len(d) == len(reference[1]) == 4
        assert all(torch.equal(a, b) for a, b in zip(g, reference[0])), f"{variant}: G init differs"
        assert all(torch.equal(a, b) for a, b in zip(d, reference[1])), f"{variant}: D init differs"
        assert all(torch.equal(a, b) for a, b in zip(orders, reference[2])), f"{variant}: data order differs"
        assert torch.equal(noise, reference[3]), f"{variant}: noise differs"
    other = streams(variants[0], seed=2)
    assert not torch.equal(other[0][0], reference[0][0]) and not torch.equal(other[3], reference[3])
    assert not torch.equal(other[2][0], reference[2][0])


def test_the_batches_the_loop_feeds_are_the_same_across_variants(params, images, monkeypatch):
    """Not only the streams: the loop itself hands two variants with the same seed the same real batches, step
    by step (recorded at the feeder), while their different models draw different amounts of randomness."""
    from dcgan_lab.training import batches

    fed: list[torch.Tensor] = []
    gather = batches.OnDevice.batch
    monkeypatch.setattr(batches.OnDevice, "batch", lambda self, i: fed.append(gather(self, i)) or fed[-1])
    runs = {}
    for variant in ("radford", "final"):  # final adds spectral norm and DiffAugment's draws
        fed.clear()
        fit(spec(with_train(params, max_steps=20, eval_every=0, stream=False), variant, seed=4), images, CPU)
        runs[variant] = list(fed)
    assert len(runs["radford"]) == len(runs["final"]) == 20  # 16 steps per epoch: into the second epoch
    assert all(torch.equal(a, b) for a, b in zip(runs["radford"], runs["final"]))


LABELS = torch.arange(512) % 10  # the conditional variant's classes for the 512 noise images


@pytest.mark.parametrize("variant,checkpoint_every,expected", [
    ("cgan", 7, [7, 14, 20]),  # labels: the real ones by the epoch's order, fake ones from the noise stream
    ("cgan_cbn", 7, [7, 14, 20]),  # the same with conditional batch norm in G
    ("wgan", 2, [2, 4, 6]),  # 5 critic batches a step: 3 steps an epoch, so the checkpoint at 4 is mid-epoch
])
def test_conditional_and_wgan_gp_runs_resume_bitwise(params, images, variant, checkpoint_every, expected):
    p = with_train(params, max_steps=20, checkpoint_every=checkpoint_every, eval_every=0)
    snapshots = []
    full = fit(spec(p, variant, seed=3, n_classes=10), images, CPU, hooks=calling(on_checkpoint=snapshots.append),
               labels=LABELS)
    assert [s["step"] for s in snapshots] == expected
    assert (full.g.spec.n_classes, full.d.spec.n_classes) == ((10, 10) if variant.startswith("cgan") else (0, 0))
    for snapshot in snapshots[:2]:
        resumed = fit(spec(p, variant, seed=3, n_classes=10), images, CPU, resume=snapshot, labels=LABELS)
        assert same_weights(resumed.g.state_dict(), full.g.state_dict())
        assert same_weights(resumed.d.state_dict(), full.d.state_dict())
        assert history_frame(resumed).equals(history_frame(full))
    assert list(history_frame(full).columns) == (
        ["step", "loss_d", "loss_g", "wasserstein", "gp"] if variant == "wgan"
        else ["step", "loss_d", "loss_g", "d_real", "d_fake", "d_fake_after"])


@pytest.mark.parametrize("conditioning", ["concat", "cbn"])
def test_a_trained_conditional_g_varies_with_its_noise_within_a_class(params, images, conditioning):
    """Issue 22: the same label with two noise vectors gives two different images, whichever way G is conditioned."""
    cgan = dataclasses.replace(params.variants["cgan"], g_conditioning=conditioning)
    p = dataclasses.replace(with_train(params, max_steps=16, eval_every=0), variants={**params.variants, "cgan": cgan})
    g = fit(spec(p, "cgan", seed=0, n_classes=10), images, CPU, labels=LABELS).g.eval()
    z = torch.randn(2, 8, g.spec.latent_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for label in (0, 7):
            a, b = (g(z[i], torch.full((8,), label)) for i in range(2))
            contrast = (a - a.mean((2, 3), keepdim=True)).abs().mean()  # tiny at these widths and steps
            # The noise moves each image by over a tenth of its own contrast (0 for a G that ignores it).
            assert (a - b).abs().mean() > 0.1 * contrast, (conditioning, label)


def test_the_loop_feeds_real_labels_by_the_data_order_and_fake_labels_from_the_class_shares(params, images,
                                                                                          monkeypatch):
    from dcgan_lab.training import loop

    fed = []
    step = loop.train_step
    monkeypatch.setattr(loop, "train_step", lambda *a, **k: fed.extend(a[4]) or step(*a, **k))
    labels = torch.where(torch.arange(512) < 128, 3, 8)  # a quarter class 3, the rest class 8
    run = fit(spec(with_train(params, max_steps=16, eval_every=0), "cgan", seed=0, n_classes=10), images, CPU,
              labels=labels)
    order = run.order  # one epoch: batch i holds the images order[32 i : 32 (i + 1)]
    assert all(torch.equal(b.real_labels, labels[order[32 * i : 32 * (i + 1)]]) for i, b in enumerate(fed))
    fake = torch.cat([b.fake_labels for b in fed])
    assert set(fake.tolist()) == {3, 8} and abs((fake == 3).float().mean().item() - 0.25) < 0.06


def test_wgan_gp_is_not_stopped_by_the_saturation_check(params, images):
    """A critic's scores are not probabilities: the bce saturation check would misread them."""
    p = with_train(params, max_steps=6, eval_every=0, collapse_patience=1, saturation=0.49)
    fit(spec(p, "wgan", seed=0), images, CPU)  # a bce run with these settings stops at once
    with pytest.raises(Exception, match="D saturated"):
        fit(spec(p, "baseline", seed=0), images, CPU)


def test_mode_seeking_pairs_fakes_by_label_and_changes_only_g_s_update(params, images, monkeypatch):
    """Mode seeking (Mao et al. 2019) compares G(z1, y) with G(z2, y): fakes i and 16 + i of a 32 batch share y."""
    from dcgan_lab.training import loop

    fed = []
    step = loop.train_step
    monkeypatch.setattr(loop, "train_step", lambda *a, **k: fed.extend(a[4]) or step(*a, **k))
    runs = {}
    for weight in (0.0, 1.0):
        p = with_train(params, max_steps=1, eval_every=0, mode_seeking=weight)
        runs[weight] = fit(spec(p, "cgan", seed=0, n_classes=10), images, CPU, labels=LABELS)
    plain, paired = fed
    assert torch.equal(paired.fake_labels[:16], paired.fake_labels[16:]) and paired.fake_labels.shape == (32,)
    assert not torch.equal(plain.fake_labels[:16], plain.fake_labels[16:])
    assert torch.equal(plain.z, paired.z)  # the noise is drawn first, as without it
    # One step: D saw different fake labels, and G's loss has the extra term: both updates differ, and the
    # history shows G's loss with the term (1 / ratio of distances: well above the bce loss alone).
    assert not same_weights(runs[0.0].g.state_dict(), runs[1.0].g.state_dict())
    assert history_frame(runs[1.0]).loss_g[0] > history_frame(runs[0.0]).loss_g[0] + 1
