"""Every primary verdict re-decided in the second feature space, on synthetic score tables: a verdict that flips
between the spaces is marked with what the second says, one that holds is marked as holding, the margin is carried
over as the same fraction of the control's distance from its floor, and the report and ablation.json say so, while the
decision stays the first space's."""

import json

import pandas as pd
import pytest

from dcgan_lab.core.config import AblationConfig
from dcgan_lab.reporting.report import Study, render_markdown, report_text, summary_json
from dcgan_lab.reporting.robustness import HOLDS, PURPOSE, carried_margin, control_excess

VARIANTS = ["radford", "baseline", "improved"]  # radford is the control
FIXED = AblationConfig(variants=tuple(VARIANTS), primary="ema_fid", margin=1.0, looks=None, seeds=tuple(range(6)))
REFERENCE = {"fid_half_vs_half": 0.25, "kid_half_vs_half": 0.0, "is_real": 9.5, "n_per_half": 5000, "real_split": "test",
             "second": {"extractor": "dcgan-lab-lenet", "fid_half_vs_half": 2.5,
                                                  "kid_half_vs_half": 0.0, "is_real": 9.0, "test_accuracy": 0.99}}
NOISE = [0.1, -0.2, 0.15, -0.05, 0.2, -0.2]  # mean 0


def table(first: dict[str, float], second: dict[str, float]) -> pd.DataFrame:
    """Six seeds per variant: the EMA FID at `first[variant]` in the first space and `second[variant]` in the second,
    plus a little per-seed noise (the same in both spaces' units: tiny beside the second space's floor)."""
    return pd.DataFrame([{"variant": v, "seed": s, "ema_fid": first[v] + NOISE[s], "fid": first[v] + NOISE[s],
                          "ema_second_fid": second[v] + NOISE[s] * (1 + (v == "improved") * s)}
                         for v in VARIANTS for s in range(6)])


def test_the_margin_is_the_same_fraction_of_the_controls_distance_from_its_floor_in_each_space():
    t = table({"radford": 5.0, "baseline": 8.0, "improved": 4.0}, {"radford": 97.5, "baseline": 1.0, "improved": 1.0})
    excess = control_excess(t, "radford", ("ema_fid", "ema_second_fid"), (0.25, 2.5), range(6))
    assert excess == pytest.approx((4.75, 95.0))
    assert carried_margin(1.0, excess) == 20.0 and carried_margin(0.5, (3.0, 7.0)) == 1.17  # 3 significant figures
    # over the seeds it is given only (the first look's), and none when the control is not above a floor
    assert control_excess(t, "radford", ("ema_fid", "ema_second_fid"), (0.25, 2.5), [1])[0] == pytest.approx(4.55)
    assert carried_margin(1.0, (0.0, 95.0)) is None and carried_margin(1.0, (4.75, float("nan"))) is None


def test_a_verdict_that_flips_is_marked_and_one_that_holds_is_not():
    # baseline 3 FID worse than radford in both spaces (holds); improved better than radford in the first space,
    # indistinguishable from it in the second; improved vs baseline better in both
    study = Study(table({"radford": 5.0, "baseline": 8.0, "improved": 4.0},
                        {"radford": 97.5, "baseline": 127.5, "improved": 97.5}), FIXED, VARIANTS, REFERENCE)
    first = {f"{v.variant}_vs_{v.other}": v for v in study.verdicts}
    assert first["improved_vs_radford"].winner == "improved" and first["baseline_vs_radford"].winner == "radford"
    s = study.second
    assert s.design.margin == 20.0 and s.design.primary == "ema_second_fid" and s.design.m == 3
    marks = dict(zip(first, s.marks))
    assert marks["baseline_vs_radford"] == HOLDS and marks["improved_vs_baseline"] == HOLDS
    assert marks["improved_vs_radford"] == "differs in the second space: equivalent within ±20"
    assert s.held == 2
    # the decision stays the first space's: its verdicts are what they are without the second space
    alone = Study(study.table.drop(columns="ema_second_fid"), FIXED, VARIANTS, REFERENCE)
    assert alone.second is None and alone.verdicts == study.verdicts

    md = render_markdown(study, {}, REFERENCE)
    (line,) = [x for x in md.splitlines() if x.startswith("- improved vs radford: ")]
    assert line.endswith(" — **differs in the second space: equivalent within ±20**")
    (line,) = [x for x in md.splitlines() if x.startswith("- baseline vs radford: ")]
    assert line.endswith(f" — **{HOLDS}**")
    assert "## The verdicts in a second feature space (a robustness check)" in md
    assert "**2 of 3 verdicts hold in both spaces** (2 of them decided" in md and "±1 × 95 / 4.75 = ±20" in md
    assert "its floor (0.25) in the first space" in md and "its floor (2.5) in the second" in md
    assert "The decision stays the first space's" in md
    assert "| improved vs radford | improved better | equivalent within ±20 |" in md
    assert "In the second feature space (dcgan-lab-lenet, test accuracy 0.99): FID between the halves = 2.5" in md

    out = json.loads(json.dumps(summary_json(study), allow_nan=False))
    assert out["second_space"] == {"purpose": PURPOSE, "extractor": "dcgan-lab-lenet", "primary": "ema_second_fid",
                                   "margin": 20.0, "floors": {"first": 0.25, "second": 2.5},
                                   "control_above_floor": {"first": 4.75, "second": 95.0}, "comparisons": 3,
                                   "level": pytest.approx(0.05 / 3, abs=1e-6), "held": 2, "of": 3}
    entry = out["verdicts"]["improved_vs_radford"]
    assert entry["outcome"] == "improved better" and entry["verdict"] == "better"  # the study's verdict
    assert entry["second_space"]["verdict"] == "equivalent" and entry["second_space"]["mark"].startswith("differs")
    assert out["verdicts"]["baseline_vs_radford"]["second_space"]["mark"] == HOLDS
    assert report_text(out)[1].endswith(f" — {HOLDS}")  # the stored sentences carry the mark


def test_a_sequential_design_carries_the_margin_at_its_first_looks_seeds_and_keeps_it():
    t = table({"radford": 5.0, "baseline": 8.0, "improved": 4.0}, {"radford": 97.5, "baseline": 127.5, "improved": 97.5})
    looks = AblationConfig(variants=tuple(VARIANTS), primary="ema_fid", looks=(3, 6), seeds=(2, 0, 1, 3, 4, 5))
    study = Study(t, looks, VARIANTS, REFERENCE)
    # the first look's seeds are the first three of ablation.seeds as listed: 2, 0, 1 (noise 0.15, 0.1, -0.2)
    assert study.second.excess == pytest.approx((4.75 + 0.05 / 3, 95 + 0.05 / 3))
    assert study.second.design.margin == float(f"{(95 + 0.05 / 3) / (4.75 + 0.05 / 3):.3g}")
    assert study.second.design.looks == (3, 6)


def test_without_second_space_scores_or_floor_there_is_no_mark_and_no_section():
    t = table({"radford": 5.0, "baseline": 8.0, "improved": 4.0}, {"radford": 1.0, "baseline": 1.0, "improved": 1.0})
    for study in (Study(t.drop(columns="ema_second_fid"), FIXED, VARIANTS, REFERENCE),
                  Study(t, FIXED, VARIANTS, {"fid_half_vs_half": 0.25}), Study(t, FIXED, VARIANTS),
                  Study(t, FIXED, VARIANTS, REFERENCE)):  # the control below its second floor: no margin to carry
        md = render_markdown(study, {})
        assert study.second is None and "second feature space" not in md and " — **" not in md
        out = summary_json(study)
        assert "second_space" not in out and all("second_space" not in v for v in out["verdicts"].values())


def test_a_study_of_the_control_alone_has_nothing_to_re_decide():
    t = table({"radford": 5.0, "baseline": 8.0, "improved": 4.0}, {"radford": 97.5, "baseline": 1.0, "improved": 1.0})
    alone = AblationConfig(variants=("radford",), primary="ema_fid", looks=None, seeds=tuple(range(6)))
    study = Study(t[t["variant"] == "radford"], alone, ["radford"], REFERENCE)
    assert study.verdicts == [] and study.second is None and "second feature space" not in render_markdown(study, {})


def test_a_primary_the_second_space_does_not_measure_gets_no_re_decision():
    t = table({"radford": 5.0, "baseline": 8.0, "improved": 4.0}, {"radford": 1.0, "baseline": 1.0, "improved": 1.0})
    t["intra_fid_mean"] = t["fid"]
    study = Study(t, AblationConfig(variants=tuple(VARIANTS), primary="intra_fid_mean", looks=None,
                                    seeds=tuple(range(6))), VARIANTS, REFERENCE)
    assert study.second is None
