"""`dcgan-lab compare`, run as the installed console script: the declared design, then the verdict sentences the
report stored in ablation.json, printed as they are with the second feature space's mark, from the committed
metrics/ablation.json and from a small one written here; exploratory lines with --metric; one error line for a
missing file, an unknown metric, or an ablation.json from before the declared design."""

from __future__ import annotations

import json

from helpers import ROOT, dcgan_lab_all, error_line

SENTENCE = "final vs radford: final better on FID of EMA G: −2.0 [−2.6, −1.4] (98.3% simultaneous interval, ...)"
REPORT = {
    "radford": {"n_seeds": 3}, "final": {"n_seeds": 3},
    "design": {"primary": "ema_fid", "margin": 1.0, "alpha": 0.05, "comparisons": 1, "level": 0.05,
               "correction": "Bonferroni", "control": "radford", "seeds": [0, 1, 2]},
    "verdicts": {"final_vs_radford": {"verdict": "better", "winner": "final", "sentence": SENTENCE}},
    "exploratory": {"final_vs_radford": {"is": {"sentence": "final vs radford, IS (exploratory): +0.23 [...]"},
                                         "fid": {"sentence": "final vs radford, FID (exploratory): −1.0 [...]"}}},
}


def test_the_design_then_the_stored_sentences_and_exploratory_lines_on_request(tmp_path):
    path = tmp_path / "ablation.json"
    path.write_text(json.dumps(REPORT))
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"verdicts": {}}))
    primary, inception, real, unknown, missing, before = dcgan_lab_all(
        ("compare", "--metrics", path), ("compare", "--metrics", path, "--metric", "is"), ("compare",),
        ("compare", "--metrics", path, "--metric", "nope"), ("compare", "--metrics", tmp_path / "nope.json"),
        ("compare", "--metrics", old), cwd=ROOT)
    assert primary.returncode == 0, primary.stderr
    assert primary.stdout.splitlines() == [
        f"{path}: primary ema_fid, margin ±1, family-wise alpha 0.05 over 1 comparisons (Bonferroni), seeds 0, 1, 2; "
        "difference = first − second", SENTENCE]
    assert inception.stdout.splitlines()[1:] == ["final vs radford, IS (exploratory): +0.23 [...]"]
    assert error_line(unknown) == (f"error: --metric: 'nope' is not in {path}'s exploratory comparisons; allowed: "
                                   "fid, is (the primary, ema_fid, has verdicts: omit --metric)")
    assert error_line(missing).startswith(f"error: --metrics: {tmp_path / 'nope.json'} not found")
    assert error_line(before).startswith(f"error: --metrics: {old} has no \"design\" and \"verdicts\"")

    sequential = tmp_path / "sequential.json"  # a sequential design's: its looks beside the seeds run
    sequential.write_text(json.dumps({**REPORT, "design": {
        **REPORT["design"], "seeds": [10, 11, 12, 13, 14], "looks": [5, 10],
        "correction": "Bonferroni over the comparisons, a Pocock-type boundary over the looks"}}))
    (looked,) = dcgan_lab_all(("compare", "--metrics", sequential), cwd=ROOT)
    assert looked.stdout.splitlines()[0] == (
        f"{sequential}: primary ema_fid, margin ±1, family-wise alpha 0.05 over 1 comparisons (Bonferroni over the "
        "comparisons, a Pocock-type boundary over the looks), seeds 10, 11, 12, 13, 14; looks at 5, 10 seeds per "
        "variant; difference = first − second")

    committed = json.loads((ROOT / "metrics" / "ablation.json").read_text())
    lines = real.stdout.splitlines()[1:]
    assert lines == [f"{v['sentence']} — {v['second_space']['mark']}" for v in committed["verdicts"].values()]
    assert len(lines) == 6  # each with its mark from the second feature space


def test_against_another_run_says_verdict_by_verdict_whether_it_reproduced(tmp_path):
    """Two runs of one study (e.g. two machines): each comparison is the same verdict or says how it differs, with
    both runs' numbers; a different design is named; --metric is refused (only the primary has verdicts)."""
    entry = {"verdict": "better", "winner": "final", "diff": -2.0, "ci_low": -2.6, "ci_high": -1.4, "p": 0.0012,
             "sentence": SENTENCE}
    here = {**REPORT, "verdicts": {"final_vs_radford": entry,
                                   "final_vs_improved": {**entry, "verdict": "open", "winner": None, "p": 0.03}}}
    there = {**REPORT, "design": {**REPORT["design"], "seeds": [0, 1, 2, 3]},
             "verdicts": {"final_vs_radford": {**entry, "diff": -1.9, "p": 0.002},
                          "final_vs_improved": {**entry, "winner": "improved", "diff": 0.5, "ci_low": 0.1,
                                                "ci_high": 0.9, "p": 0.004}}}
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(here))
    b.write_text(json.dumps(there))
    compared, with_metric = dcgan_lab_all(("compare", "--metrics", a, "--against", b),
                                          ("compare", "--metrics", a, "--against", b, "--metric", "fid"), cwd=ROOT)
    assert compared.returncode == 0, compared.stderr
    assert compared.stdout.splitlines()[1:] == [
        f"note: the designs differ (seeds: [0, 1, 2] here, [0, 1, 2, 3] in {b}); the verdicts answer different "
        "questions",
        "final vs radford: same verdict (final better); here −2.00 [−2.60, −1.40] p 0.0012, there −1.90 [−2.60, "
        "−1.40] p 0.002",
        "final vs improved: differs: open here, improved better there; here −2.00 [−2.60, −1.40] p 0.03, there "
        "+0.50 [0.10, 0.90] p 0.004",
        f"1 of 2 verdicts the same in {b}"]
    assert error_line(with_metric) == "error: --against compares verdicts, which only the primary has; omit --metric"
