"""The training benchmark runs, and its reference is a fair one: no timing is asserted here (see benchmarks/)."""

import sys

import pytest
import torch

from helpers import ROOT

sys.path.insert(0, str(ROOT))  # benchmarks/ is not an installed package
from benchmarks import bench_train  # noqa: E402
from benchmarks import reference_dcgan as ref  # noqa: E402
from dcgan_lab.gan.models import Discriminator, Generator, specs_from_params  # noqa: E402


def test_reference_nets_have_our_layers(params):
    # Only the loop may differ: the reference's parameters match ours tensor for tensor.
    for name in params.variants:
        g_spec, d_spec = specs_from_params(params, params.variant(name), channels=1)
        netG, netD = ref.build_models(g_spec, d_spec, torch.device("cpu"))
        for theirs, ours in ((netG, Generator(g_spec)), (netD, Discriminator(d_spec))):
            assert [p.shape for p in theirs.parameters()] == [p.shape for p in ours.parameters()], name


def test_quick_train_bench_runs_and_the_reference_trains(params):
    images = torch.randint(0, 256, (256, 1, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 10, (256,))
    # final: the variant with spectral norm and DiffAugment, the most the reference has to mirror
    rows = bench_train.bench(params, images, labels, torch.device("cpu"), ["final"], timed=5, repeats=1, workers=0,
                             verbose=False)
    row = rows[0]
    assert row.name.startswith("train final") and row.ours > 0 and row.reference > 0 and row.ratio > 0
    assert row.detail["reference_finite"] and row.detail["ours_finite"]
    assert torch.isfinite(torch.tensor(row.detail["reference_last_losses"])).all()
    # MFU on a CPU: the train step's FLOP/s as a share of this CPU's fp32 matmul peak, measured in the same run.
    peak, mfu = rows[-2], rows[-1]
    assert peak.name.startswith("fp32 matmul peak, measured") and peak.ours > 0
    assert mfu.name == "MFU, train step (ours, final)" and 0 < mfu.ours < 100
    assert mfu.detail["peak_tflops"] == pytest.approx(peak.ours / 1e3)
    # What bounds the ratio: both loops' MFU on the same model FLOPs; the ratio is theirs, its ceiling 1 / the reference's.
    both = next(r for r in rows if r.name == "MFU, train step (final): ours vs the classic loop")
    assert both.ours == pytest.approx(mfu.ours) and both.ratio == pytest.approx(row.ratio)
    assert both.detail["ceiling_ratio"] == pytest.approx(100 / both.reference) and "ratio ceiling" in both.note


def test_default_variants_are_the_studys(params):
    # make bench times every variant a default `make repro` trains; the MFU rows count the last one.
    assert bench_train.variant_names("", params) == list(params.ablation.variants)
    assert bench_train.variant_names("final,baseline", params) == ["final", "baseline"]

