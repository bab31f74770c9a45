"""Generators as MLflow models, and the best one by FID in the model registry.

`evaluate` calls these after scoring: each run's scored generator is logged into the run that trained
it (mlflow_run.json), with a signature (latent noise (B, latent_dim) float32 -> images (B, C, S, S) in
the generator's pixel range) and an input example, so `mlflow.pytorch.load_model(uri)(z)` generates
images anywhere this package's code travels (it is packed with the model as code_paths).
Logging is idempotent: a run whose model came from the same checkpoint bytes is not logged again, and
a run already registered under the name is not registered twice.
"""

from __future__ import annotations

from pathlib import Path

from ..core.files import sha256_file

MODEL_NAME = "generator"  # the model's name inside its run


def log_generator(client, run_id: str, checkpoint: Path) -> str:
    """Log the generator of `checkpoint` as an MLflow model in `run_id`; returns its model URI."""
    import mlflow
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    from .. import __file__ as package_init
    from ..gan.checkpoint import load_generator

    sha = sha256_file(checkpoint)
    tags = client.get_run(run_id).data.tags
    if tags.get("model.checkpoint_sha256") == sha and tags.get("model.uri"):
        return tags["model.uri"]
    g = load_generator(checkpoint)  # eval mode, CPU
    z = torch.randn(2, g.spec.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        images = g(z)
    signature = infer_signature(z.numpy(), images.numpy())
    mlflow.set_tracking_uri(client.tracking_uri)
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pytorch.log_model(
            g, name=MODEL_NAME, signature=signature, input_example=z.numpy(),
            code_paths=[str(Path(package_init).parent)],
            # Stated, not inferred: inference would load the model in a subprocess for every run.
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"mlflow=={mlflow.__version__}"],
            params={"latent_dim": g.spec.latent_dim, "image_size": g.spec.image_size, "output": g.spec.output},
        )
    client.set_tag(run_id, "model.checkpoint_sha256", sha)
    client.set_tag(run_id, "model.uri", info.model_uri)
    return info.model_uri


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
