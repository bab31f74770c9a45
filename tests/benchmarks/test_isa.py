"""The AVX2-restricted train benchmark (benchmarks/isa.py): the restriction is checked on the child's own oneDNN and
ATen before any figure is labelled AVX2, and the child's rows come back under that label. No timing is asserted."""

import sys

import yaml

from helpers import ROOT, prepared, raw_params_file, shrink

sys.path.insert(0, str(ROOT))  # benchmarks/ is not an installed package
from benchmarks import isa  # noqa: E402


def test_the_restriction_takes_effect_in_a_child_process_and_is_read_from_onednn_and_aten():
    found = isa.probe(isa.AVX2_ENV)
    assert found == {"onednn_isa": "Intel AVX2", "conv_kernel": "jit:avx2", "aten_capability": "AVX2"}
    assert isa.restricted(found)
    native = isa.probe({})
    assert native["onednn_isa"] and native["conv_kernel"] and native["aten_capability"]  # this CPU's own best


def test_restricted_means_every_path_on_avx2():
    assert not isa.restricted({"onednn_isa": "Intel AVX2", "conv_kernel": "brg:avx512_core", "aten_capability": "AVX2"})
    assert not isa.restricted({"onednn_isa": "Intel AVX2", "conv_kernel": "jit:avx2", "aten_capability": "AVX512"})
    assert not isa.restricted({"onednn_isa": None, "conv_kernel": None, "aten_capability": None})


def test_the_child_s_rows_come_back_labelled_after_the_check(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(shrink(raw_params_file()), sort_keys=False))
    rows = isa.restricted_train_rows(["--device", "cpu", "--quick", "--threads", "1", "--params", str(params),
                                      "--variants", "final", "--train-steps", "5", "--train-repeats", "1",
                                      "--data", str(prepared(tmp_path))])
    check, *measured = rows
    assert check.met and check.ours == "yes" and "jit:avx2" in check.note and "ATEN_CPU_CAPABILITY=avx2" in check.note
    names = [r.name for r in measured]
    assert names[0].startswith("train final") and all(n.endswith(" [AVX2-restricted]") for n in names)
    mfu = next(r for r in measured if r.name.startswith("MFU, train step"))
    assert 0 < mfu.ours < 100 and mfu.detail["peak_tflops"] > 0  # against the child's own, restricted, peak


def test_a_restriction_that_did_not_take_effect_is_one_row_not_figures(monkeypatch):
    monkeypatch.setattr(isa, "probe", lambda env: {"onednn_isa": "Intel AVX-512", "conv_kernel": "jit:avx512_core",
                                                   "aten_capability": "AVX512"})
    (row,) = isa.restricted_train_rows(["--quick"])
    assert row.met is False and row.ours == "no" and "oneDNN ISA Intel AVX-512" in row.note
