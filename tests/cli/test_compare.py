"""`dcgan-lab compare`, run as the installed console script: one verdict line per comparison, in the report's
words, from the committed metrics/ablation.json and from a small one written here; one error line without one."""

from __future__ import annotations

import json

from helpers import ROOT, dcgan_lab_all, error_line

REPORT = {
    "radford": {"n_seeds": 3}, "final": {"n_seeds": 3}, "baseline": {"n_seeds": 1},
    "verdicts": {
        "final_vs_radford": {"fid": "final better", "fid_diff": -2.0, "fid_ci_low": -2.6, "fid_ci_high": -1.4,
                             "fid_p": 0.001, "fid_p_holm": 0.004, "fid_test": "paired t", "fid_seeds_needed": 2,
                             "is": "not distinguishable", "is_diff": 0.23, "is_ci_low": -0.9, "is_ci_high": 1.4,
                             "is_p_holm": 0.41, "is_test": "paired t", "is_seeds_needed": 12},
        "baseline_vs_radford": {"fid": "n/a", "fid_diff": 2.0, "fid_test": "n/a", "is": "n/a", "is_test": "n/a"},
    },
}


def test_one_line_per_comparison_in_the_reports_words(tmp_path):
    (tmp_path / "ablation.json").write_text(json.dumps(REPORT))
    fid, is_, real, missing = dcgan_lab_all(
        ("compare", "--metrics", tmp_path / "ablation.json"),
        ("compare", "--metrics", tmp_path / "ablation.json", "--metric", "is"),
        ("compare",), ("compare", "--metrics", tmp_path / "nope.json"), cwd=ROOT)
    assert fid.returncode == 0, fid.stderr
    assert fid.stdout.splitlines()[1:] == [
        "final vs radford: final better (FID −2.0 [−2.6, −1.4], p = 0.004, paired t, Holm)",
        "baseline vs radford: n/a with 1 vs 3 seeds (FID +2.0): no test"]
    assert fid.stdout.startswith("FID (lower is better)")
    assert is_.stdout.splitlines()[1] == (
        "final vs radford: not distinguishable with 3 seeds (IS +0.23 [−0.90, 1.40], p = 0.41, paired t, Holm); "
        "about 12 seeds would resolve a difference this size")

    committed = json.loads((ROOT / "metrics" / "ablation.json").read_text())["verdicts"]
    lines = real.stdout.splitlines()[1:]
    assert len(lines) == len(committed) and all(" vs " in line and "FID" in line for line in lines)
    assert error_line(missing).startswith(f"error: --metrics: {tmp_path / 'nope.json'} not found")
