"""Generators as MLflow models and the registry, on a real sqlite MLflow store."""

from __future__ import annotations

import math

import pytest
import torch

from dcgan_lab.checkpoint import save_generator
from dcgan_lab.config import parse_params
from dcgan_lab.errors import ConfigError
from dcgan_lab.mlflow_models import log_generator, register_best
from dcgan_lab.models import Generator, GeneratorSpec
from dcgan_lab.tracking import RunLogger


def _checkpoint(path, seed: int):
    torch.manual_seed(seed)
    g = Generator(GeneratorSpec(latent_dim=8, width=4, image_size=16, channels=1, activation="relu",
                                batch_norm=True, output="tanh"))
    save_generator(path, g, steps=1)
    return g.eval()


def test_logged_generator_loads_and_generates_and_the_best_is_registered_once(tmp_path, monkeypatch):
    import mlflow.pytorch

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    runs = []
    for seed in (0, 1):
        g = _checkpoint(tmp_path / f"g{seed}.pt", seed)
        logger = RunLogger.start("final", seed, {}, root=tmp_path)
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
    assert register_best(client, [(math.nan, "x", "y")], "gen-test") is None


def test_mlflow_section_is_validated(raw_params):
    assert parse_params(raw_params).mlflow.register is False
    with pytest.raises(ConfigError, match=r"^mlflow.registr: unknown key \(did you mean 'register'\?\); allowed: "
                                          r"register, model_name$"):
        parse_params({**raw_params, "mlflow": {"registr": True}})
    with pytest.raises(ConfigError, match=r"^mlflow.model_name: 'a/b' is out of range; allowed: a non-empty"):
        parse_params({**raw_params, "mlflow": {"model_name": "a/b"}})
    with pytest.raises(ConfigError, match=r"^mlflow.register: expected true or false, got 'yes'$"):
        parse_params({**raw_params, "mlflow": {"register": "yes"}})


def test_a_run_is_scored_once_per_protocol_even_if_a_rescore_differs_in_the_last_bits(tmp_path, monkeypatch):
    """DVC experiments reuse the run of an unchanged variant and evaluate it again, maybe with another thread
    count: the scores must not pile up at step 0. Another protocol (or evaluation code) scores again."""
    import json

    from dcgan_lab.evaluate import log_results
    from dcgan_lab.paths import run_paths

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    paths = run_paths("final", 0, tmp_path)
    paths.model_dir.mkdir(parents=True)
    _checkpoint(paths.checkpoint, 0)
    logger = RunLogger.start("final", 0, {}, root=tmp_path)
    logger.save_run_file(paths.mlflow_run)
    protocol = dict(extractor="dcgan-lab-classifier", fid_features="features", n_samples=100, n_real=100,
                    real_split="test", seed=0, kid_subset_size=50)

    def results(fid, **changes):
        return {"final": {"seed0": {"fid": fid, "is_mean": 2.0, **protocol, **changes}}}

    log_results(results(4.0), 0.99, root=tmp_path)
    log_results(results(4.0 + 1e-12), 0.99, root=tmp_path)  # a rescore, last bits differ
    history = logger.client.get_metric_history(logger.run_id, "fid")
    assert [(m.step, m.value) for m in history] == [(0, 4.0)]
    log_results(results(3.5, n_samples=200), 0.99, root=tmp_path)  # another protocol: scored again
    assert sorted(m.value for m in logger.client.get_metric_history(logger.run_id, "fid")) == [3.5, 4.0]
    assert logger.client.get_run(logger.run_id).data.tags["eval.n_samples"] == "200"
    assert json.loads(paths.mlflow_run.read_text())["run_id"] == logger.run_id
