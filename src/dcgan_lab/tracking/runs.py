"""MLflow runs: one per variant and seed per pipeline run, in the project's experiment (store.py says where).

RunLogger is what the stages log through. When its tracking server stops answering mid-run, the run goes on
in the offline store (`_fail_over`): a run with the same tags and params, everything logged so far replayed
into it, tagged `continues_run` with the server run's id, so that `python -m dcgan_lab.tracking.offline`
can later append to the server's run what it lacks.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .store import HTTP, experiment_id, log_batch, mark_unreachable, offline_uri, open_client, server_up, tracking_uri


@dataclass
class Record:
    """Everything one RunLogger has logged, so that the run can be carried on in another store, whole,
    if its tracking server goes away mid-run (RunLogger._fail_over)."""

    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: list = field(default_factory=list)  # mlflow.entities.Metric
    images: list[tuple[np.ndarray, str, int]] = field(default_factory=list)  # (image, key, step)
    artifacts: list[tuple[str, str | None]] = field(default_factory=list)  # (local path, artifact path)
    texts: list[tuple[str, str]] = field(default_factory=list)  # (text, artifact file)


class RunLogger:
    """A thin handle on one MLflow run; batches metrics so logging stays off the hot path. When its
    tracking server stops answering mid-run, the run goes on in the offline store (one warning), with
    everything this handle had logged; `python -m dcgan_lab.tracking.offline` brings it back later."""

    def __init__(self, run_id: str, uri: str, root: Path | None = None):
        self.client = open_client(uri)
        self.run_id, self.uri, self.root = run_id, uri, root
        self.record = Record()

    # -- creation

    @classmethod
    def start(cls, variant: str, seed: int | None, params: dict, tags: dict[str, str], root: Path | None = None,
              run_name: str | None = None) -> "RunLogger":
        """A new run in the project's experiment. `tags` are the stage's provenance (provenance.run_tags:
        torch/CUDA, device, data manifest hash, git commit, DVC experiment, params changed)."""
        uri = tracking_uri(root)
        client = open_client(uri)
        tags = {**tags, "variant": variant, "mlflow.runName": run_name or f"{variant}-seed{seed}"}
        if seed is not None:
            tags["seed"] = str(seed)
        run = client.create_run(experiment_id(client, root), tags=tags)
        logger = cls(run.info.run_id, uri, root)
        logger.record.tags.update({k: str(v) for k, v in tags.items()})
        logger.log_params(params)
        return logger

    @classmethod
    def _existing(cls, run_id: str, uri: str, root: Path | None) -> "RunLogger":
        """A handle on a run the store has (raises if it has not), knowing its tags and params."""
        logger = cls(run_id, uri, root)
        data = logger.client.get_run(run_id).data
        logger.record.tags.update(data.tags)
        logger.record.params.update(data.params)
        return logger

    @classmethod
    def resume(cls, run_file: Path, variant: str, seed: int, tags: dict[str, str], root: Path | None = None
               ) -> "RunLogger":
        """The run that trained this checkpoint, or a new one if this tracking store does not have it."""
        uri = tracking_uri(root)
        try:
            return cls._existing(json.loads(Path(run_file).read_text())["run_id"], uri, root)
        except Exception as exc:  # missing file, other store, deleted run: log into a fresh run instead
            print(f"warning: the MLflow run recorded in {run_file} is not in {uri} ({type(exc).__name__}); "
                  f"logging {variant} seed {seed} into a new run", file=sys.stderr)
            return cls.start(variant, seed, {}, tags, root)

    @classmethod
    def reopen(cls, run_id: str, variant: str, seed: int, tags: dict[str, str], root: Path | None = None
               ) -> "RunLogger":
        """Continue a run after a resume: mark it running again and log nothing at steps it already
        has (the resumed training recomputes the steps between its checkpoint and the interruption)."""
        uri = tracking_uri(root)
        try:
            logger = cls._existing(run_id, uri, root)
            history = logger.client.get_metric_history(run_id, "loss_d")
        except Exception as exc:  # deleted run, or another store: log into a fresh run instead
            print(f"warning: the MLflow run {run_id} of this checkpoint is not in {uri} ({type(exc).__name__}); "
                  f"logging {variant} seed {seed} into a new run", file=sys.stderr)
            return cls.start(variant, seed, {}, tags, root)
        logger.client.update_run(run_id, status="RUNNING")
        logger.logged_through = max((m.step for m in history), default=-1)
        return logger

    logged_through = -1  # steps up to this one are in the run already (see reopen); -1: none, step 0 counts

    def save_run_file(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"run_id": self.run_id, "tracking_uri": self.client.tracking_uri}) + "\n")

    def _call_with_failover(self, action) -> None:
        """Call `action(client, run_id)`; if it fails because the tracking server went away, carry the run on
        in the offline store (_fail_over) and call it there."""
        try:
            action(self.client, self.run_id)
        except Exception as exc:
            if not self.uri.startswith(HTTP) or server_up(self.uri, timeout=3):
                raise
            self._fail_over(exc)
            action(self.client, self.run_id)

    def _fail_over(self, exc: Exception) -> None:
        """The server went away: go on in a new run in the offline store that carries this one on, with
        everything this handle had logged, and say so on stderr."""
        from mlflow.entities import Param

        server, server_run, uri = self.uri, self.run_id, offline_uri(self.root)
        mark_unreachable(server)  # later runs of this process go offline from the start
        client, record = open_client(uri), self.record
        run_id = client.create_run(experiment_id(client, self.root),
                                   tags={**record.tags, "continues_run": f"{server}#{server_run}"}).info.run_id
        log_batch(client, run_id, params=[Param(k, v) for k, v in record.params.items()], metrics=record.metrics)
        for image, key, step in record.images:
            log_step_image(client, run_id, image, key, step)
        for path, artifact_path in record.artifacts:
            client.log_artifact(run_id, path, artifact_path)
        for text, artifact_file in record.texts:
            client.log_text(run_id, text, artifact_file)
        self.client, self.run_id, self.uri = client, run_id, uri
        print(f"warning: MLflow tracking server {server} went away ({type(exc).__name__}); run {server_run} goes on "
              f"in {uri} as run {run_id}, with everything logged so far. When the server is back: "
              f"python -m dcgan_lab.tracking.offline --to {server}", file=sys.stderr)

    # -- logging

    def log_params(self, params: dict) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)) for k, v in params.items()]
        self.record.params.update({p.key: p.value for p in items})
        self._call_with_failover(lambda client, run_id: log_batch(client, run_id, params=items))

    def log_metrics(self, rows: list[dict[str, float]], steps: list[int]) -> None:
        """One batch for many steps: rows[i] holds the metrics of steps[i]."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, int(s)) for row, s in zip(rows, steps) for k, v in row.items()
                   if s > self.logged_through]
        self.record.metrics += metrics
        self._call_with_failover(lambda client, run_id: log_batch(client, run_id, metrics=metrics))

    def log_image(self, image: np.ndarray, key: str, step: int) -> None:
        """A (H, W) or (H, W, 3) uint8 image as a step image (MLflow's image UI) and a PNG artifact."""
        if step <= self.logged_through:
            return
        self.record.images.append((image, key, step))
        self._call_with_failover(lambda client, run_id: log_step_image(client, run_id, image, key, step))

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.record.artifacts.append((str(path), artifact_path))
        self._call_with_failover(lambda client, run_id: client.log_artifact(run_id, str(path), artifact_path))

    def log_text(self, text: str, artifact_file: str) -> None:
        """A text file among the run's artifacts, e.g. run.json."""
        self.record.texts.append((text, artifact_file))
        self._call_with_failover(lambda client, run_id: client.log_text(run_id, text, artifact_file))

    def set_tags(self, tags: dict) -> None:
        tags = {k: str(v) for k, v in tags.items()}
        self.record.tags.update(tags)
        for k, v in tags.items():
            self._call_with_failover(lambda client, run_id, k=k, v=v: client.set_tag(run_id, k, v))

    def finish(self, status: str = "FINISHED") -> None:
        self._call_with_failover(lambda client, run_id: client.set_terminated(run_id, status=status))

    def fail(self, reason: str) -> None:
        """Mark the run FAILED and say why (tag `failure_reason`, shown in the run's overview)."""
        self.set_tags({"failure_reason": reason[:5000]})
        self.finish("FAILED")


def log_step_image(client, run_id: str, image: np.ndarray, key: str, step: int) -> None:
    client.log_image(run_id, image, key=key, step=step)
    client.log_image(run_id, image, artifact_file=f"{key}/step_{step:07d}.png")

