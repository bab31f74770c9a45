"""One training run, described once: what the train stage resolves from params.yaml and the prepared data
before anything trains, and what the training code reads instead of `params`.

The description is frozen, is saved inside the resumable checkpoint and the model's checkpoint, and is
logged to the run's MLflow run once, as `run.json` (EDM's and StyleGAN2-ADA's `training_options.json`).
Its hash, less `train.stream` (where batches are gathered, not which), is part of the resume tag.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from ..core.config import AugmentConfig, Params, TrainConfig
from ..core.errors import ConfigError
from ..core.params import flatten, to_dict
from ..gan.models import DiscriminatorSpec, GeneratorSpec, specs_from_params


@dataclass(frozen=True)
class RunSpec:
    variant: str
    seed: int
    g: GeneratorSpec
    d: DiscriminatorSpec
    # `train` as this variant trains: its own loss, d_steps and betas where it sets them (Params.train_for);
    # also the schedule (epochs, max_steps, log_every, eval_every, checkpoint_every), the optimiser and the guard.
    train: TrainConfig
    augment: AugmentConfig
    pixel_range: tuple[float, float]
    # The params.yaml sections it was resolved from, as written (data, model, train, variant): the MLflow params.
    params: dict

    @classmethod
    def for_data(cls, params: Params, variant: str, seed: int, manifest: dict) -> "RunSpec":
        """The run of `variant` with `seed` on the prepared data set whose manifest (data.splits) is given."""
        classes = manifest["classes"]
        if params.variant(variant).conditional and len(classes) < 2:
            raise ConfigError(f"variants.{variant}.conditional: true needs a labelled data set; {manifest['dataset']} "
                              f"was prepared with {len(classes)} class ({', '.join(map(str, classes)) or 'none'}): "
                              "give `folder` data one subfolder per class, or set conditional: false")
        return cls.resolve(params, variant, seed, manifest["splits"]["train"]["shape"][0], len(classes))

    @classmethod
    def resolve(cls, params: Params, variant: str, seed: int, channels: int, n_classes: int = 0) -> "RunSpec":
        """The run of `variant` with `seed` on images of `channels` channels in `n_classes` classes."""
        flags = params.variant(variant)
        if flags.conditional and n_classes < 2:
            raise ConfigError(f"variants.{variant}.conditional: true needs images of at least 2 classes, "
                              f"not {n_classes}; or set conditional: false")
        g, d = specs_from_params(params, flags, channels, n_classes)
        sections = {k: v for k, v in to_dict(params).items() if k in ("data", "model", "train")}
        return cls(variant=variant, seed=seed, g=g, d=d, train=params.train_for(flags), augment=flags.augment,
                   pixel_range=params.data.pixel_range, params={**sections, "variant": to_dict(flags)})

    @property
    def conditional(self) -> bool:
        return self.g.n_classes > 0

    @property
    def images_per_step(self) -> int:
        """Real images one optimizer step reads on one rank: d_steps batches, one per D update."""
        return self.train.batch_size * self.train.d_steps

    def to_dict(self) -> dict:
        return to_dict(asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def mlflow_params(self) -> dict[str, object]:
        """The run's MLflow params: params.yaml's keys (data.*, model.*, train.*, variant.*), its name and seed."""
        return {**flatten(self.params), "variant.name": self.variant, "seed": self.seed}

    def resume_config(self) -> dict:
        """What must match for a checkpoint to be continued, less the seed and data (state.resume_tag)."""
        config = self.to_dict()
        for train in (config["train"], config["params"]["train"]):
            train.pop("stream")  # where batches are gathered, not which: a run may resume with the other setting
        return config
