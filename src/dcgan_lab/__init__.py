"""dcgan-lab: a reproducible DCGAN ablation pipeline (DVC stages, MLflow tracking, torch-fidelity metrics)."""

__version__ = "0.1.0"
