"""The run description: resolved once from params and the prepared data, frozen, and what the training code
reads instead of params (fit's bitwise behaviour is tested in test_loop.py; where it is saved, in test_run.py)."""

from __future__ import annotations

import dataclasses

import pytest

from dcgan_lab.core.errors import ConfigError
from dcgan_lab.training.spec import RunSpec


def test_a_variant_trains_with_its_own_loss_critic_steps_and_betas(params):
    wgan = RunSpec.resolve(params, "wgan", seed=2, channels=1)
    assert (wgan.train.loss, wgan.train.d_steps, wgan.train.betas) == ("wgan-gp", 5, (0.0, 0.9))
    assert wgan.images_per_step == 5 * params.train.batch_size and not wgan.d.batch_norm
    final = RunSpec.resolve(params, "final", seed=2, channels=3)
    assert (final.train.loss, final.train.d_steps, final.train.betas) == ("bce", 1, params.train.betas)
    assert (final.g.channels, final.d.spectral_norm, final.augment.translation) == (3, True, 0.125)
    assert final.pixel_range == params.data.pixel_range and final.g.output == "tanh"
    with pytest.raises(dataclasses.FrozenInstanceError):
        final.seed = 3


def test_only_a_conditional_variant_takes_the_classes(params):
    assert RunSpec.resolve(params, "final", 0, 1, n_classes=10).g.n_classes == 0
    cgan = RunSpec.resolve(params, "cgan", 0, 1, n_classes=10)
    assert cgan.conditional and (cgan.g.n_classes, cgan.d.n_classes) == (10, 10)
    with pytest.raises(ConfigError, match=r"^variants\.cgan\.conditional: true needs images of at least 2 classes"):
        RunSpec.resolve(params, "cgan", 0, 1, n_classes=0)
    with pytest.raises(ConfigError, match=r"^variant: unknown variant 'nope'; allowed: "):
        RunSpec.resolve(params, "nope", 0, 1)


def test_for_data_reads_channels_and_classes_from_the_manifest(params):
    manifest = {"dataset": "folder", "classes": ["cats", "dogs", "owls"],
                "splits": {"train": {"n": 9, "shape": [3, 32, 32]}}}
    cgan = RunSpec.for_data(params, "cgan", 1, manifest)
    assert (cgan.g.channels, cgan.g.n_classes, cgan.seed) == (3, 3, 1)


def test_its_dict_holds_everything_and_mlflow_gets_the_params_yaml_keys(params):
    spec = RunSpec.resolve(params, "wgan", 4, 1)
    d = spec.to_dict()
    assert d["train"]["loss"] == "wgan-gp" and d["params"]["train"]["loss"] == params.train.loss
    assert d["g"]["latent_dim"] == params.model.latent_dim and d["pixel_range"] == list(params.data.pixel_range)
    logged = spec.mlflow_params()
    assert logged["variant.loss"] == "wgan-gp" and logged["variant.name"] == "wgan" and logged["seed"] == 4
    assert logged["train.lr_g"] == params.train.lr_g and logged["model.g_width"] == params.model.g_width
    assert not any(key.startswith(("g.", "d.", "params.")) for key in logged)


def test_where_batches_come_from_is_not_part_of_what_a_resume_must_match(params):
    streamed = RunSpec.resolve(dataclasses.replace(params, train=dataclasses.replace(params.train, stream=True)),
                               "final", 0, 1)
    on_device = RunSpec.resolve(params, "final", 0, 1)
    assert streamed.resume_config() == on_device.resume_config() and streamed != on_device
    other_lr = RunSpec.resolve(dataclasses.replace(params, train=dataclasses.replace(params.train, lr_g=1e-3)),
                               "final", 0, 1)
    assert other_lr.resume_config() != on_device.resume_config()
