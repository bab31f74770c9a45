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
