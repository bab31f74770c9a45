"""FID∞ with the real torch-fidelity on Gaussian features with a known answer (the FID of a distribution against
itself is 0, and FID's bias falls like 1/N), on every sample it is torch-fidelity's FID exactly, it repeats for a
seed, and too few samples give no fit."""

import math

import numpy as np
import pytest
import torch
from torch_fidelity import metric_fid

from dcgan_lab.core.config import EvaluateConfig
from dcgan_lab.evaluation.fid_infinity import MIN_SAMPLES, fid_infinity, sample_counts
from dcgan_lab.evaluation.fidelity import extractor_kwargs, fidelity_metrics


def gaussian(n: int, dim: int, seed: int) -> torch.Tensor:
    """(n, dim) float32 draws of N(0, I), as an extractor would give features."""
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def test_the_counts_are_evenly_spaced_in_one_over_n_from_2500_or_a_quarter_up_to_every_sample():
    assert sample_counts(10000) == [2500, 2800, 3182, 3684, 4375, 5385, 7000, 10000]
    assert sample_counts(50000)[0] == 2500 and sample_counts(50000)[-1] == 50000
    assert sample_counts(200) == [50, 56, 64, 74, 88, 108, 140, 200]  # under 10,000: from a quarter
    steps = np.diff(1.0 / np.array(sample_counts(10000)))
    assert steps == pytest.approx(np.full(7, steps[0]), rel=2e-3)  # even in 1/N, up to rounding N to integers


def test_on_one_distribution_the_fid_falls_with_n_and_fid_infinity_removes_most_of_its_bias():
    """Fake and real from N(0, I): every FID is bias, about c (1/N + 1/M). The fit removes the fake side's part;
    the real side's, c/M, stays: with M = 4 N_max that is a fifth of the FID at N_max."""
    r = fid_infinity(gaussian(5000, 32, 0), gaussian(20000, 32, 1), seed=0)
    assert r.counts == tuple(sample_counts(5000)) and len(r.fids) == len(r.counts) and r.reason is None
    # Neighbouring counts share most of their samples' noise and may swap; further apart the bias shows.
    assert r.fids[0] > r.fids[3] > r.fids[-1] > 0
    assert abs(r.value) < 0.5 * r.fids[-1]


def test_the_fid_on_every_sample_is_torch_fidelitys_fid_exactly(mnist, classifier_path):
    (train_x, _), (test_x, _) = mnist
    cfg = EvaluateConfig(batch_size=100, is_splits=2, kid_subset_size=100, precision_recall=False)
    kwargs = extractor_kwargs(cfg, classifier_path)
    result, fake, real = fidelity_metrics(train_x[:200], test_x[:300], kwargs, cfg, torch.device("cpu"))
    r = fid_infinity(fake["features"], real["features"], seed=0)
    assert r.counts[-1] == 200 and r.fids[-1] == result["fid"] and math.isfinite(r.value)
    stats = [metric_fid.fid_features_to_statistics(x) for x in (fake["features"], real["features"])]
    assert r.fids[-1] == metric_fid.fid_statistics_to_metric(*stats, False)[metric_fid.KEY_METRIC_FID]


def test_the_same_seed_gives_the_same_answer_another_seed_other_subsets():
    fake, real = gaussian(1000, 16, 2), gaussian(2000, 16, 3)
    first, again, other = (fid_infinity(fake, real, seed=s) for s in (7, 7, 8))
    assert first == again
    assert other.counts == first.counts and other.fids[-1] == first.fids[-1]  # every sample: no subset drawn
    assert other.fids[:-1] != first.fids[:-1] and other.value != first.value


def test_too_few_samples_give_no_fit_and_say_why():
    real = gaussian(100, 4, 4)
    r = fid_infinity(gaussian(MIN_SAMPLES - 1, 4, 5), real, seed=0)
    assert (r.value, r.counts, r.fids) == (None, (), ()) and r.reason == "19 fake samples; FID∞ needs at least 20"
    smallest = fid_infinity(gaussian(MIN_SAMPLES, 4, 5), real, seed=0)
    assert smallest.counts[0] == 5 and smallest.counts[-1] == 20 and math.isfinite(smallest.value)
