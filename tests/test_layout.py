"""The tests mirror the package: tests/<subpackage>/test_<module>.py for every module, end-to-end runs in
tests/e2e/, and no test module imports another (shared code lives in helpers.py and conftest.py)."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import ROOT

PACKAGE = ROOT / "src" / "dcgan_lab"
TESTS = ROOT / "tests"


def package_modules() -> list[Path]:
    return sorted(p.relative_to(PACKAGE) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")


def test_every_module_has_a_test_file_of_its_name():
    missing = [m.as_posix() for m in package_modules() if not (TESTS / m.parent / f"test_{m.name}").is_file()]
    assert missing == [], f"modules without tests/<subpackage>/test_<module>.py: {missing}"


def test_modules_live_in_the_pipeline_subpackages():
    folders = {m.parts[0] for m in package_modules() if len(m.parts) > 1}
    assert folders == {"core", "data", "gan", "training", "evaluation", "validation", "reporting",
                       "tracking", "cli"}
    assert [m.as_posix() for m in package_modules() if len(m.parts) == 1] == []  # nothing loose at the top


def test_no_test_module_imports_another():
    offenders = []
    for path in TESTS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(TESTS)}: {n}" for n in names
                          if n.split(".")[-1].startswith(("test_", "conftest"))]
    assert offenders == []


def test_modules_stay_small():
    """STYLE.md: modules you can hold in your head. A few hundred lines at most."""
    long = {m.as_posix(): n for m in package_modules() if (n := len((PACKAGE / m).read_text().splitlines())) > 320}
    assert long == {}


def test_functions_fit_on_a_screen():
    """No function over 60 lines, signature and docstring included."""
    long = {}
    for m in package_modules():
        for node in ast.walk(ast.parse((PACKAGE / m).read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60:
                long[f"{m.as_posix()}:{node.name}"] = node.end_lineno - node.lineno + 1
    assert long == {}
