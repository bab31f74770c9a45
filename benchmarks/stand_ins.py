"""Stand-ins for the inputs a benchmark needs where `make repro` has not made them (a fresh clone, a lent GPU
machine): noise images, a prepared data directory of them, an untrained generator and classifier. What runs
on them takes as long as on the real ones; what it scores means nothing."""

from __future__ import annotations

import json
from pathlib import Path

import torch


def noise_images(n: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n uint8 (1, size, size) images of noise and n labels in 0-9, the same for the same seed."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8, generator=g),
            torch.randint(0, 10, (n,), generator=g))


def noise_prepared(data_dir: Path, image_size: int, splits: dict[str, int]) -> Path:
    """A prepared data directory as `prepare` writes it (uint8 splits, their manifest), of noise images."""
    from dcgan_lab.core import paths
    from dcgan_lab.core.files import save_torch
    from dcgan_lab.data.splits import tensor_sha256

    data_dir.mkdir(parents=True)
    manifest = {"dataset": "noise", "image_size": image_size, "classes": [str(k) for k in range(10)], "splits": {}}
    for seed, (name, n) in enumerate(splits.items()):
        images, labels = noise_images(n, image_size, seed)
        save_torch({"images": images, "labels": labels}, paths.split_file(data_dir, name))
        manifest["splits"][name] = {"n": n, "shape": list(images.shape[1:]), "dtype": "uint8",
                                    "sha256": tensor_sha256(images)}
    paths.manifest_file(data_dir).write_text(json.dumps(manifest, indent=2) + "\n")
    return data_dir


def repro_outputs(root: Path, params, variant: str, n_real: int) -> Path:
    """What bench_eval reads from `make repro` under `root`: data/prepared (a test split of `n_real` noise
    images), models/classifier (an untrained classifier), models/<variant>/seed<k> for the study's first seed (an
    untrained G and D)."""
    from dcgan_lab.core import paths
    from dcgan_lab.evaluation.classifier import Classifier, ClassifierSpec, save_classifier
    from dcgan_lab.gan.checkpoint import save_gan
    from dcgan_lab.gan.models import Discriminator, Generator, specs_from_params

    size = params.data.image_size
    noise_prepared(root / "data" / "prepared", size, {"test": n_real})
    classifier = Classifier(ClassifierSpec(channels=1, width=params.classifier.width, n_classes=10, image_size=size))
    save_classifier(classifier, paths.classifier_checkpoint(root / "models" / "classifier"))
    g_spec, d_spec = specs_from_params(params, params.variant(variant), channels=1)
    seed = params.ablation.seeds[0]
    save_gan(paths.model_dir(root / "models", variant, seed).checkpoint, Generator(g_spec), Discriminator(d_spec))
    return root
