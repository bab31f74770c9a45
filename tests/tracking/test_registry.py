"""Generators as MLflow models and the registry, on a real sqlite MLflow store."""

from __future__ import annotations

import math

import pytest
import torch

from dcgan_lab.core.errors import CheckpointError
from dcgan_lab.gan.models import Generator
from dcgan_lab.tracking.registry import load_generator, log_generator, register_best
from dcgan_lab.tracking.runs import RunLogger
from helpers import generator_checkpoint


def test_logged_generator_loads_and_generates_and_the_best_is_registered_once(tmp_path, monkeypatch):
    import mlflow.pytorch

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    runs = []
    for seed in (0, 1):
        g = generator_checkpoint(tmp_path / f"g{seed}.pt", seed)
        logger = RunLogger.start("final", seed, {}, {}, root=tmp_path)
        uri = log_generator(logger.client, logger.run_id, tmp_path / f"g{seed}.pt")
        runs.append((logger, uri, g))
    client = runs[0][0].client

    logger, uri, g = runs[1]
    loaded = mlflow.pytorch.load_model(uri)
    z = torch.randn(3, 8)
    with torch.inference_mode():
        assert torch.allclose(loaded(z), g(z)) and loaded(z).shape == (3, 1, 16, 16)
    info = mlflow.models.get_model_info(uri)
    assert list(info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, 8]
    assert list(info.signature.outputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, 1, 16, 16]
    assert info.saved_input_example_info is not None
    rebuilt = load_generator(uri)  # MLflow 3 stores a torch.export graph: rebuilt as the Generator it was
    assert isinstance(rebuilt, Generator) and rebuilt.spec == g.spec and not rebuilt.training
    with torch.inference_mode():
        assert torch.equal(rebuilt(z), g(z))
    # The same checkpoint again: the model is not logged twice.
    assert log_generator(client, logger.run_id, tmp_path / "g1.pt") == uri
    assert client.get_run(logger.run_id).data.tags["model.uri"] == uri

    candidates = [(5.0, runs[0][0].run_id, runs[0][1]), (2.5, runs[1][0].run_id, runs[1][1]),
                  (math.nan, "x", "y")]
    assert register_best(client, candidates, "gen-test") == "1"
    assert register_best(client, candidates, "gen-test") == "1"  # idempotent
    (version,) = client.search_model_versions("name = 'gen-test'")
    assert version.run_id == runs[1][0].run_id and version.tags["fid"] == "2.5"
    assert client.get_run(runs[1][0].run_id).data.tags["model.registered"] == "gen-test/1"
    registered = mlflow.pytorch.load_model("models:/gen-test/1")
    with torch.inference_mode():
        assert torch.allclose(registered(z), g(z))
        assert torch.equal(load_generator("models:/gen-test/1")(z), g(z))
    assert register_best(client, [(math.nan, "x", "y")], "gen-test") is None

    # A generator logged by an older version, without its whole spec: the one-line "incompatible version, rerun".
    with mlflow.start_run(run_id=runs[0][0].run_id):
        old = mlflow.pytorch.log_model(runs[0][2], name="old", input_example=z.numpy(), pip_requirements=[],
                                       params={"latent_dim": 8, "image_size": 16, "output": "tanh"})
    with pytest.raises(CheckpointError) as error:
        load_generator(old.model_uri)
    assert str(error.value) == (
        f"{old.model_uri}: not a generator logged by dcgan-lab, or one logged by an incompatible version (no width, "
        f"channels, activation, batch_norm in the params logged with it); rerun `dvc repro` and load the "
        f"generator it logs (its run's model.uri tag)")
    # One logged before a field with a default was added (the label embedding's width): the default rebuilds it.
    from dataclasses import asdict
    before = {k: v for k, v in asdict(g.spec).items() if k not in ("conditioning", "embed_dim", "embed_std")}
    with mlflow.start_run(run_id=runs[1][0].run_id):
        older = mlflow.pytorch.log_model(g, name="older", input_example=z.numpy(), pip_requirements=[], params=before)
    with torch.inference_mode():
        assert torch.equal(load_generator(older.model_uri)(z), g(z))


def test_a_conditional_generator_is_logged_with_its_labels_input_and_loads_back(tmp_path, monkeypatch):
    import mlflow

    from dcgan_lab.gan.checkpoint import save_gan
    from dcgan_lab.gan.models import Discriminator, DiscriminatorSpec, GeneratorSpec

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    torch.manual_seed(0)
    g = Generator(GeneratorSpec(8, 8, 16, 1, "relu", True, "tanh", n_classes=3, embed_dim=4, embed_std=0.5)).eval()
    save_gan(tmp_path / "c.pt", g, Discriminator(DiscriminatorSpec(8, 16, 1, True, True, "gap", n_classes=3)))
    logger = RunLogger.start("cgan", 0, {}, {}, root=tmp_path)
    uri = log_generator(logger.client, logger.run_id, tmp_path / "c.pt")
    inputs = mlflow.models.get_model_info(uri).signature.inputs.to_dict()
    assert [(i["name"], i["tensor-spec"]["dtype"], i["tensor-spec"]["shape"]) for i in inputs] == [
        ("z", "float32", (-1, 8)), ("labels", "int64", (-1,))]
    loaded = load_generator(uri)
    assert loaded.spec == g.spec
    z, y = torch.randn(4, 8), torch.tensor([0, 2, 1, 2])
    with torch.inference_mode():
        assert torch.allclose(loaded(z, y), g(z, y), atol=1e-6)
