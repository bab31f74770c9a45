"""Argument types say what is allowed; the shared flags parse as the subcommands expect."""

from __future__ import annotations

import argparse

import pytest

from dcgan_lab.cli import options


@pytest.mark.parametrize("parse, text, value", [
    (options.positive_int, "64", 64), (options.walk_steps, "2", 2), (options.non_negative_int, "0", 0),
    (options.positive_float, "0.7", 0.7), (options.positive_float, "2", 2.0),
])
def test_allowed_values_parse(parse, text, value):
    assert parse(text) == value


@pytest.mark.parametrize("parse, text, message", [
    (options.positive_int, "0", "0 is out of range; allowed: an integer >= 1"),
    (options.positive_int, "1.5", "'1.5' is not an integer; allowed: an integer >= 1"),
    (options.walk_steps, "1", "1 is out of range; allowed: an integer >= 2"),
    (options.non_negative_int, "-3", "-3 is out of range; allowed: an integer >= 0"),
    (options.positive_float, "0", "0 is out of range; allowed: a number > 0, e.g. 0.7"),
    (options.positive_float, "-0.5", "-0.5 is out of range; allowed: a number > 0, e.g. 0.7"),
    (options.positive_float, "nan", "nan is out of range; allowed: a number > 0, e.g. 0.7"),
    (options.positive_float, "big", "'big' is not a number; allowed: a number > 0, e.g. 0.7"),
])
def test_other_values_say_what_is_allowed(parse, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=f"^{message}$".replace("(", r"\(").replace(".", r"\.")):
        parse(text)


def test_source_and_class_flags():
    parser = argparse.ArgumentParser()
    options.add_source(parser)
    options.add_class(parser)
    args = parser.parse_args(["models/final/seed0", "--best", "--class", "3"])
    assert (args.src, args.ema, args.best, args.klass) == ("models/final/seed0", False, True, 3)
    assert parser.parse_args(["x.pt"]).klass is None
