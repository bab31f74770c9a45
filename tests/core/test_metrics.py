"""The metric registry: every key the report and `ablation.primary` use, with its label and direction."""

from dcgan_lab.core.metrics import METRICS, PRIMARY, label, short
from dcgan_lab.evaluation.evaluate import SCORES


def test_every_registered_metric_is_a_score_evaluate_writes():
    assert set(METRICS) <= set(SCORES)


def test_fid_inf_counterparts_are_registered_fids():
    for key, m in METRICS.items():
        if m.fid_inf:
            assert METRICS[m.fid_inf].higher_is_better is False and "FID∞" in METRICS[m.fid_inf].label


def test_the_primary_may_be_any_compared_score_but_not_a_conditional_only_or_descriptive_one():
    assert "ema_fid" in PRIMARY and "fid" in PRIMARY and "is_mean" in PRIMARY
    assert not {"conditional_accuracy", "classes_covered", "ema_fid_delta"} & set(PRIMARY)


def test_labels_and_short_names_fall_back_to_the_key():
    assert (label("is_mean"), short("is_mean")) == ("IS", "is")
    assert (label("unknown"), short("unknown")) == ("unknown", "unknown")
