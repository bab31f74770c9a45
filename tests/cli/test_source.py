"""SRC: a model directory, a checkpoint or an MLflow model URI, what --ema/--best pick in each, the errors that
say what works instead, class labels for conditional generators, and sampling from a real MLflow store."""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dcgan_lab.cli.source import Source, class_labels, load_discriminator, load_generator, resolve
from dcgan_lab.core.errors import UserError
from dcgan_lab.gan.checkpoint import load_generator as load_checkpoint_generator
from dcgan_lab.gan.sampling import generate_from, latent_noise
from dcgan_lab.tracking.registry import log_generator
from dcgan_lab.tracking.runs import RunLogger
from helpers import dcgan_lab_all, error_line


def test_a_model_directory_a_checkpoint_and_what_ema_and_best_pick(model_dir):
    ckpt, best = model_dir / "checkpoint.pt", model_dir / "best.pt"
    assert resolve(str(model_dir)) == Source(str(model_dir), generator_file=ckpt, discriminator_file=ckpt)
    assert resolve(str(model_dir), best=True) == Source(str(model_dir), generator_file=best, discriminator_file=ckpt)
    assert resolve(str(ckpt), ema=True) == Source(str(ckpt), generator_file=ckpt, discriminator_file=ckpt, ema=True)
    assert resolve(str(best)).discriminator_file is None  # best.pt holds a generator alone
    assert resolve("runs:/abc/generator") == Source("runs:/abc/generator", uri="runs:/abc/generator")
    z = torch.randn(2, 16)
    ema = load_generator(resolve(str(model_dir), ema=True))
    assert torch.equal(ema(z), load_checkpoint_generator(ckpt, ema=True)(z))
    assert not torch.equal(ema(z), load_checkpoint_generator(ckpt)(z))
    assert load_discriminator(resolve(str(best))) is None
    assert load_discriminator(resolve(str(model_dir))).spec.spectral_norm


@pytest.mark.parametrize("src, flags, message", [
    ("runs:/abc/generator", {"ema": True}, "--ema: runs:/abc/generator is an MLflow model, one generator; --ema and "
                                           "--best pick a generator in a model directory"),
    ("models:/g/1", {"best": True}, "--best: models:/g/1 is an MLflow model"),
    ("{dir}/checkpoint.pt", {"best": True}, "--best: {dir}/checkpoint.pt is a file; --best picks best.pt in a model "
                                            "directory: pass the directory ({dir}) or {dir}/best.pt itself"),
    ("{dir}/nope", {}, "{dir}/nope: no such file or directory; SRC is a checkpoint"),
    ("{empty}", {}, "{empty}: no checkpoint.pt in this directory; SRC is a model directory"),
])
def test_resolve_says_what_works_instead(model_dir, tmp_path, src, flags, message):
    names = {"dir": model_dir, "empty": tmp_path}
    with pytest.raises(UserError, match="^" + message.format(**names).replace("(", r"\(").replace(")", r"\)")):
        resolve(src.format(**names), **flags)


def test_ema_of_a_generator_alone_is_refused(model_dir):
    with pytest.raises(UserError, match=r"^--ema: .*best\.pt holds no EMA generator .*; drop --ema"):
        load_generator(resolve(str(model_dir / "best.pt"), ema=True))


class Conditional(torch.nn.Module):
    """A stand-in for a conditional generator (spec.n_classes > 0, G(z, y)) whose images show their class."""

    spec = SimpleNamespace(latent_dim=4, n_classes=3, pixel_range=(0.0, 1.0))

    def forward(self, z, y):
        return (y.float() / 2).view(-1, 1, 1, 1).expand(-1, 1, 2, 2)  # class k -> gray level k/2


def test_class_labels_for_conditional_generators_and_none_for_the_others(model_dir):
    g = Conditional()
    assert torch.equal(class_labels(g, 2, 4, "g", cycle=True), torch.full((4,), 2))
    assert torch.equal(class_labels(g, None, 5, "g", cycle=True), torch.tensor([0, 1, 2, 0, 1]))
    images = generate_from(g, torch.zeros(3, 4), class_labels(g, 2, 3, "g", cycle=True))
    assert (images == 255).all()  # every sample got class 2
    with pytest.raises(UserError, match=r"^--class: 3 is out of range for g; allowed: 0 <= K < 3$"):
        class_labels(g, 3, 4, "g", cycle=True)
    with pytest.raises(UserError, match=r"^--class: g is a conditional model; pick a class with --class K"):
        class_labels(g, None, 4, "g", cycle=False)
    unconditional = load_checkpoint_generator(model_dir / "checkpoint.pt")
    assert class_labels(unconditional, None, 4, "ckpt", cycle=True) is None
    with pytest.raises(UserError, match=r"^--class: ckpt is not a conditional model"):
        class_labels(unconditional, 0, 4, "ckpt", cycle=True)


def test_sample_from_an_mlflow_run_equals_sampling_its_checkpoint(model_dir, tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    logger = RunLogger.start("final", 0, {}, {}, root=tmp_path)
    model_uri = log_generator(logger.client, logger.run_id, model_dir / "checkpoint.pt")
    run_uri = f"runs:/{logger.run_id}/generator"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    sampled, ema = dcgan_lab_all(("sample", run_uri, "--n", 6, "--seed", 2, "--out", tmp_path / "m.npz"),
                                 ("sample", run_uri, "--ema", "--out", tmp_path / "x.png"), cwd=tmp_path, env=env)
    assert sampled.returncode == 0 and sampled.stderr == "", sampled.stderr  # no progress bars, no warnings
    assert f"6 samples of {run_uri}, seed 2" in sampled.stdout
    expected = generate_from(load_checkpoint_generator(model_dir / "checkpoint.pt"), latent_noise(6, 16, 2))
    with np.load(tmp_path / "m.npz") as npz:
        assert np.array_equal(npz["images"], expected.numpy())
    assert error_line(ema).startswith(f"error: --ema: {run_uri} is an MLflow model")
    assert model_uri.startswith("models:/")
