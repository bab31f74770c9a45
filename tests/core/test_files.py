"""Outputs appear whole or not at all, unwritable places fail early, and the checksums say what changed."""

import hashlib
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
from contextlib import contextmanager

import pytest
import torch

from dcgan_lab.core.errors import OutputError
from dcgan_lab.core.files import (
    atomic_dir, atomic_torch_save, atomic_write_text, code_hash, ensure_writable, save_torch, sha256_file,
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


def test_outputs_get_the_modes_the_umask_gives_not_the_private_ones_of_temp_files(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    atomic_torch_save({"w": torch.ones(1)}, tmp_path / "x.pt")
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("a")
    assert stat.S_IMODE((tmp_path / "x.pt").stat().st_mode) == 0o666 & ~umask  # mkstemp's would be 0600
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o777 & ~umask  # mkdtemp's would be 0700


def test_atomic_write_text_replaces_whole_files(tmp_path):
    path = tmp_path / "m" / "eval.json"
    atomic_write_text(path, json.dumps({"fid": 1.0}))
    atomic_write_text(path, json.dumps({"fid": 2.0}))
    assert json.loads(path.read_text()) == {"fid": 2.0} and [p.name for p in path.parent.iterdir()] == ["eval.json"]


@contextmanager
def file_size_limit(nbytes: int):
    """Writes past `nbytes` fail with EFBIG, as on a full disk: RLIMIT_FSIZE, with SIGXFSZ ignored so that the
    write fails instead of the signal killing the process (Python ignores it already; said here to be sure)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_a_write_that_fails_for_lack_of_space_keeps_the_old_file_and_says_so_in_one_line(tmp_path):
    """Disk full (here: a file-size limit) while a checkpoint, a text file or an output folder is written: an
    OutputError naming the file and the OS's reason, the previous version intact, no temp file left."""
    path = tmp_path / "seed0" / "state.pt"
    atomic_torch_save({"step": 100, "w": torch.ones(10)}, path)  # a small previous checkpoint
    (tmp_path / "eval.json").write_text("{}")
    big = {"step": 200, "w": torch.ones(1 << 20)}  # 4 MiB
    with file_size_limit(256 << 10):
        with pytest.raises(OutputError) as info:
            atomic_torch_save(big, path)
        with pytest.raises(OutputError, match=r"/fresh\.pt: could not write it \(File too large\); nothing was "
                                              r"written$"):
            atomic_torch_save(big, tmp_path / "seed0" / "fresh.pt")
        with pytest.raises(OutputError, match=r"/eval\.json: could not write it \(File too large\); the previous "
                                              r"file is kept$"):
            atomic_write_text(tmp_path / "eval.json", "x" * (512 << 10))
        with pytest.raises(OutputError, match=r"/prepared: could not write it \(File too large\); nothing was "
                                              r"written$"):
            with atomic_dir(tmp_path / "prepared") as tmp:
                save_torch({"images": torch.zeros(1 << 20, dtype=torch.uint8)}, tmp / "train.pt")
    assert str(info.value) == f"{path}: could not write it (File too large); the previous checkpoint is kept"
    assert isinstance(info.value.__cause__, Exception) and "\n" not in str(info.value)
    old = torch.load(path, weights_only=True)
    assert old["step"] == 100 and torch.equal(old["w"], torch.ones(10))
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.pt"]  # no temp file left beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.json", "seed0"]  # nor a temp folder
    assert (tmp_path / "eval.json").read_text() == "{}"


def test_a_failed_read_inside_atomic_dir_is_not_reported_as_a_write(tmp_path):
    """Only writes become OutputErrors: an input that cannot be read (an OSError too) stays what it is."""
    with pytest.raises(FileNotFoundError):
        with atomic_dir(tmp_path / "out"):
            (tmp_path / "missing-input.png").read_bytes()
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_cannot_write_next_to_a_file_it_is_not_allowed_to(tmp_path):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    with pytest.raises(OutputError, match=r"blocker/prepared: cannot write outputs here \(.*\); check the path and "
                                          r"its permissions$"):
        with atomic_dir(tmp_path / "blocker" / "prepared"):
            pass


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
