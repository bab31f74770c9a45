"""Where a run came from, as MLflow tags: the machine, the data, the code, the DVC experiment.

DVC sets DVC_EXP_NAME and DVC_EXP_BASELINE_REV for every stage of `dvc exp run` (also queued ones,
which run in temp copies under .dvc/tmp/exps/ whose HEAD is a DVC-internal commit), so the baseline
rev names the code, and the params that differ from the baseline's params.yaml name the experiment.

The `study` tag (study_id) names the question the report answers, so that the MLflow UI can group a study's
runs across pipeline runs and DVC experiments: the declared design and the data, not the seeds.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from pathlib import Path

from ..core import paths
from ..core.config import AblationConfig
from ..core.errors import DataError, reason
from ..core.params import flatten, read_raw, to_dict

MAX_TAG = 5000  # MLflow caps tag values at 8000 characters
STUDY_ID_LENGTH = 10  # hex digits: a short name for a person to read, compare and filter on


def git(args: list[str], cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def system_tags() -> dict[str, str]:
    """torch and CUDA versions, and the accelerator (or CPU) this process can use."""
    import torch

    if torch.cuda.is_available():
        device = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    else:
        device = f"cpu ({platform.processor() or platform.machine()})"
    return {
        "system.torch": torch.__version__,
        "system.cuda": torch.version.cuda or "none",
        "system.cudnn": str(torch.backends.cudnn.version() or "none"),
        "system.device": device,
        "system.python": platform.python_version(),
        "system.platform": platform.platform(),
    }


def manifest_sha256(data_dir: Path) -> str | None:
    """sha256 of the prepared data set's manifest (it holds every split's sha256), if prepared."""
    path = paths.manifest_file(data_dir)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def split_sha256s(data_dir: Path) -> dict[str, str]:
    """{split: sha256} from the prepared data set's manifest."""
    path = paths.manifest_file(data_dir)
    try:
        return {name: split["sha256"] for name, split in json.loads(path.read_text())["splits"].items()}
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run `dvc repro prepare` first") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: unreadable ({reason(exc)}); rerun `dvc repro prepare`") from exc


def study_id(ablation: AblationConfig, splits: dict[str, str]) -> str:
    """The study's short id, the MLflow tag `study`: a hash of the declared design (every `ablation` param but
    `seeds`, so more seeds extend the same study, and a param added later counts without a change here) and of
    the data (each split's sha256, `splits` as split_sha256s gives them)."""
    design = {k: v for k, v in to_dict(ablation).items() if k != "seeds"}
    text = json.dumps({"ablation": design, "data": splits}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:STUDY_ID_LENGTH]


def changed_params(current: dict, baseline: dict) -> dict[str, object]:
    """Flattened params that differ from the baseline's: {'model.g_width': 64}; removed keys map to None."""
    now, before = flatten(current or {}), flatten(baseline or {})
    changed = {k: v for k, v in now.items() if k not in before or before[k] != v}
    changed.update({k: None for k in before if k not in now})
    return dict(sorted(changed.items()))


def format_changes(changes: dict[str, object]) -> str:
    text = ", ".join(f"{k}={'<removed>' if v is None else v}" for k, v in changes.items()) or "none"
    return text if len(text) <= MAX_TAG else text[: MAX_TAG - 3] + "..."


def experiment_tags(env: dict[str, str], cwd: Path, params_file: Path) -> dict[str, str]:
    """git commit, DVC experiment name and baseline, and the params changed against the baseline commit's
    version of `params_file` (the file the stage read)."""
    baseline = env.get("DVC_EXP_BASELINE_REV")
    commit = baseline or git(["rev-parse", "HEAD"], cwd)
    tags: dict[str, str] = {}
    if commit:
        tags["git_commit"] = commit
    if name := env.get("DVC_EXP_NAME"):
        tags["dvc_exp_name"] = name
    if baseline:
        tags["dvc_exp_baseline_rev"] = baseline
    params_file = Path(cwd) / params_file
    in_repo = git(["ls-files", "--full-name", "--error-unmatch", str(params_file)], cwd)  # its path in the commit
    if commit and in_repo and params_file.is_file():
        old = git(["show", f"{commit}:{in_repo}"], cwd)
        if old is not None:
            now = read_raw(params_file.read_text(), params_file)
            tags["params_changed"] = format_changes(changed_params(now, read_raw(old, f"{commit}:{in_repo}")))
    return tags


def run_tags(env: dict[str, str], cwd: Path, params_file: Path, data_dir: Path | None = None) -> dict[str, str]:
    """Every fact above, for RunLogger.start: what the stage ran on, with which code, params and data."""
    tags = {**system_tags(), **experiment_tags(env, cwd, params_file)}
    if data_dir is not None and (sha := manifest_sha256(Path(cwd) / data_dir)):
        tags["data.manifest_sha256"] = sha
    return tags
