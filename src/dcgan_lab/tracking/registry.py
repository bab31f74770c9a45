"""Generators as MLflow models, and the best one by FID in the model registry.

`evaluate` calls these after scoring: each run's scored generator is logged into the run that trained
it (mlflow_run.json), with a signature (latent noise (B, latent_dim) float32 -> images (B, C, S, S) in
the generator's pixel range) and an input example, so `mlflow.pytorch.load_model(uri)(z)` generates
images anywhere this package's code travels (it is packed with the model as code_paths).
Logging is idempotent: a run whose model came from the same checkpoint bytes is not logged again, and
a run already registered under the name is not registered twice.

MLflow 3 stores a PyTorch model as a torch.export graph (model.pt2), which loads without its Python class:
`load_generator` rebuilds the Generator from the spec logged with the model and fills it with the graph's
weights, so what comes back is the same Generator that `gan.checkpoint.load_generator` gives.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, fields
from pathlib import Path

import numpy as np
import torch

from ..core.errors import CheckpointError
from ..core.files import sha256_file

MODEL_NAME = "generator"  # the model's name inside its run


def log_generator(client, run_id: str, checkpoint: Path) -> str:
    """Log the generator of `checkpoint` as an MLflow model in `run_id`; returns its model URI."""
    import mlflow
    import mlflow.pytorch
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    from .. import __file__ as package_init
    from ..gan.checkpoint import load_generator

    sha = sha256_file(checkpoint)
    tags = client.get_run(run_id).data.tags
    if tags.get("model.checkpoint_sha256") == sha and tags.get("model.uri"):
        return tags["model.uri"]
    g = load_generator(checkpoint)  # eval mode, CPU
    example = _example_inputs(g.spec)
    spec = g.spec
    inputs = [TensorSpec(np.dtype("float32"), (-1, spec.latent_dim), "z")]
    if spec.n_classes:  # a conditional G: G(z, labels), labels (B,) int64 in [0, n_classes)
        inputs.append(TensorSpec(np.dtype("int64"), (-1,), "labels"))
    signature = ModelSignature(
        Schema(inputs), Schema([TensorSpec(np.dtype("float32"), (-1, spec.channels, spec.image_size, spec.image_size))]))
    mlflow.set_tracking_uri(client.tracking_uri)
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pytorch.log_model(
            g, name=MODEL_NAME, signature=signature, input_example=_numpy(example),
            code_paths=[str(Path(package_init).parent)],
            # Stated, not inferred: inference would load the model in a subprocess for every run.
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"mlflow=={mlflow.__version__}"],
            params=asdict(g.spec),  # the whole spec: load_generator rebuilds the Generator from it
        )
    client.set_tag(run_id, "model.checkpoint_sha256", sha)
    client.set_tag(run_id, "model.uri", info.model_uri)
    return info.model_uri


def _example_inputs(spec) -> tuple[torch.Tensor, ...]:
    """Two samples' inputs: (z,), or (z, labels) for a conditional G."""
    z = torch.randn(2, spec.latent_dim, generator=torch.Generator().manual_seed(0))
    return (z, torch.arange(2) % spec.n_classes) if spec.n_classes else (z,)


def _numpy(example: tuple[torch.Tensor, ...]):
    """MLflow's input example: z alone as one array (MLflow saves it with the model), or (z, labels)."""
    return example[0].numpy() if len(example) == 1 else tuple(x.numpy() for x in example)


def load_generator(uri: str):
    """The generator logged at `uri` (runs:/<run_id>/generator, models:/<name>/<version>) in eval mode on the
    CPU, from the current MLflow tracking URI: a Generator, rebuilt from the spec logged with it. Raises what
    MLflow raises for an unknown run, model or file, and a CheckpointError for a model that this version's
    Generator cannot rebuild."""
    import mlflow
    import mlflow.pytorch

    from ..gan.models import Generator, GeneratorSpec

    model = mlflow.pytorch.load_model(uri, map_location="cpu")
    if isinstance(getattr(model, "spec", None), GeneratorSpec):  # the pickle format keeps the class
        return model.eval()
    info = mlflow.models.get_model_info(uri)
    params = mlflow.get_logged_model(info.model_id).params if info.model_id else {}
    # A field added since the model was logged takes its default; the comparison below refuses the model if
    # the default does not rebuild what was logged.
    missing = [f.name for f in fields(GeneratorSpec) if f.name not in params and f.default is MISSING]
    if missing:
        raise _incompatible(uri, f"no {', '.join(missing)} in the params logged with it")
    spec = GeneratorSpec(**{f.name: _parse(params[f.name], f.type) for f in fields(GeneratorSpec) if f.name in params})
    g = Generator(spec).eval()
    g.load_state_dict(model.state_dict())
    example = _example_inputs(spec)
    with torch.inference_mode():
        if not torch.allclose(g(*example), model(*example), atol=1e-5):
            raise _incompatible(uri, "the Generator rebuilt from its spec does not compute what the logged graph does")
    return g


def _incompatible(uri: str, why: str) -> CheckpointError:
    return CheckpointError(f"{uri}: not a generator logged by dcgan-lab, or one logged by an incompatible version "
                           f"({why}); rerun `dvc repro` and load the generator it logs (its run's model.uri tag)")


def _parse(text: str, kind: str):
    """A logged param (MLflow keeps strings) back as the spec field's type."""
    return {"int": int, "float": float, "bool": lambda t: t == "True"}.get(kind, str)(text)


def register_best(client, candidates: list[tuple[float, str, str]], name: str) -> str | None:
    """Register the lowest-FID (fid, run_id, model_uri) as a new version of `name`; returns the version.
    A run that already has a version under `name` is not registered again (its version is returned)."""
    finite = [c for c in candidates if c[0] == c[0]]  # NaN FIDs cannot win
    if not finite:
        return None
    fid, run_id, model_uri = min(finite)
    for version in client.search_model_versions(f"name = '{name}'"):
        if version.run_id == run_id:
            return str(version.version)
    import mlflow

    mlflow.set_tracking_uri(client.tracking_uri)  # the registry lives in the same store
    version = mlflow.register_model(model_uri, name, tags={"fid": f"{fid:.6g}"})
    client.set_tag(run_id, "model.registered", f"{name}/{version.version}")
    return str(version.version)


def register_lowest_fid(results: dict[str, dict[str, dict]], models: Path, name: str, tags: dict[str, str]
                        ) -> str | None:
    """Register the generator of the run with the lowest FID among `results` ({variant: {"seed<k>": scores}}) as a
    new version of `name` (register_best); each run's logged model (evaluate logged it) is looked up, not logged
    again. `tags`: provenance for a run made only when a model's training run is not in this store."""
    from ..core import paths
    from .runs import RunLogger

    candidates, client = [], None
    for variant, by_seed in results.items():
        for seed_key, r in by_seed.items():
            seed = int(seed_key.removeprefix("seed"))
            run = paths.model_dir(models, variant, seed)
            logger = RunLogger.resume(run.mlflow_run, variant, seed, tags)
            candidates.append((r["fid"], logger.run_id, log_generator(logger.client, logger.run_id, run.checkpoint)))
            client = logger.client
    return register_best(client, candidates, name) if client is not None else None
