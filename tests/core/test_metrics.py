"""The metric table: every score evaluate writes, with its label, its direction, and what the report and
`ablation.primary` may do with it."""

from dcgan_lab.core.metrics import (BEST, EMA, METRICS, PRIMARY, REPORTED, SECOND_SPACE, in_second_space, label,
                                   scored_for, short)


def test_fid_inf_counterparts_are_registered_fids():
    for key, m in METRICS.items():
        if m.fid_inf:
            assert METRICS[m.fid_inf].higher_is_better is False and "FID∞" in METRICS[m.fid_inf].label


def test_the_primary_may_be_any_compared_score_but_not_a_conditional_only_or_descriptive_one():
    assert PRIMARY == ("fid", "intra_fid_mean", "kid_mean", "is_mean", "precision", "recall", "intra_precision_mean",
                       "intra_recall_mean", "best_fid", "ema_fid", "fid_inf", "best_fid_inf", "ema_fid_inf")
    # the diversity ratio has no better side beyond 1 (as varied as the data), so no study decides on it
    assert not {"conditional_accuracy", "classes_covered", "ema_fid_delta", "intra_diversity_mean"} & set(PRIMARY)


def test_every_possible_primary_is_a_column_of_the_report():
    assert set(PRIMARY) <= set(REPORTED)
    assert REPORTED == ("fid", "intra_fid_mean", "kid_mean", "is_mean", "precision", "recall", "intra_precision_mean",
                        "intra_recall_mean", "intra_diversity_mean", "classes_covered", "class_kl_real", "best_fid",
                        "ema_fid", "ema_fid_delta", "fid_inf", "best_fid_inf", "ema_fid_inf", "conditional_accuracy")


def test_the_best_and_ema_generators_are_scored_on_the_headline_metrics_and_ema_fid_delta_is_not_one():
    headline = ("fid", "fid_inf", "is_mean", "kid_mean", "precision", "recall", "intra_precision_mean",
                "intra_recall_mean", "intra_diversity_mean")  # eval.json's order
    second = ("second_fid", "second_kid_mean", "second_is_mean", "second_precision", "second_recall")
    assert scored_for(BEST) == headline + second and scored_for(EMA) == headline + second
    assert all(f"{prefix}{k}" in METRICS for prefix in (BEST, EMA) for k in headline)


def test_spreads_are_logged_beside_their_score_not_as_scores_of_their_own():
    spreads = {key: m.spread for key, m in METRICS.items() if m.spread}
    assert spreads == {"kid_mean": "kid_std", "is_mean": "is_std"} and not set(spreads.values()) & set(METRICS)


def test_labels_and_short_names_fall_back_to_the_key():
    assert (label("is_mean"), short("is_mean")) == ("IS", "is")
    assert (label("unknown"), short("unknown")) == ("unknown", "unknown")


def test_the_second_space_measures_the_distribution_scores_of_every_generator_and_reports_none_of_them():
    assert in_second_space("ema_fid") == "ema_second_fid" and in_second_space("fid") == "second_fid"
    assert in_second_space("best_recall") == "best_second_recall"
    assert in_second_space("intra_fid_mean") is None and in_second_space("ema_fid_inf") is None
    keys = [in_second_space(p + k) for p in ("", BEST, EMA) for k in SECOND_SPACE]
    assert all(k in METRICS and not METRICS[k].in_report and not METRICS[k].primary_eligible for k in keys)
    assert METRICS["ema_second_fid"].label == "FID of EMA G in the second space"
    assert METRICS["second_recall"].higher_is_better and not METRICS["best_second_kid_mean"].higher_is_better
