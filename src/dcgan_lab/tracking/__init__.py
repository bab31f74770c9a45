"""MLflow, for every stage that logs: runs (one per variant and seed), provenance tags, generators as
models and the registry, and the sync of runs logged offline while a tracking server was down."""
