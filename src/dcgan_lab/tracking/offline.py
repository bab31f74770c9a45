"""Copy runs logged offline (while the tracking server was down) into the server, once each.

    python -m dcgan_lab.tracking.offline --to http://mlflow.example:5000 [--from sqlite:///mlflow-offline.db]

Each copied run keeps its name, tags, params, every metric value at its step, its artifacts and its
status; the offline run is tagged `synced_to` so a second sync skips it. (MLflow itself has no
store-to-store copy.)
"""

from __future__ import annotations

import argparse
import sys
import tempfile

from ..core import paths
from .runs import EXPERIMENT, open_client, project_root


def sync_runs(src_uri: str, dst_uri: str) -> list[tuple[str, str]]:
    """Copy every unsynced run of the project's experiment from src to dst; returns (src id, dst id) pairs."""
    from mlflow.entities import Metric, Param

    src, dst = open_client(src_uri), open_client(dst_uri)
    exp = src.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        return []
    target = dst.get_experiment_by_name(EXPERIMENT)
    target_id = target.experiment_id if target else dst.create_experiment(EXPERIMENT)
    copied = []
    for run in src.search_runs([exp.experiment_id], max_results=50000):
        if "synced_to" in run.data.tags:
            continue
        rid = run.info.run_id
        tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.") or k == "mlflow.runName"}
        new = dst.create_run(target_id, start_time=run.info.start_time,
                             tags={**tags, "synced_from": f"{src_uri}#{rid}"})
        nid = new.info.run_id
        params = [Param(k, v) for k, v in run.data.params.items()]
        for i in range(0, len(params), 100):
            dst.log_batch(nid, params=params[i : i + 100])
        metrics = [Metric(m.key, m.value, m.timestamp, m.step)
                   for key in run.data.metrics for m in src.get_metric_history(rid, key)]
        for i in range(0, len(metrics), 1000):
            dst.log_batch(nid, metrics=metrics[i : i + 1000])
        with tempfile.TemporaryDirectory() as tmp:
            if src.list_artifacts(rid):
                local = src.download_artifacts(rid, "", tmp)
                dst.log_artifacts(nid, local)
        dst.set_terminated(nid, status=run.info.status if run.info.status != "RUNNING" else "KILLED",
                           end_time=run.info.end_time)
        src.set_tag(rid, "synced_to", f"{dst_uri}#{nid}")
        copied.append((rid, nid))
    return copied


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--to", required=True, help="tracking server URI, e.g. http://127.0.0.1:5000")
    parser.add_argument("--from", dest="src", default=f"sqlite:///{project_root() / paths.OFFLINE_DB}")
    args = parser.parse_args(argv)
    copied = sync_runs(args.src, args.to)
    print(f"copied {len(copied)} run(s) from {args.src} to {args.to}", file=sys.stderr)


if __name__ == "__main__":
    main()
