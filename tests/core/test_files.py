"""Outputs appear whole or not at all, unwritable places fail early, and the checksums say what changed."""

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from dcgan_lab.core.errors import OutputError
from dcgan_lab.core.files import (
    atomic_dir, atomic_torch_save, atomic_write_text, code_hash, ensure_writable, sha256_file,
)
from helpers import ROOT


def test_atomic_dir_replaces_the_old_output_on_success_and_leaves_nothing_on_error(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        assert tmp.parent == tmp_path and list(tmp.iterdir()) == []
        (tmp / "a.txt").write_text("first")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (out / "a.txt").read_text() == "first"
    with atomic_dir(out) as tmp:
        (tmp / "b.txt").write_text("second")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]  # replaced whole, not merged
    with pytest.raises(RuntimeError, match="killed mid-write"):
        with atomic_dir(out) as tmp:
            (tmp / "c.txt").write_text("half")
            raise RuntimeError("killed mid-write")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temp dir left beside it
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]  # the last good output stands
    with pytest.raises(ValueError):
        with atomic_dir(tmp_path / "never"):
            raise ValueError
    assert not (tmp_path / "never").exists()


def test_atomic_torch_save_keeps_the_old_file_when_saving_fails(tmp_path):
    path = tmp_path / "sub" / "x.pt"
    atomic_torch_save({"w": torch.ones(3)}, path)  # creates the folder
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(3))
    with pytest.raises(Exception):
        atomic_torch_save({"f": lambda: None}, path)  # a lambda cannot be pickled: torch.save fails midway
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(3))
    assert [p.name for p in path.parent.iterdir()] == ["x.pt"]  # no temp file left


def test_atomic_write_text_replaces_whole_files(tmp_path):
    path = tmp_path / "m" / "eval.json"
    atomic_write_text(path, json.dumps({"fid": 1.0}))
    atomic_write_text(path, json.dumps({"fid": 2.0}))
    assert json.loads(path.read_text()) == {"fid": 2.0} and [p.name for p in path.parent.iterdir()] == ["eval.json"]


def test_ensure_writable_creates_folders_and_names_the_one_it_cannot_use(tmp_path):
    ensure_writable(tmp_path / "a" / "b", tmp_path / "c")
    assert (tmp_path / "a" / "b").is_dir() and (tmp_path / "c").is_dir()
    (tmp_path / "blocker").write_text("a file where a folder should be")
    with pytest.raises(OutputError, match=r"blocker/models: cannot write outputs here \(.*\); check the path and "
                                          r"its permissions$"):
        ensure_writable(tmp_path / "c", tmp_path / "blocker" / "models")


def test_sha256_file_is_the_digest_of_the_bytes(tmp_path):
    data = bytes(range(256)) * 9000  # more than one 1 MiB read
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


HASHES = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import dcgan_lab
    from dcgan_lab.core.files import code_hash
    package = Path(dcgan_lab.__file__).parent
    assert package == Path(sys.argv[1]), package  # the copy, not the installed package
    hashes = {"copy": code_hash()}
    for name, change in [("deep module", lambda: (package / "training" / "loop.py").open("a").write("# x")),
                         ("new module", lambda: (package / "gan" / "extra.py").write_text("X = 1")),
                         ("top module", lambda: (package / "__init__.py").open("a").write("# y")),
                         ("not python", lambda: (package / "gan" / "notes.txt").write_text("ignored"))]:
        change()
        hashes[name] = code_hash()
    print(json.dumps(hashes))
""")


def test_code_hash_changes_when_any_python_file_anywhere_in_the_package_changes(tmp_path):
    """A resumed run continues only with the code that started it; a score names the code that made it."""
    copy = tmp_path / "src" / "dcgan_lab"
    shutil.copytree(ROOT / "src" / "dcgan_lab", copy, ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run([sys.executable, "-c", HASHES, str(copy)], env={"PYTHONPATH": str(tmp_path / "src")},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    h = json.loads(out.stdout)
    assert h["copy"] == code_hash()  # the same sources hash the same wherever they are
    assert len({h["copy"], h["deep module"], h["new module"], h["top module"]}) == 4
    assert h["not python"] == h["top module"]
