"""dvc.yaml cannot lie: every package module a stage's script imports (transitively, module-level and
function-level imports alike) is covered by that stage's deps, every dep exists, the outs are the paths
`core.paths` derives from the stage's command line, and dvc.lock holds no stage dvc.yaml does not define."""

from __future__ import annotations

import ast
import itertools
import re
import shlex
from pathlib import Path

import pytest
import yaml

from helpers import ROOT

from dcgan_lab.core import paths

PACKAGE = ROOT / "src" / "dcgan_lab"


def module_file(name: str) -> Path | None:
    """src/dcgan_lab/a/b.py or src/dcgan_lab/a/b/__init__.py for 'dcgan_lab.a.b'; None outside the package."""
    if name != "dcgan_lab" and not name.startswith("dcgan_lab."):
        return None
    base = ROOT / "src" / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path, package: str | None) -> set[str]:
    """Every dcgan_lab module a file imports, anywhere in it; `from .x import y` resolves y to a module
    when it is one. `package` is the file's package (None for a script outside the package)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if module_file(f"{base}.{alias.name}"))
    return {name for name in found if module_file(name)}


def closure(script: Path) -> set[Path]:
    """The package files that running `script` executes: its imports, theirs, and every parent __init__."""
    seen: set[str] = set()
    todo = list(imported_modules(script, None))
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__.py and a/b/__init__.py first
            parent = ".".join(parts[:i])
            if parent in seen:
                continue
            seen.add(parent)
            file = module_file(parent)
            package = parent if file.name == "__init__.py" else parent.rpartition(".")[0]
            todo.extend(imported_modules(file, package))
    return {module_file(name).relative_to(ROOT) for name in seen}


def stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def dep_paths(stage: dict) -> list[str]:
    return [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", [])]


def script_of(stage: dict) -> Path:
    (script,) = re.findall(r"stages/\w+\.py", stage["cmd"])
    return Path(script)


def covered(file: Path, deps: list[str]) -> bool:
    return any(file.as_posix() == d or file.as_posix().startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize("name", list(stages()))
def test_every_imported_module_is_a_dep(name):
    stage = stages()[name]
    deps = dep_paths(stage)
    script = script_of(stage)
    assert script.as_posix() in deps, f"{name}: its script {script} is not a dep"
    files = closure(ROOT / script)
    assert any(f.parts[2] != "__init__.py" for f in files), f"{name}: found no package imports in {script}"
    missing = sorted(f.as_posix() for f in files if not covered(f, deps))
    assert missing == [], f"{name}: {script} imports these package files, but they are not in its deps: {missing}"
    code_deps = [d for d in deps if d.startswith(("src/", "stages/"))]
    assert [d for d in code_deps if not (ROOT / d).exists()] == [], f"{name}: deps that do not exist"


@pytest.mark.parametrize("name", list(stages()))
def test_every_command_execs_its_stage_so_dvc_reports_the_stage_own_exit_code(name):
    # Under dash, `sh -c "python ..."` keeps the shell as DVC's child; Ctrl-C kills the shell (DVC: "exited
    # with -2") while the stage is still writing its checkpoint. tests/e2e/test_signals.py runs it for real.
    assert shlex.split(stages()[name]["cmd"])[0] == "exec", f"{name}: cmd must start with `exec`"


def test_the_closure_follows_relative_and_function_level_imports():
    files = {f.as_posix() for f in closure(ROOT / "stages" / "evaluate.py")}
    # evaluate.py imports tracking.registry at module level, registry imports gan.checkpoint in a function
    assert "src/dcgan_lab/tracking/registry.py" in files and "src/dcgan_lab/gan/checkpoint.py" in files
    assert "src/dcgan_lab/core/__init__.py" in files and "src/dcgan_lab/__init__.py" in files
    assert "src/dcgan_lab/training/loop.py" not in files  # evaluation does not run the training loop
    assert not any(f.startswith("src/dcgan_lab/training/") for f in {f.as_posix() for f in
                                                                      closure(ROOT / "stages/train_classifier.py")})


def flags(cmd: str) -> dict[str, str]:
    """--name value pairs of a stage command (templating left as is)."""
    words = shlex.split(cmd)
    return {w[2:]: v for w, v in zip(words, words[1:]) if w.startswith("--")}


def outputs(stage: dict) -> set[str]:
    return {next(iter(o)) if isinstance(o, dict) else o
            for key in ("outs", "metrics", "plots") for o in stage.get(key, [])}


def test_outs_are_the_paths_core_paths_derives_from_the_command_line():
    s = stages()
    assert outputs(s["prepare"]) == {flags(s["prepare"]["cmd"])["out"]}

    f = flags(s["train_classifier"]["cmd"])
    assert outputs(s["train_classifier"]) == {f["out"], f["metrics"]}
    assert paths.classifier_checkpoint(Path(f["out"])).parent == Path(f["out"])

    f = flags(s["train"]["cmd"])
    run = paths.run_paths("${item.variant}", "${item.seed}", Path(f["models"]), Path(f["checkpoints"]),
                          Path(f["metrics"]))
    assert outputs(s["train"]) == {run.model.path.as_posix(), run.state.parent.as_posix(),
                                   run.train_metrics.as_posix(), run.losses.as_posix()}

    f = flags(s["validate_extractor"]["cmd"])  # its two files, named on the command line as they are
    assert outputs(s["validate_extractor"]) == {f["metrics"], f["plots"]}
    assert {f["data"], f["classifier"]} <= set(dep_paths(s["validate_extractor"]))

    f = flags(s["reference"]["cmd"])
    assert outputs(s["reference"]) == {paths.EvalPaths(Path(f["metrics"])).reference.as_posix(), f["features"]}

    f = flags(s["evaluate"]["cmd"])
    out = paths.EvalPaths(Path(f["metrics"]))
    assert outputs(s["evaluate"]) == {out.run("${item.variant}", "${item.seed}").as_posix()}
    assert {f["features"], f["models"] + "/${item.variant}/seed${item.seed}"} <= set(dep_paths(s["evaluate"]))
    assert f["features"] == flags(s["reference"]["cmd"])["features"]

    f = flags(s["report"]["cmd"])
    out = paths.ReportPaths(Path(f["metrics"]), Path(f["plots"]))
    evaluated = paths.EvalPaths(Path(f["metrics"]))
    assert outputs(s["report"]) == {p.as_posix() for p in (out.markdown, out.table, out.summary,
                                                           *out.figures.values(), evaluated.results, evaluated.table)}
    assert {evaluated.runs.as_posix(), evaluated.reference.as_posix(), f["train-metrics"], f["models"]} <= set(
        dep_paths(s["report"]))


def expand(name: str, stage: dict, params: dict) -> set[str]:
    """The stage names `dvc repro` makes of one dvc.yaml entry (matrix and foreach included)."""
    def resolve(value):
        if isinstance(value, str) and value.startswith("${"):
            node = params
            for part in value[2:-1].split("."):
                node = node[part]
            value = node
        return list(value.keys()) if isinstance(value, dict) else list(value)

    if "matrix" in stage:
        axes = [resolve(v) for v in stage["matrix"].values()]
        return {f"{name}@" + "-".join(map(str, combo)) for combo in itertools.product(*axes)}
    if "foreach" in stage:
        return {f"{name}@{item}" for item in resolve(stage["foreach"])}
    return {name}


def test_dvc_lock_holds_only_stages_dvc_yaml_defines():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    defined = set().union(*(expand(name, stage, params) for name, stage in stages().items()))
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
    assert sorted(set(lock) - defined) == [], "dvc.lock has stages dvc.yaml no longer defines"
    assert sorted(defined - set(lock)) == [], "dvc.lock misses stages: rerun the pipeline and commit dvc.lock"
