"""Failures a user can fix from the message alone. Stages print them as one line and exit 2."""


class UserError(Exception):
    """Base class: the message names what is wrong and what would be right."""


class ConfigError(UserError, ValueError):
    """A params.yaml value that is unknown, of the wrong type or out of range."""


class DatasetNotFound(UserError, FileNotFoundError):
    """The data set is not where we looked; the message says where and how to get it."""


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that is missing, unreadable or from an incompatible version."""


class EvaluationError(UserError, RuntimeError):
    """Evaluation cannot run as configured (e.g. Inception weights missing offline)."""


class DataError(UserError, ValueError):
    """A data file that is there but corrupt (checksum mismatch, unreadable)."""


class OutputError(UserError, OSError):
    """An output location that cannot be written."""


class Stopped(Exception):
    """Work stopped on request (a signal), with what was saved; the stage exits with `exit_code`."""

    exit_code = 1


def reason(exc: BaseException) -> str:
    """What went wrong in `exc`, on one line, for a UserError that wraps it: the type and the first line of the
    message (torch's load_state_dict puts a header first and each mismatch on a line of its own: the first
    mismatch is kept, the others counted); a KeyError names the missing entry."""
    if isinstance(exc, KeyError) and exc.args:
        return f"KeyError: it has no {exc.args[0]!r} entry"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):  # "Error(s) in loading state_dict for Generator:"
        more = f" (and {len(lines) - 2} more like it)" if len(lines) > 2 else ""
        return f"{type(exc).__name__}: {lines[1]}{more}"
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
