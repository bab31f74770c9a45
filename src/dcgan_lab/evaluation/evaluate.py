"""FID, FID∞, IS, KID, precision/recall, class coverage, per-class scores and the mode-collapse alarm of every
(variant, seed) run.

torch-fidelity computes every distribution metric (see fidelity.py); this module decides what goes
in: each run's generated images and the held-out real split, seen through one feature extractor
that every result names, plus class coverage from the domain classifier, the per-class scores
(per_class.py: FID, precision/recall, diversity) and FID∞, the FID extrapolated to infinitely many samples
(fid_infinity.py), all from the features torch-fidelity already extracted, and the collapse flag read off them
(collapse.py). A conditional generator is asked for the real split's class shares.
Which of these are scores (MLflow metrics, the report's columns), with their labels and directions: core/metrics.py.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch

from ..core import paths
from ..core.config import EvaluateConfig, Params
from ..core.device import resolve_device
from ..core.files import atomic_write_text, code_hash, ensure_writable
from ..core.metrics import BEST, EMA, METRICS, scored_for
from ..core.progress import Progress
from ..gan.checkpoint import has_ema, load_generator, load_meta
from ..gan.models import Generator
from ..gan.sampling import generate
from ..tracking.registry import log_generator
from ..tracking.runs import RunLogger
from . import classifier, second_space
from .collapse import collapse_reason, collapse_tag, collapse_warnings
from .fid_infinity import fid_infinity
from .fidelity import PRC_KWARGS, extractor_kwargs, fidelity_metrics, reference_cache_name, requested_labels
from .per_class import class_groups, intra_diversity, intra_precision_recall, per_class_scores
from .process import keep_freed_memory, one_blas_thread
from .reference import check_features, second_checkpoint, second_scores

# What goes to MLflow: every score of the table and its spread (and intra_fid_class<k>, see _scores).
SCORES = tuple(k for key, m in METRICS.items() for k in (key, m.spread) if k)
BEST_SCORES, EMA_SCORES = scored_for(BEST), scored_for(EMA)  # taken from the best and the EMA generators' scores


@torch.inference_mode()
def predict_classes(images: torch.Tensor, model: classifier.Classifier, device: torch.device,
                    batch_size: int = 1000) -> torch.Tensor:
    """The domain classifier's class for each uint8 image, (N,) on the CPU."""
    model = model.to(device).eval()
    return torch.cat([model(images[i : i + batch_size].to(device)).argmax(1).cpu()
                      for i in range(0, len(images), batch_size)])


def class_coverage(preds: torch.Tensor, real_labels: torch.Tensor, n_classes: int) -> dict[str, float]:
    """Mode collapse, seen by the domain classifier (`preds`: its class for each sample): how many
    classes get at least a tenth of their uniform share of the samples, and KL(generated || uniform)
    and KL(generated || real) of the predicted class histogram (0 = the same distribution)."""
    p = torch.bincount(preds, minlength=n_classes).double() / len(preds)
    q_real = torch.bincount(real_labels, minlength=n_classes).double() / len(real_labels)
    q_uniform = torch.full_like(p, 1.0 / n_classes)

    def kl(q):
        mask = p > 0
        return float((p[mask] * (p[mask] / q[mask].clamp_min(1e-12)).log()).sum())

    return {
        "classes_covered": int((p >= 0.1 / n_classes).sum()),
        "class_kl_uniform": kl(q_uniform),
        "class_kl_real": kl(q_real),
        "class_histogram": [round(float(v), 5) for v in p],
    }


def evaluate_variant(
    g: Generator,
    real: tuple[torch.Tensor, torch.Tensor],
    split_sha256: str,
    cfg: EvaluateConfig,
    classifier_path: Path,
    device: torch.device,
    cache_root: Path | None = None,
    second: Path | None = None,
) -> dict:
    """All metrics of one generator, plus the protocol that produced them, and with `second` (the second
    classifier's checkpoint) its distribution scores in the second feature space (second_fid, ...). fid_inf is FID∞ (null below
    fid_infinity.MIN_SAMPLES samples), fitted to the FIDs fid_inf_fids of random subsets of fid_inf_counts
    samples (seeded by evaluate.seed), the last of them every sample: its FID is `fid`. collapse: null, or why
    the alarm flags this generator (thresholds in collapse_thresholds)."""
    images, labels = real
    if cfg.n_real is not None:
        images, labels = images[: cfg.n_real], labels[: cfg.n_real]
    kwargs = extractor_kwargs(cfg, classifier_path)
    g = g.to(memory_format=torch.channels_last)  # NHWC generates faster, on a CPU too (benchmarks/RESULTS.md)
    requested = requested_labels(g, cfg.n_samples, labels)  # None for an unconditional G
    fake = generate(g, cfg.n_samples, cfg.seed, cfg.batch_size, device, labels=requested)
    cache_name = reference_cache_name(kwargs, split_sha256, len(images))
    result, features, real_features = fidelity_metrics(fake, images, kwargs, cfg, device, cache_name, cache_root)
    clf = classifier.load_classifier(classifier_path)
    if kwargs["feature_extractor"] == classifier.EXTRACTOR_NAME:  # torch-fidelity just ran it over the samples
        preds = features["logits"].argmax(1)
    else:
        preds = predict_classes(fake, clf, device)
    result.update(class_coverage(preds, labels, clf.spec.n_classes))
    layer, n_classes = kwargs["feature_layer_fid"], clf.spec.n_classes  # per-class FID in the overall FID's space
    with one_blas_thread():  # small NumPy products between torch's ops (process.py)
        result.update(per_class_scores(features[layer], real_features[layer], preds, requested, labels, n_classes))
        groups, _ = class_groups(preds, requested)  # every per-class score groups the samples as the intra-FID does
        if cfg.precision_recall:  # in the overall precision/recall's feature space, with its settings
            prc = kwargs["feature_layer_prc"]
            result.update(intra_precision_recall(features[prc], groups, real_features[prc], labels, n_classes,
                                                 PRC_KWARGS))
        result.update(intra_diversity(features[layer], groups, real_features[layer], labels, n_classes, cfg.seed))
        inf = fid_infinity(features[layer], real_features[layer], cfg.seed)
    result.update(fid_inf=inf.value, fid_inf_counts=list(inf.counts), fid_inf_fids=list(inf.fids))
    if second is not None:
        result.update(second_scores(fake, images, second, cfg, device, split_sha256, cache_root),
                      second_extractor=second_space.EXTRACTOR_NAME)
    result.update(
        extractor=kwargs["feature_extractor"],
        fid_features=kwargs["feature_layer_fid"],
        n_samples=cfg.n_samples,
        n_real=len(images),
        real_split=cfg.real_split,
        seed=cfg.seed,
        collapse=collapse_reason(result, cfg.collapse_diversity, cfg.collapse_recall),
        collapse_thresholds={"diversity": cfg.collapse_diversity, "recall": cfg.collapse_recall},
    )
    return result


def check_inputs(variants: list[str], seeds: list[int], classifier_path: Path, models: Path) -> None:
    """Read the classifier (class coverage needs it whatever the extractor) and every generator to be scored:
    a missing or broken file stops the stage in seconds, not after the runs before it were scored."""
    classifier.load_classifier(classifier_path)
    for run in (paths.model_dir(models, name, seed) for name in variants for seed in seeds):
        load_generator(run.checkpoint)
        if has_ema(run.checkpoint):
            load_generator(run.checkpoint, ema=True)
        if run.best.exists():
            load_generator(run.best)


def generators_of(run: paths.ModelDir) -> int:
    """How many generators a run has to score: the last one, its best, its EMA."""
    return 1 + run.best.exists() + has_ema(run.checkpoint)


def score_run(cfg: EvaluateConfig, device: torch.device, name: str, seed: int, real: tuple[torch.Tensor, torch.Tensor],
              sha: str, classifier_path: Path, models: Path, cache_root: Path | None = None,
              progress: Progress | None = None, second: Path | None = None) -> dict:
    """One run's scores: its last generator's, with the best (best_*) and the EMA generator's (ema_*) beside them,
    each under the same protocol, and the extractor's test accuracy."""
    run = paths.model_dir(models, name, seed)
    tick = progress.update if progress else lambda now: None
    r = evaluate_variant(load_generator(run.checkpoint), real, sha, cfg, classifier_path, device, cache_root, second)
    tick(now=f"{name} seed {seed}")
    if run.best.exists():  # the best generator by quick FID during training, same protocol
        best = evaluate_variant(load_generator(run.best), real, sha, cfg, classifier_path, device, cache_root, second)
        r.update(best_step=load_meta(run.best)["steps"], **{f"{BEST}{k}": best[k] for k in BEST_SCORES if k in best},
                 best_collapse=best["collapse"])
        tick(now=f"{name} seed {seed} best")
    if has_ema(run.checkpoint):  # the EMA of G's weights (train.ema_decay), same protocol
        ema = evaluate_variant(load_generator(run.checkpoint, ema=True), real, sha, cfg, classifier_path, device,
                               cache_root, second)
        r.update(**{f"{EMA}{k}": ema[k] for k in EMA_SCORES if k in ema}, ema_fid_delta=ema["fid"] - r["fid"],
                 ema_collapse=ema["collapse"])
        tick(now=f"{name} seed {seed} EMA")
    accuracy = classifier.classifier_meta(classifier_path).get("test_accuracy")
    if r["extractor"] == classifier.EXTRACTOR_NAME and accuracy is not None:
        r["extractor_test_accuracy"] = accuracy  # how good the feature space is, with every score
    return r


def evaluate_runs(
    cfg: EvaluateConfig,
    device: torch.device,
    variants: list[str],
    seeds: list[int],
    real: tuple[torch.Tensor, torch.Tensor],
    sha: str,
    classifier_path: Path,
    models: Path,
    cache_root: Path | None = None,
    second: Path | None = None,
) -> dict[str, dict[str, dict]]:
    """{variant: {"seed<k>": score_run(...)}} for every variant and seed given."""
    progress = Progress(sum(generators_of(paths.model_dir(models, name, seed)) for name in variants for seed in seeds),
                        "evaluate", unit="generator")
    results: dict[str, dict[str, dict]] = {}
    for name in variants:
        for seed in seeds:
            results.setdefault(name, {})[f"seed{seed}"] = score_run(cfg, device, name, seed, real, sha,
                                                                    classifier_path, models, cache_root, progress,
                                                                    second)
    progress.close()
    for line in collapse_warnings(results):  # after the progress bar: a line of their own each
        print(line, file=sys.stderr)
    return results


def log_results(results: dict[str, dict[str, dict]], models: Path, tags: dict[str, str]) -> None:
    """Scores into the MLflow run that trained each (variant, seed): same metric names across runs.
    Each scored generator is logged as an MLflow model in its run (the report registers the lowest FID's, with
    mlflow.register). A run already scored under the same protocol is not scored twice.
    `tags` (provenance) go to a new run, made only when a model's training run is not in this store."""
    code = code_hash()[:16]
    for name, seed_key, r in ((n, s, r) for n, by_seed in results.items() for s, r in by_seed.items()):
        seed = int(seed_key.removeprefix("seed"))
        run = paths.model_dir(models, name, seed)
        logger = RunLogger.resume(run.mlflow_run, name, seed, tags)
        scores = _scores(r)
        eval_tags = {f"eval.{k}": r[k] for k in ("extractor", "fid_features", "n_samples", "n_real", "real_split", "seed",
                                            "kid_subset_size", "second_extractor") if k in r}
        eval_tags["eval.code"] = code  # new evaluation code scores again, even under the same protocol
        # Unchanged variants keep their run across DVC experiments: a run already scored under this
        # protocol is not scored again (a rescore can differ in the last bits, e.g. with another thread
        # count, and would add a second value at step 0).
        logged = logger.client.get_run(logger.run_id).data
        same_protocol = all(logged.tags.get(k) == str(v) for k, v in eval_tags.items())
        if not (same_protocol and scores.keys() <= logged.metrics.keys()):
            logger.log_metrics([scores], [0])
        for key in ("extractor_test_accuracy", "intra_fid_grouping"):  # about the scores, not their protocol
            if key in r:
                eval_tags[f"eval.{key}"] = r[key]
        if "collapse" in r:  # the mode-collapse alarm: each flagged generator and why, or "none"
            eval_tags["collapse"] = collapse_tag(r)
        logger.set_tags(eval_tags)
        log_generator(logger.client, logger.run_id, run.checkpoint)


def _scores(r: dict) -> dict[str, float]:
    """The finite scores of one result as MLflow metrics, each class's FID as intra_fid_class<k>."""
    per_class = {f"intra_fid_class{k}": v for k, v in enumerate(r.get("intra_fid", []))}
    return {k: float(v) for k, v in {**{k: r.get(k) for k in SCORES}, **per_class}.items()
            if isinstance(v, (int, float)) and math.isfinite(v)}


def evaluate_run_stage(params: Params, name: str, seed: int, data_dir: Path, classifier_dir: Path, models: Path,
                       out: paths.EvalPaths, features: Path, tags: dict[str, str],
                       second_dir: Path | None = None) -> dict:
    """An evaluate@<variant>-<seed> stage: score one run (its last, best and EMA generators), write
    metrics/eval/<variant>/seed<k>.json, and log the scores and the generator to the run's MLflow record.
    Freed memory stays in the process (process.py): torch-fidelity's precision/recall faulted its pages in again."""
    keep_freed_memory()
    cfg, device = params.evaluate, resolve_device(params.train.device)
    classifier_path = paths.classifier_checkpoint(classifier_dir)
    target = out.run(name, seed)
    ensure_writable(target.parent)
    check_inputs([name], [seed], classifier_path, models)  # the classifier first: its checksum names the features
    second = second_checkpoint(cfg, second_dir)
    real, sha = check_features(cfg, data_dir, classifier_path, features, second)
    results = evaluate_runs(cfg, device, [name], [seed], real, sha, classifier_path, models, features, second)
    r = results[name][f"seed{seed}"]
    atomic_write_text(target, json.dumps(r, indent=2) + "\n")
    log_results(results, models, tags)
    return r
