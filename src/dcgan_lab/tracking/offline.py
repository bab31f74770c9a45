"""Runs logged while the tracking server was away, and bringing them back to it, once each.

    python -m dcgan_lab.tracking.offline --to http://mlflow.example:5000 [--from sqlite:///mlflow-offline.db]

A stage that cannot reach its server from the start logs into `<repo>/mlflow-offline.db` (store.tracking_uri).
A server that goes away mid-run has the run carried on there (runs.RunLogger._fail_over): a run with the same
tags and params, everything logged so far replayed into it, tagged `continues_run` with the server run's
id. The sync copies each offline run to the server: a run that continues a server run the server still
has gets only what that run lacks (metric values by key and step, params, tags, artifacts, status), every
other one is copied whole. Each synced offline run is tagged `synced_to`, so a second sync skips it.
(MLflow itself has no store-to-store copy.)
"""

from __future__ import annotations

import argparse
import sys
import tempfile

from .store import EXPERIMENT, experiment_id, log_batch, offline_uri, open_client


def _target(run, dst, target_experiment: str):
    """The server run an offline run continues, if the server still has it; else a new run for it."""
    continues = run.data.tags.get("continues_run", "")
    run_id = continues.rpartition("#")[2]
    if run_id:
        try:
            return dst.get_run(run_id), False
        except Exception:  # the server lost it (a new store): copy the offline run whole
            pass
    tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.") or k == "mlflow.runName"}
    return dst.create_run(target_experiment, start_time=run.info.start_time, tags=tags), True


def sync_runs(src_uri: str, dst_uri: str) -> list[tuple[str, str]]:
    """Copy every unsynced run of the project's experiment from src to dst; returns (src id, dst id) pairs."""
    from mlflow.entities import Metric, Param

    src, dst = open_client(src_uri), open_client(dst_uri)
    exp = src.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        return []
    target_id = experiment_id(dst)
    copied = []
    for run in src.search_runs([exp.experiment_id], max_results=50000):
        if "synced_to" in run.data.tags:
            continue
        rid = run.info.run_id
        new, created = _target(run, dst, target_id)
        nid = new.info.run_id
        have = {k: {m.step for m in dst.get_metric_history(nid, k)} for k in new.data.metrics} if not created else {}
        params = [Param(k, v) for k, v in run.data.params.items() if k not in new.data.params]
        metrics = [Metric(m.key, m.value, m.timestamp, m.step)
                   for key in run.data.metrics for m in src.get_metric_history(rid, key)
                   if m.step not in have.get(key, ())]
        log_batch(dst, nid, params=params, metrics=metrics)
        tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.") and k != "continues_run"}
        for k, v in tags.items():
            if new.data.tags.get(k) != v:
                dst.set_tag(nid, k, v)
        dst.set_tag(nid, "synced_from", f"{src_uri}#{rid}")
        with tempfile.TemporaryDirectory() as tmp:
            if src.list_artifacts(rid):
                dst.log_artifacts(nid, src.download_artifacts(rid, "", tmp))  # same paths overwrite, not add
        dst.set_terminated(nid, status=run.info.status if run.info.status != "RUNNING" else "KILLED",
                           end_time=run.info.end_time)
        src.set_tag(rid, "synced_to", f"{dst_uri}#{nid}")
        copied.append((rid, nid))
    return copied


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--to", required=True, help="tracking server URI, e.g. http://127.0.0.1:5000")
    parser.add_argument("--from", dest="src", default=offline_uri())
    args = parser.parse_args(argv)
    copied = sync_runs(args.src, args.to)
    print(f"copied {len(copied)} run(s) from {args.src} to {args.to}", file=sys.stderr)


if __name__ == "__main__":
    main()
