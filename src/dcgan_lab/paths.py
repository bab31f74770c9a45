"""Where each (variant, seed) run keeps its files; dvc.yaml spells the same paths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunPaths:
    model_dir: Path  # checkpoint.pt, best.pt, samples.png, mlflow_run.json (DVC output)
    train_metrics: Path  # summary of the training run (DVC metric, in git)
    losses: Path  # per-step table (DVC plot, in git)
    state: Path  # resumable checkpoint (DVC output with persist: true, so a rerun can resume)

    @property
    def checkpoint(self) -> Path:
        return self.model_dir / "checkpoint.pt"

    @property
    def best(self) -> Path:
        return self.model_dir / "best.pt"

    @property
    def samples(self) -> Path:
        return self.model_dir / "samples.png"

    @property
    def mlflow_run(self) -> Path:
        return self.model_dir / "mlflow_run.json"


def run_paths(variant: str, seed: int, root: Path = Path(".")) -> RunPaths:
    return RunPaths(
        model_dir=root / "models" / variant / f"seed{seed}",
        train_metrics=root / "metrics" / "train" / variant / f"seed{seed}.json",
        losses=root / "metrics" / "train" / variant / f"seed{seed}_losses.csv",
        state=root / "checkpoints" / variant / f"seed{seed}" / "state.pt",
    )
