"""User errors: one base class the stages turn into one line and exit 2, each kind also the built-in
exception a caller would catch for it (a missing data set is a FileNotFoundError, and so on)."""

import pytest

from dcgan_lab.core import errors


@pytest.mark.parametrize("cls,builtin", [
    (errors.ConfigError, ValueError),
    (errors.DatasetNotFound, FileNotFoundError),
    (errors.CheckpointError, RuntimeError),
    (errors.EvaluationError, RuntimeError),
    (errors.DataError, ValueError),
    (errors.OutputError, OSError),
])
def test_each_user_error_is_also_the_builtin_a_caller_expects(cls, builtin):
    exc = cls("train.batch_size: 0 is out of range")
    assert isinstance(exc, errors.UserError) and isinstance(exc, builtin)
    assert str(exc) == "train.batch_size: 0 is out of range"  # the message is the user's line, as given
    with pytest.raises(errors.UserError):
        raise exc


def test_user_errors_are_not_a_catch_all_for_bugs():
    assert not issubclass(errors.UserError, (ValueError, OSError, RuntimeError))
    assert not isinstance(KeyError("x"), errors.UserError) and not isinstance(ValueError("x"), errors.UserError)
