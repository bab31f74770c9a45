"""MLflow, for every stage that logs: the store (tracking URI, client, experiment, offline fallback, batched
logging), runs (one per variant and seed), provenance tags, generators as models and the registry, and the
sync of runs logged offline while a tracking server was down."""
