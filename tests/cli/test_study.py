"""`dcgan-lab study`'s rule, without DVC: which look comes next, how params.yaml's seeds line is extended (nothing
else in the file changes), and the line it prints per look. tests/e2e/test_pipeline.py runs it for real."""

import pytest

from dcgan_lab.cli.study import look_line, set_seeds
from dcgan_lab.core.errors import UserError
from dcgan_lab.reporting.design import next_look

PARAMS = """\
train:
  seeds: [99]               # not the ablation's
ablation:
  variants: [radford, final]
  # the pilot was 0-2
  seeds: [10, 11, 12, 13, 14]   # in the order they are used
  looks: [5, 10]
evaluate:
  seed: 0
"""


def test_the_next_look_is_the_first_declared_one_above_the_seeds_run():
    assert next_look([5, 10], 5) == 10 and next_look([5, 10], 3) == 5 and next_look([5, 10], 7) == 10
    assert next_look([5, 10], 10) is None and next_look((), 3) is None  # the runner passes () for looks: null


def test_only_the_ablation_seeds_value_changes_comments_and_other_sections_stay():
    out = set_seeds(PARAMS, [10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
    assert out == PARAMS.replace("seeds: [10, 11, 12, 13, 14]   #",
                                 "seeds: [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]   #")
    assert set_seeds(out, [10, 11, 12, 13, 14]) == PARAMS


def test_a_params_file_without_a_flow_style_seeds_line_is_one_error():
    with pytest.raises(UserError, match=r"^study: params\.yaml has no `seeds: \[\.\.\.\]` line under `ablation:`"):
        set_seeds("ablation:\n  variants: [a]\n", [1, 2])


def test_the_look_line_names_what_was_decided_and_what_is_open():
    report = {"design": {"seeds": [10, 11, 12, 13, 14]}, "verdicts": {
        "final_vs_radford": {"verdict": "better", "outcome": "final better"},
        "improved_vs_radford": {"verdict": "open", "outcome": "open: next look at 10 seeds"}}}
    line, open_ = look_line(report)
    assert line == "look at 5 seeds per variant: final vs radford: final better; open: improved vs radford"
    assert open_ == ["improved vs radford"]
