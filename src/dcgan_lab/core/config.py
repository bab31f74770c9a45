"""What params.yaml holds: one frozen dataclass per section, with its defaults.

`core.params` reads the file into these and validates them once; nothing below the
stage scripts reads YAML. The comments here and in params.yaml say what each key does.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal, Optional

from .errors import ConfigError


@dataclass(frozen=True)
class DataConfig:
    dataset: Literal["mnist", "fashion-mnist", "cifar10", "folder"] = "mnist"
    # Where cifar10 lives (or is downloaded to) and the image folder for `folder`.
    root: str = "data/raw"
    fashion_mnist_dir: str = "/usr/share/datasets/fashion-mnist"
    download: bool = False
    image_size: int = 32
    pixel_range: tuple[float, float] = (-1.0, 1.0)
    # Keep only the first N training images (quick runs); null keeps all.
    train_limit: Optional[int] = None
    # `folder` data sets without train/ and test/ subfolders hold out this share for evaluation.
    test_fraction: float = 0.1


@dataclass(frozen=True)
class ModelConfig:
    latent_dim: int = 100
    g_width: int = 32
    d_width: int = 32
    d_head: Literal["conv", "gap"] = "conv"


@dataclass(frozen=True)
class TrainConfig:
    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int = 64
    epochs: int = 2
    # Stop after this many optimizer steps (quick runs); null trains all epochs.
    max_steps: Optional[int] = None
    lr_g: float = 2.0e-4
    lr_d: float = 2.0e-4
    betas: tuple[float, float] = (0.5, 0.999)
    # bce: non-saturating GAN loss on logits; hinge; wgan-gp: Wasserstein critic with a gradient penalty
    # (Gulrajani et al. 2017), which wants d_steps 5, betas [0.0, 0.9] and no batch norm in D.
    loss: Literal["bce", "hinge", "wgan-gp"] = "bce"
    d_steps: int = 1  # D (critic) updates per G update, each on the next real batch; a step is one G update
    gp_weight: float = 10.0  # wgan-gp: weight of the gradient penalty (lambda in the paper)
    # Mode seeking (Mao et al. 2019): G's loss gains weight / (|G(z1, y) - G(z2, y)| / |z1 - z2|), the two
    # halves of each fake batch sharing their labels; it keeps a conditional G from ignoring z. 0: off.
    mode_seeking: float = 0.0
    # Losses are kept on the device and read back (one host sync) every log_every steps.
    log_every: int = 50
    sample_grid: int = 64
    # Every eval_every steps a quick FID (eval_samples generated vs as many held-out real images, same
    # extractor) picks the best generator, kept beside the last one; 0 turns it off.
    eval_every: int = 250
    eval_samples: int = 1000
    # A resumable checkpoint (models, optimizers, EMA, RNG streams, data order) every N steps and at
    # the end; a rerun with the same config resumes from it. 0: only at the end.
    checkpoint_every: int = 500
    # null: deterministic algorithms on CPU (bitwise repeatable), fast ones on CUDA.
    deterministic: Optional[bool] = None
    # Exponential moving average of G's weights, scored beside the raw G; 0 turns it off.
    ema_decay: float = 0.999
    # Standing statistics (BigGAN): the saved EMA generator's batch-norm running statistics, recomputed from
    # this many train-mode batches (batch_size each) of its own samples; 0 keeps the copies of the live G's,
    # which describe neither network. Training is the same either way: only the saved EMA G changes.
    ema_bn_batches: int = 32
    # Divergence guard: a non-finite loss, or D's outputs on real and generated images both within
    # `saturation` of 0 or 1 for `collapse_patience` steps in a row, stops training (0: no collapse check).
    collapse_patience: int = 500
    saturation: float = 1.0e-3
    on_divergence: Literal["stop", "rollback"] = "stop"  # rollback: last checkpoint, both lrs halved
    max_rollbacks: int = 3
    # Testing the guard: a NaN lands in D's first weight before this step (once). Leave null.
    inject_nan_at: Optional[int] = None
    # How the train stage starts: `python`, or `torchrun ...` for data-parallel training (DDP) over
    # several processes, e.g. "torchrun --standalone --nproc_per_node=4"; batch_size is per process.
    launcher: str = "python"
    sync_batch_norm: bool = False  # under torchrun with CUDA: batch norm statistics over all ranks
    # Speed switches; null: on for CUDA, off for CPU (see speed.py). amp is bf16 where supported, else fp16.
    amp: Optional[bool] = None
    channels_last: Optional[bool] = True  # NHWC pays on CPUs too (oneDNN): benchmarks/RESULTS.md
    compile: Optional[bool] = None
    # Batches from the whole training set on the device (false), or gathered from the memory-mapped set on
    # the host by a prefetching thread (true: for sets larger than the device's memory); the same batches
    # either way. null: stream when the set is over half the device's free memory.
    stream: Optional[bool] = None


@dataclass(frozen=True)
class AugmentConfig:
    """Differentiable augmentation applied to real and fake images before D."""

    translation: float = 0.0  # max shift as a fraction of the image side
    cutout: float = 0.0  # side of the erased square as a fraction of the image side
    color: bool = False  # brightness / saturation / contrast jitter
    flip: bool = False  # random horizontal flip (off for digits)

    @property
    def enabled(self) -> bool:
        return self.translation > 0 or self.cutout > 0 or self.color or self.flip


@dataclass(frozen=True)
class VariantConfig:
    g_activation: Literal["relu", "leaky_relu"] = "relu"
    g_batch_norm: bool = True
    d_batch_norm: bool = True
    d_spectral_norm: bool = False
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # G and D take the class label (a label embedding joined to z; a projection discriminator); needs a
    # labelled data set. The number of classes comes from the prepared data.
    conditional: bool = False
    # How a conditional G takes the label: concat (an embedding joined to z) or cbn (conditional batch norm:
    # a per-class gain and shift in G's batch-norm layers; needs g_batch_norm). D always uses the projection.
    g_conditioning: Literal["concat", "cbn"] = "concat"
    # concat: the embedding's width (null: model.latent_dim) and the std of its N(0, std) init (z is N(0, 1)).
    g_embedding_dim: Optional[int] = None
    g_embedding_std: float = 1.0
    # A variant may train with its own loss, critic steps and Adam betas; null: train.loss / d_steps / betas.
    loss: Optional[Literal["bce", "hinge", "wgan-gp"]] = None
    d_steps: Optional[int] = None
    betas: Optional[tuple[float, float]] = None
    mode_seeking: Optional[float] = None  # null: train.mode_seeking


@dataclass(frozen=True)
class ClassifierConfig:
    width: int = 16
    epochs: int = 3
    max_steps: Optional[int] = None
    batch_size: int = 128
    lr: float = 2.0e-3
    seed: int = 0
    # The stage fails if test accuracy ends below this: a weak classifier makes FID meaningless.
    min_accuracy: float = 0.98


@dataclass(frozen=True)
class SecondClassifierConfig:
    # The second, independent feature space (evaluate.second_extractor): a classifier of another family (two 5x5
    # conv + max-pool blocks and a `features`-wide fully connected layer, no batch norm; the first is all 3x3 convs,
    # batch norm and global average pooling), trained apart from the first: SGD with Nesterov momentum, weight decay
    # and dropout where the first has Adam, its own seed and batch size.
    channels: int = 16  # of the first conv; the second has twice as many
    features: int = 256  # the FC layer whose activations are the FID features
    epochs: int = 2
    max_steps: Optional[int] = None
    batch_size: int = 100
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5.0e-4
    dropout: float = 0.5
    seed: int = 1
    min_accuracy: float = 0.98


@dataclass(frozen=True)
class EvaluateConfig:
    feature_extractor: Literal["classifier", "inception"] = "classifier"
    inception_weights: Optional[str] = None
    n_samples: int = 10000
    # Real images taken from the split; null takes all of it.
    n_real: Optional[int] = None
    real_split: Literal["test", "val"] = "test"
    seed: int = 0
    batch_size: int = 500
    is_splits: int = 10
    kid_subset_size: int = 1000
    precision_recall: bool = True
    # The mode-collapse alarm (docs/measurement.md): a scored generator is flagged when a class's diversity ratio
    # (its samples' mean pairwise feature distance over its real images') is below collapse_diversity, or its
    # recall is below collapse_recall (which needs precision_recall); 0 turns a check off.
    collapse_diversity: float = 0.5
    collapse_recall: float = 0.1
    # Score every generator a second time in the second classifier's feature space (second_classifier), and the
    # report re-decides every primary verdict there: a robustness check, never a second decision.
    second_extractor: bool = True


@dataclass(frozen=True)
class AblationConfig:
    # The entries of `variants:` that the DVC matrix trains, `evaluate` scores and `report` compares, in this
    # order. The first is the control: every other variant is compared with it, and with each other.
    variants: tuple[str, ...] = ("radford", "baseline", "improved", "final")
    # Every variant is trained and evaluated once per seed. Runs with the same seed share weight init
    # (where shapes allow), data order and latent noise, so the report pairs them by seed. Seeds 0-2 were the
    # pilot that chose primary and margin, so a confirmatory study runs fresh ones: the first look's.
    seeds: tuple[int, ...] = (10, 11, 12, 13, 14)
    # The declared design, fixed before the runs (docs/verdicts.md): the metric that decides (a key of
    # core.metrics.PRIMARY), the equivalence margin in its units, and the family-wise error rate of its verdicts.
    primary: str = "ema_fid"
    margin: float = 1.0
    alpha: float = 0.05
    # A sequential design: the seeds per variant at each look (the first looks[k] of `seeds` as listed); a
    # comparison still open after a look is tested again at the next. null: a fixed design, one look at every seed.
    looks: Optional[tuple[int, ...]] = (5, 10)
    # The design's seeds in the order they are used: `seeds` is its first part, the next look adds the next ones.
    seed_sequence: tuple[int, ...] = tuple(range(10, 20))


@dataclass(frozen=True)
class MlflowConfig:
    # evaluate logs each run's scored generator as an MLflow model; with register, the one with the
    # lowest FID of the pipeline run becomes a new version of `model_name` in the model registry.
    register: bool = False
    model_name: str = "dcgan-lab-generator"


@dataclass(frozen=True)
class Params:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    variants: dict[str, VariantConfig] = field(default_factory=dict)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    second_classifier: SecondClassifierConfig = field(default_factory=SecondClassifierConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    ablation: AblationConfig = field(default_factory=AblationConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)

    def train_for(self, variant: VariantConfig) -> TrainConfig:
        """`train` as one variant trains: its own loss, d_steps, betas and mode seeking where it sets them."""
        overrides = {k: getattr(variant, k) for k in ("loss", "d_steps", "betas", "mode_seeking")
                     if getattr(variant, k) is not None}
        return replace(self.train, **overrides)

    def variant(self, name: str) -> VariantConfig:
        if name not in self.variants:
            raise ConfigError(
                f"variant: unknown variant {name!r}; allowed: {', '.join(self.variants) or '(none defined)'}"
            )
        return self.variants[name]
