"""GAN training: the step, the loop around it, and the stage function that writes outputs.

The step is one screen: D update, then G update, returning tensors. Logging,
sampling and checkpointing happen around it, never inside it, and losses are
read back to the host only every `train.log_every` steps.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
import torch.nn.functional as F
from torchvision.utils import make_grid, save_image

from .atomic import atomic_dir
from .augment import Augment, make_augment
from .checkpoint import save_gan, save_generator
from .config import Params, VariantConfig, flatten, to_dict
from .errors import ConfigError
from .data import load_split
from .models import Discriminator, DiscriminatorSpec, Generator, GeneratorSpec

STAT_NAMES = ("loss_d", "loss_g", "d_real", "d_fake", "d_gen")
FIXED_NOISE_SEED = 0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: 'cuda' was asked for but torch sees no CUDA device; use auto or cpu")
    return torch.device(name)


def gan_specs(params: Params, variant: VariantConfig, channels: int) -> tuple[GeneratorSpec, DiscriminatorSpec]:
    data, model = params.data, params.model
    g = GeneratorSpec(
        latent_dim=model.latent_dim,
        width=model.g_width,
        image_size=data.image_size,
        channels=channels,
        activation=variant.g_activation,
        batch_norm=variant.g_batch_norm,
        output="tanh" if data.pixel_range == (-1.0, 1.0) else "sigmoid",
    )
    d = DiscriminatorSpec(
        width=model.d_width,
        image_size=data.image_size,
        channels=channels,
        batch_norm=variant.d_batch_norm,
        spectral_norm=variant.d_spectral_norm,
        head=model.d_head,
    )
    return g, d


def to_pixels(images: torch.Tensor, pixel_range: tuple[float, float]) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float in pixel_range."""
    low, high = pixel_range
    return images.float().mul_((high - low) / 255.0).add_(low)


def to_uint8(images: torch.Tensor, pixel_range: tuple[float, float]) -> torch.Tensor:
    low, high = pixel_range
    return ((images - low) * (255.0 / (high - low))).round_().clamp_(0, 255).to(torch.uint8)


# --------------------------------------------------------------------------- losses


def d_loss(kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    # BCE on logits: real -> 1, fake -> 0
    return F.binary_cross_entropy_with_logits(
        real_logits, torch.ones_like(real_logits)
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def g_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return -fake_logits.mean()
    # Non-saturating: maximise log D(G(z)) rather than minimise log(1 - D(G(z))) (Goodfellow et al. 2014).
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


# --------------------------------------------------------------------------- the step


def train_step(
    g: Generator,
    d: Discriminator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,  # (B, C, S, S) in the pixel range
    z: torch.Tensor,  # (B, latent_dim)
    augment: Augment,
    loss: str = "bce",
) -> dict[str, torch.Tensor]:
    # Phase 1, D: push D(real) up and D(G(z)) down. G's output is detached: no G gradient here.
    fake = g(z)
    real_logits = d(augment(real))
    fake_logits = d(augment(fake.detach()))
    loss_d = d_loss(loss, real_logits, fake_logits)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()

    # Phase 2, G: make the just-updated D call the same fakes real.
    gen_logits = d(augment(fake))
    loss_g = g_loss(loss, gen_logits)
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()

    # Detached device tensors: the caller decides when to pay for a host sync.
    return {
        "loss_d": loss_d.detach(),
        "loss_g": loss_g.detach(),
        "d_real": torch.sigmoid(real_logits.detach()).mean(),  # D(x)
        "d_fake": torch.sigmoid(fake_logits.detach()).mean(),  # D(G(z)) before the D update
        "d_gen": torch.sigmoid(gen_logits.detach()).mean(),  # D(G(z)) after it
    }


# --------------------------------------------------------------------------- the loop


@dataclass
class Hooks:
    """Called around the loop; all optional. Steps are 1-based counts of optimizer steps."""

    on_log: Callable[[list[int], list[dict[str, float]]], None] | None = None
    on_epoch: Callable[[int, int, Generator, dict[str, float]], None] | None = None  # (epoch, step, G, timing)
    on_eval: Callable[[int, Generator], None] | None = None  # every train.eval_every steps and at the end


def fit(
    params: Params,
    variant: VariantConfig,
    images: torch.Tensor,  # (N, C, S, S) uint8, on any device
    device: torch.device,
    seed: int = 0,
    hooks: Hooks = Hooks(),
) -> tuple[Generator, Discriminator, pd.DataFrame]:
    """Train one variant; returns the models and the per-step statistics table."""
    t = params.train
    # Separate seeded streams, so that changing augmentation does not change data order or noise,
    # and no two seeds share a stream.
    base = 1000 * seed
    torch.manual_seed(base)  # weight init
    g_spec, d_spec = gan_specs(params, variant, channels=images.shape[1])
    g, d = Generator(g_spec).to(device), Discriminator(d_spec).to(device)
    opt_g = torch.optim.Adam(g.parameters(), lr=t.lr_g, betas=t.betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=t.lr_d, betas=t.betas)

    data_gen = torch.Generator().manual_seed(base + 1)
    noise_gen = torch.Generator(device=device).manual_seed(base + 2)
    aug_gen = torch.Generator(device=device).manual_seed(base + 3)
    augment = make_augment(variant.augment, params.data.pixel_range, aug_gen)

    images = images.to(device)  # the whole data set lives on the device; batches are index gathers
    n = images.shape[0]
    if t.batch_size > n:
        raise ConfigError(f"train.batch_size: {t.batch_size} is larger than the training set ({n} images)")
    steps_per_epoch = n // t.batch_size
    total = steps_per_epoch * t.epochs if t.max_steps is None else min(t.max_steps, steps_per_epoch * t.epochs)

    history: list[dict[str, float]] = []
    pending: list[dict[str, torch.Tensor]] = []
    step = 0
    g.train(), d.train()
    for epoch in range(1, t.epochs + 1):
        order = torch.randperm(n, generator=data_gen).to(device)
        started = time.perf_counter()
        epoch_steps = 0
        for i in range(steps_per_epoch):
            if step >= total:
                break
            real = to_pixels(images[order[i * t.batch_size : (i + 1) * t.batch_size]], params.data.pixel_range)
            z = torch.randn(t.batch_size, g_spec.latent_dim, device=device, generator=noise_gen)
            pending.append(train_step(g, d, opt_g, opt_d, real, z, augment, t.loss))
            step += 1
            epoch_steps += 1
            if len(pending) == t.log_every or step == total:
                rows = _flush(pending)
                steps = list(range(step - len(rows) + 1, step + 1))
                history += [{"step": s, **r} for s, r in zip(steps, rows)]
                if hooks.on_log:
                    hooks.on_log(steps, rows)
                pending = []
            if hooks.on_eval and t.eval_every and (step % t.eval_every == 0 or step == total):
                hooks.on_eval(step, g)
                g.train()
        if epoch_steps == 0:
            break
        seconds = time.perf_counter() - started
        if hooks.on_epoch:
            timing = {"epoch_seconds": seconds, "images_per_sec": epoch_steps * t.batch_size / seconds}
            hooks.on_epoch(epoch, step, g, timing)
    return g, d, pd.DataFrame(history, columns=["step", *STAT_NAMES])


def _flush(pending: list[dict[str, torch.Tensor]]) -> list[dict[str, float]]:
    """One host sync for many steps: stack to (steps, stats) on device, then copy once."""
    table = torch.stack([torch.stack([s[k] for k in STAT_NAMES]) for s in pending]).float().cpu().tolist()
    return [dict(zip(STAT_NAMES, row)) for row in table]


@torch.inference_mode()
def sample_grid(g: Generator, z: torch.Tensor, pixel_range: tuple[float, float]) -> torch.Tensor:
    """(3, H, W) uint8 grid of G(z), generated in eval mode."""
    was_training = g.training
    g.eval()
    images = to_uint8(g(z), pixel_range).cpu()
    g.train(was_training)
    return make_grid(images, nrow=int(len(z) ** 0.5), padding=2, pad_value=255)


# --------------------------------------------------------------------------- stage


def train_variant(
    params: Params,
    variant_name: str,
    seed: int,
    data_dir: Path,
    out_dir: Path,
    metrics_path: Path,
    losses_path: Path,
    quick_fid: Callable[[Generator], float] | None = None,
) -> dict:
    """Train one variant with one seed and write checkpoint, sample grid, metrics and loss table;
    log it all to one MLflow run. With `quick_fid`, the generator with the lowest quick FID is kept too."""
    from .tracking import RunLogger

    variant = params.variant(variant_name)
    device = resolve_device(params.train.device)
    images, _ = load_split(data_dir, "train")
    # The same noise for every variant and seed, so grids can be compared side by side.
    fixed_z = torch.randn(
        params.train.sample_grid, params.model.latent_dim, generator=torch.Generator().manual_seed(FIXED_NOISE_SEED)
    ).to(device)

    run_params = flatten({k: v for k, v in to_dict(params).items() if k in ("data", "model", "train")})
    run_params.update(flatten(to_dict(variant), "variant"))
    run_params.update({"variant.name": variant_name, "seed": seed})
    logger = RunLogger.start(variant_name, seed, run_params)
    timings: list[dict[str, float]] = []

    def on_log(steps, rows):
        logger.log_metrics(rows, steps)

    best: dict = {}

    def on_eval(step, g):
        fid = quick_fid(g)
        logger.log_metrics([{"fid_quick": fid}], [step])
        if not best or fid < best["fid"]:
            best.update(fid=fid, step=step, state={k: v.detach().cpu().clone() for k, v in g.state_dict().items()})

    def on_epoch(epoch, step, g, timing):
        timings.append(timing)
        logger.log_metrics([{**timing, "epoch": epoch}], [step])
        grid = sample_grid(g, fixed_z, params.data.pixel_range)
        logger.log_image(grid.permute(1, 2, 0).numpy(), "samples", step)

    started = time.perf_counter()
    try:
        hooks = Hooks(on_log=on_log, on_epoch=on_epoch, on_eval=on_eval if quick_fid else None)
        g, d, history = fit(params, variant, images, device, seed, hooks)
    except BaseException:
        logger.finish("FAILED")
        raise
    train_seconds = time.perf_counter() - started

    summary = {
        "variant": variant_name,
        "seed": seed,
        "steps": int(history["step"].iloc[-1]) if len(history) else 0,
        "epochs": len(timings),
        "batch_size": params.train.batch_size,
        "device": str(device),
        "train_seconds": round(train_seconds, 2),
        "images_per_sec": round(sum(t["images_per_sec"] for t in timings) / max(1, len(timings)), 1),
        # Means over the last logging window: one step's value is too noisy to compare.
        **{k: round(float(history[k].tail(params.train.log_every).mean()), 4) for k in STAT_NAMES},
    }
    if best:
        summary.update(best_step=best["step"], best_fid_quick=round(best["fid"], 4))
    _write_outputs(g, d, history, summary, params, fixed_z, out_dir, metrics_path, losses_path, logger, best)
    logger.finish()
    return summary


def _write_outputs(g, d, history, summary, params, fixed_z, out_dir, metrics_path, losses_path, logger, best):
    """Write the model directory atomically (temp dir + rename), then the small metrics files."""
    meta = dict(variant=summary["variant"], seed=summary["seed"], pixel_range=list(params.data.pixel_range),
                params=to_dict(params))
    with atomic_dir(out_dir) as tmp:
        save_gan(tmp / "checkpoint.pt", g.cpu(), d.cpu(), steps=summary["steps"], **meta)
        if best:
            best_g = Generator(g.spec)
            best_g.load_state_dict(best["state"])
            save_generator(tmp / "best.pt", best_g, steps=best["step"], fid_quick=best["fid"], **meta)
        grid = sample_grid(g, fixed_z.cpu(), params.data.pixel_range)
        save_image(grid.float() / 255, tmp / "samples.png")
        logger.save_run_file(tmp / "mlflow_run.json")
    logger.log_artifact(out_dir / "checkpoint.pt", "checkpoint")
    logger.log_artifact(out_dir / "samples.png", "samples")
    for path in (metrics_path, losses_path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    history.to_csv(losses_path, index=False, float_format="%.5g")
    Path(metrics_path).write_text(json.dumps(summary, indent=2) + "\n")
