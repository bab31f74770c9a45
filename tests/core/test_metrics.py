"""The metric table: every score evaluate writes, with its label, its direction, and what the report and
`ablation.primary` may do with it."""

from dcgan_lab.core.metrics import BEST, EMA, METRICS, PRIMARY, REPORTED, label, scored_for, short


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
    assert scored_for(BEST) == headline and scored_for(EMA) == headline
    assert all(f"{prefix}{k}" in METRICS for prefix in (BEST, EMA) for k in headline)


def test_spreads_are_logged_beside_their_score_not_as_scores_of_their_own():
    spreads = {key: m.spread for key, m in METRICS.items() if m.spread}
    assert spreads == {"kid_mean": "kid_std", "is_mean": "is_std"} and not set(spreads.values()) & set(METRICS)


def test_labels_and_short_names_fall_back_to_the_key():
    assert (label("is_mean"), short("is_mean")) == ("IS", "is")
    assert (label("unknown"), short("unknown")) == ("unknown", "unknown")
