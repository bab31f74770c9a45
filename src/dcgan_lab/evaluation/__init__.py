"""Stages `train_classifier` (classifier: the FID feature extractor) and `evaluate` (fidelity: torch-fidelity
plumbing; per_class and fid_infinity: more scores from the features it extracted; evaluate: every run's scores;
results: their shape, which the report reads)."""
