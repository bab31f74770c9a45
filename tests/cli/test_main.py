"""The `dcgan-lab` entry point: every subcommand has --help, a bad command line is one `error:` line and exit 2
(not argparse's usage block), and so is anything unexpected (not a traceback)."""

from __future__ import annotations

from dcgan_lab.cli import main as cli
from dcgan_lab.cli import sample
from helpers import dcgan_lab_all, error_line

SUBCOMMANDS = ("sample", "interpolate", "summary", "compare", "study")


def test_every_subcommand_has_help():
    top, *subs = dcgan_lab_all(("--help",), *[(name, "--help") for name in SUBCOMMANDS])
    assert top.returncode == 0 and all(name in top.stdout for name in SUBCOMMANDS)
    for name, result in zip(SUBCOMMANDS, subs):
        assert result.returncode == 0 and result.stdout.startswith(f"usage: dcgan-lab {name}"), result.stderr
    assert "--truncation T" in subs[0].stdout and "--slerp" in subs[1].stdout and "--out DIR" in subs[2].stdout


def test_a_bad_command_line_is_one_error_line():
    unknown, nothing, bad_flag, both, bad_int = dcgan_lab_all(
        ("frobnicate",), (), ("sample", "models/final/seed0", "--out", "g.png", "--bogus"),
        ("sample", "models/final/seed0", "--ema", "--best", "--out", "g.png"),
        ("sample", "models/final/seed0", "--n", "many", "--out", "g.png"))
    assert error_line(unknown) == ("error: dcgan-lab: argument COMMAND: invalid choice: 'frobnicate' (choose from "
                                   "'sample', 'interpolate', 'summary', 'compare', 'study', 'ui') (see dcgan-lab --help)")
    assert error_line(nothing) == ("error: dcgan-lab: the following arguments are required: COMMAND "
                                   "(see dcgan-lab --help)")
    assert "unrecognized arguments: --bogus" in error_line(bad_flag)
    assert "argument --best: not allowed with argument --ema" in error_line(both)
    assert error_line(bad_int) == ("error: dcgan-lab sample: argument --n: 'many' is not an integer; allowed: an "
                                   "integer >= 1 (see dcgan-lab sample --help)")


def test_an_unexpected_failure_is_one_line_too(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(sample, "run", broken)  # the parser picks up run when it is built
    assert cli.main(["sample", "x", "--out", "g.png"]) == 2
    assert capsys.readouterr().err == "error: RuntimeError: something broke\n"
