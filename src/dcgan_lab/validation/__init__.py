"""Stage `validate_extractor`: is the feature space FID is measured in a FID space? The val split made worse step by
step (disturb: the disturbances), scored against the evaluation's real split at every step (extractor: the scores,
the checks and metrics/extractor.json; checks: the verdicts, pure), and the picture of it (figure). Apart from
evaluation/, so that the evaluate@ stages, which depend on that whole folder, do not rerun when this changes."""
