"""Files: outputs appear whole or not at all (write beside the target, then rename over it), and
the checksums that say whether a file or the package's code changed."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from .errors import OutputError, UserError, reason


# errno values that only a write raises: a full disk, a file-size limit (RLIMIT_FSIZE), a quota, a read-only
# file system. Any other OSError inside `atomic_dir` may come from reading the inputs and is left alone.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS}


# What the process's umask leaves of rw-rw-rw- (files) and rwxrwxrwx (folders): outputs get the modes any other
# file of the user would, not the private 0600/0700 of the temp files they are written as. Read once, at import:
# setting and restoring the umask is not safe while other threads create files.
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_FILE_MODE, _DIR_MODE = 0o666 & ~_UMASK, 0o777 & ~_UMASK


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError behind `exc`: itself, or the one it was raised from or while handling (torch.save reports
    a failed write() of its file object as a RuntimeError whose context is that OSError)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and not isinstance(exc, UserError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _reason(err: OSError) -> str:
    return err.strerror or type(err).__name__


def _cannot_write_here(target: Path, err: OSError) -> OutputError:
    return OutputError(f"{target}: cannot write outputs here ({_reason(err)}); check the path and its permissions")


def _could_not_write(target: Path, err: OSError, existed: bool, what: str) -> OutputError:
    kept = f"the previous {what} is kept" if existed else "nothing was written"
    return OutputError(f"{target}: could not write it ({_reason(err)}); {kept}")


def _make_parent(target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot_write_here(target, exc) from exc


@contextmanager
def atomic_dir(out_dir: Path) -> Iterator[Path]:
    """Yield an empty temp dir beside `out_dir`; on success it replaces `out_dir`, on error it is removed.
    A write that fails for lack of space or permission (in the temp dir) is an OutputError naming `out_dir`."""
    out_dir = Path(out_dir)
    existed = out_dir.exists()
    _make_parent(out_dir)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    except OSError as exc:
        raise _cannot_write_here(out_dir, exc) from exc
    try:
        yield tmp
        tmp.chmod(_DIR_MODE)
        _swap_in(tmp, out_dir)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        err = _os_error(exc) if isinstance(exc, Exception) else None
        written = err is not None and (err.errno in _WRITE_ERRNOS or _inside(err.filename, tmp))
        if written and (isinstance(exc, OutputError) or not isinstance(exc, UserError)):
            raise _could_not_write(out_dir, err, existed, "output") from exc
        raise


def _inside(filename, directory: Path) -> bool:
    return isinstance(filename, (str, os.PathLike)) and Path(filename).is_relative_to(directory)


def _swap_in(tmp: Path, out_dir: Path) -> None:
    """Put the finished temp dir in `out_dir`'s place by renames: the old output is whole until the new one is."""
    if not out_dir.exists():
        tmp.rename(out_dir)
        return
    old = tmp.with_name(f"{tmp.name}-old")
    out_dir.rename(old)
    try:
        tmp.rename(out_dir)
    except BaseException:
        old.rename(out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def atomic_torch_save(obj, path: Path) -> None:
    """torch.save to a temp file beside `path`, then rename: a crash never leaves half a file. A failed
    write (disk full, file too large, no permission) is an OutputError naming `path`; the old file stays."""
    path = Path(path)
    existed = path.exists()
    _make_parent(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    except OSError as exc:
        raise _could_not_write(path, exc, existed, "checkpoint") from exc
    try:
        with os.fdopen(fd, "wb") as f:  # a file object, so that a failed write() surfaces as its OSError
            torch.save(obj, f)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        err = _os_error(exc) if isinstance(exc, Exception) else None
        if err is not None:
            raise _could_not_write(path, err, existed, "checkpoint") from exc
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to a temp file beside `path`, then rename; a failed write is an OutputError naming `path`."""
    path = Path(path)
    existed = path.exists()
    _make_parent(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _could_not_write(path, exc, existed, "file") from exc


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def save_torch(obj, path: Path) -> None:
    """torch.save into a file of a directory being written (see atomic_dir), reporting a failed write as
    its OSError (torch.save given a path reports it as a RuntimeError without the reason)."""
    with open(path, "wb") as f:
        torch.save(obj, f)


def load_torch(path: Path, error: type[UserError], what: str, fix: str, mmap: bool = False):
    """torch.load of tensors and plain containers only (weights_only), onto the CPU. A file torch cannot
    read (truncated, foreign, garbage) is one `error` line: `<path>: not a readable <what> (<reason>); <fix>`."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise error(f"{path}: not a readable {what} ({reason(exc)}); {fix}") from exc


def ensure_writable(*dirs: Path) -> None:
    """Fail before hours of work, not after: each directory can be created and written."""
    for d in dirs:
        d = Path(d)
        try:
            d.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=d):
                pass
        except OSError as exc:
            raise _cannot_write_here(d, exc) from exc


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def code_hash() -> str:
    """sha256 of this package's source, every module in every subpackage: a resumed run continues
    with the code that started it, and a score says which evaluation code produced it."""
    package = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()
