"""Stages `train_classifier` (classifier: the FID feature extractor) and `evaluate` (fidelity: torch-fidelity
plumbing; evaluate: every run's scores; results: their shape, which the report reads)."""
