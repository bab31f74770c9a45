"""bench_train: images/s of dcgan-lab's training loop vs the classic PyTorch DCGAN example's loop.

Ours is `dcgan_lab.training.loop.fit` as the train stage calls it: the uint8 data set on the device, batches by
index gather + `to_pixels`, Generator/Discriminator from `dcgan_lab.gan.models` built from the real params of
a variant, losses read back once per `train.log_every` steps. The reference is benchmarks/reference_dcgan.py.
Both run in this process, interleaved (ABBA order), on the same device, batch size, widths and images.

Each run trains W + T steps; the first W (= log_every: ours can only be timed at its host reads) are
warm-up and also absorb the start of DataLoader workers, then T steps are timed. images/s = T * B / time.

    python benchmarks/bench_train.py                     # every variant of the study, default sizes
    python benchmarks/bench_train.py --quick             # a smoke run (~1 min)
    python benchmarks/bench_train.py --profile           # torch.profiler: our step op by op, layer by layer
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks import reference_dcgan as ref
from benchmarks.common import ROOT, Row, datasheet_peaks, report, standalone, summary

TARGET = {"cuda": 2.5, "cpu": 1.5}  # ours / the reference, images/s


def setup(params, variant_name: str, device: torch.device):
    from dcgan_lab.gan.augment import make_augment
    from dcgan_lab.gan.models import specs_from_params as gan_specs

    variant = params.variant(variant_name)
    g_spec, d_spec = gan_specs(params, variant, channels=1)
    return variant, g_spec, d_spec, make_augment(variant.augment, params.data.pixel_range,
                                                 torch.Generator(device=device).manual_seed(3))


def run_ours(params, variant_name: str, images: torch.Tensor, device: torch.device, warm: int, timed: int) -> dict:
    """fit() for warm + timed steps; timed by the on_log hook, which runs right after fit's host read."""
    from dcgan_lab.training.loop import Hooks, fit
    from dcgan_lab.training.spec import RunSpec

    t = params.train
    p = replace(params, train=replace(t, max_steps=warm + timed, epochs=warm + timed, eval_every=0))
    stamps: list[tuple[int, float]] = []
    losses: list[float] = []

    class Stamps(Hooks):
        def on_log(self, steps, rows):
            stamps.append((steps[-1], time.perf_counter()))
            losses.extend(v for row in rows for k, v in row.items() if k.startswith("loss"))

    fit(RunSpec.resolve(p, variant_name, 0, images.shape[1]), images, device, hooks=Stamps())
    (s0, t0), (s1, t1) = next(s for s in stamps if s[0] >= warm), stamps[-1]
    return {"images_per_sec": (s1 - s0) * t.batch_size / (t1 - t0), "steps": s1 - s0,
            "finite": bool(torch.isfinite(torch.tensor(losses)).all())}


def run_reference(params, g_spec, d_spec, augment, loader, device: torch.device, warm: int, timed: int) -> dict:
    t = params.train
    torch.manual_seed(0)
    netG, netD = ref.build_models(g_spec, d_spec, device)
    out = ref.train(netG, netD, loader, g_spec.latent_dim, device, warm + timed, lr=(t.lr_g, t.lr_d),
                    betas=t.betas, augment=augment)
    times = out["times"]
    losses = torch.tensor([h[:2] for h in out["history"]])
    return {"images_per_sec": timed * t.batch_size / (times[-1] - times[warm - 1]), "steps": timed,
            "finite": bool(torch.isfinite(losses).all()), "last_losses": out["history"][-1][:2]}


def flops_per_image(params, variant_name: str, device: torch.device) -> dict:
    """Model FLOPs of one training step (D on real and fake, G through D, both backward) per image, and of
    one generator forward per image, counted by torch.utils.flop_counter (convolutions and matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode

    from dcgan_lab.gan.models import Discriminator, Generator
    from dcgan_lab.gan.pixels import to_pixels
    from dcgan_lab.training.step import Batch, train_step

    variant, g_spec, d_spec, augment = setup(params, variant_name, device)
    g, d = Generator(g_spec).to(device), Discriminator(d_spec).to(device)
    opt_g, opt_d = torch.optim.Adam(g.parameters()), torch.optim.Adam(d.parameters())
    b = params.train.batch_size
    real = to_pixels(torch.randint(0, 256, (b, 1, g_spec.image_size, g_spec.image_size), dtype=torch.uint8,
                                   device=device), params.data.pixel_range)
    z = torch.randn(b, g_spec.latent_dim, device=device)
    with FlopCounterMode(display=False) as counter:
        train_step(g, d, opt_g, opt_d, [Batch(real, z)], augment, params.train.loss)
    step = counter.get_total_flops()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        g(z)
    return {"train_step_flops_per_image": step / b, "g_forward_flops_per_image": counter.get_total_flops() / b}


def measured_matmul_peak(device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    """The device's fp32 matmul throughput (TFLOP/s) measured here and now: the best of `repeats` n x n
    products with torch's current thread count (2 n^3 FLOPs each). What the machine can reach on the
    friendliest kernel it has, so the train step's share of it is a CPU MFU."""
    a, b = (torch.randn(n, n, device=device, generator=torch.Generator(device).manual_seed(k)) for k in (0, 1))
    torch.mm(a, b)  # warm-up: thread pool, allocations
    best, sync = float("inf"), torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(repeats):
        sync()
        started = time.perf_counter()
        torch.mm(a, b)
        sync()
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e12


def peak_tflops(device: torch.device, override: float | None) -> tuple[float | None, str]:
    if override:
        return override, "given by --peak-tflops"
    if device.type != "cuda":
        return measured_matmul_peak(device), (f"measured fp32 matmul peak of this CPU ({torch.get_num_threads()} "
                                              "torch threads, best of 5 2048x2048 products, same run)")
    name = torch.cuda.get_device_name(device)
    precision = "tf32" if torch.backends.cudnn.allow_tf32 else "fp32"
    if found := datasheet_peaks(name):
        return found[1][precision], f"{name}, {precision} dense peak"
    return None, f"unknown peak for {name}; pass --peak-tflops"


def sizes(params, device: torch.device, timed: int, workers: int) -> tuple[int, int, int]:
    """Warm-up steps (log_every), timed steps as a multiple of it (ours is timed at its host reads), and the
    reference's DataLoader workers (< 0: the example's 2 on CUDA, 0 on a CPU)."""
    warm, default_workers = params.train.log_every, 2 if device.type == "cuda" else 0
    return warm, max(1, round(timed / warm)) * warm, default_workers if workers < 0 else workers


def interleaved(params, variant_name: str, images: torch.Tensor, loader, device: torch.device, warm: int, timed: int,
                repeats: int, verbose: bool = True, until: float | None = None, label: str | None = None):
    """Ours and the reference, `repeats` runs each in ABBA order (drift lands on both sides): their lists of
    result dicts. With `until` (a time.perf_counter value), no repeat after the first starts past it."""
    variant, g_spec, d_spec, augment = setup(params, variant_name, device)
    runs: dict[str, list[dict]] = {"ours": [], "ref": []}
    for r in range(repeats):
        if r and until is not None and time.perf_counter() > until:
            break
        for side in (("ours", "ref") if r % 2 == 0 else ("ref", "ours")):
            res = (run_ours(params, variant_name, images, device, warm, timed) if side == "ours"
                   else run_reference(params, g_spec, d_spec, augment, loader, device, warm, timed))
            runs[side].append(res)
            if verbose:
                print(f"  train {label or variant_name} repeat {r + 1}/{repeats} {side:4s}: "
                      f"{res['images_per_sec']:7.1f} img/s", flush=True)
    return runs["ours"], runs["ref"]


def compare_row(name: str, ours: list[dict], theirs: list[dict], target: float, params, warm: int, timed: int,
                workers: int, note: str = "", **detail) -> Row:
    """The table's row for `interleaved`'s results: the ratio of median images/s, ours / reference."""
    return Row.compare(
        name, "img/s", summary([x["images_per_sec"] for x in ours]), summary([x["images_per_sec"] for x in theirs]),
        target, higher_is_better=True, note=note,
        paired=[a["images_per_sec"] / b["images_per_sec"] for a, b in zip(ours, theirs)],
        steps_timed=timed, warmup_steps=warm, batch_size=params.train.batch_size, workers=workers,
        reference_finite=all(x["finite"] for x in theirs), ours_finite=all(x["finite"] for x in ours),
        reference_last_losses=theirs[-1]["last_losses"], **detail)


def mfu_row(variant_name: str, row: Row, flops: float, peak: float, peak_note: str) -> Row:
    """Both loops' MFU on one variant, counted with the model FLOPs of our step (`flops` per image; the classic
    loop also computes D's weight gradients in the G update and discards them). The ratio is the train row's; its
    ceiling, ours at 100% of the peak, is 1 / the classic loop's MFU: what bounds the ratio once ours is at peak."""
    ours, theirs = (flops * ips / (peak * 1e12) for ips in (row.ours, row.reference))
    return Row(f"MFU, train step ({variant_name}): ours vs the classic loop", "%", 100 * ours, 100 * theirs,
               ratio=ours / theirs, note=f"ratio ceiling, ours at 100% of the peak: {1 / theirs:.2f}x; "
               f"{flops / 1e6:.1f} MFLOP/image; {peak_note}",
               detail={"peak_tflops": peak, "ceiling_ratio": 1 / theirs, "flops_per_image": flops})


def bench(params, images: torch.Tensor, labels: torch.Tensor, device: torch.device, variants: list[str],
          timed: int, repeats: int, workers: int, reference_images: torch.Tensor | None = None,
          peak: float | None = None, verbose: bool = True) -> list[Row]:
    """One row per variant (ratio of median images/s, ours / reference) plus FLOPs and MFU rows."""
    warm, timed, workers = sizes(params, device, timed, workers)
    ref_images = images if reference_images is None else reference_images
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-mnist-") as root:
        dataset = ref.mnist_dataset(ref_images, labels[: len(ref_images)], Path(root), params.data.image_size)
        loader = ref.make_dataloader(dataset, params.train.batch_size, workers)
        for name in variants:
            ours, theirs = interleaved(params, name, images, loader, device, warm, timed, repeats, verbose)
            rows.append(compare_row(f"train {name} (img/s)", ours, theirs, TARGET[device.type], params, warm, timed,
                                    workers))
        counted = {name: flops_per_image(params, name, device) for name in variants}
        flops = counted[variants[-1]]
        ips = rows[-1].ours  # our images/s on the variant the FLOPs are counted for
        peak_value, peak_note = peak_tflops(device, peak)
        if peak_value:
            rows += [mfu_row(name, row, counted[name]["train_step_flops_per_image"], peak_value, peak_note)
                     for name, row in zip(variants, rows)]
        rows.append(Row(f"model FLOPs/image, train step ({variants[-1]})", "MFLOP",
                        flops["train_step_flops_per_image"] / 1e6, note="torch.utils.flop_counter; G forward "
                        f"alone {flops['g_forward_flops_per_image'] / 1e6:.1f} MFLOP/image", detail=flops))
        achieved = flops["train_step_flops_per_image"] * ips
        if device.type == "cpu":
            rows.append(Row("fp32 matmul peak, measured (GFLOP/s)", "GFLOP/s", peak_value * 1e3, note=peak_note))
        if peak_value:
            mfu = achieved / (peak_value * 1e12)
            rows.append(Row(f"MFU, train step (ours, {variants[-1]})", "%", 100 * mfu,
                            note=f"achieved {achieved / 1e9:.1f} GFLOP/s of {peak_value * 1e3:.0f}; {peak_note}",
                            detail={"achieved_tflops": achieved / 1e12, "peak_tflops": peak_value}))
        else:
            rows.append(Row(f"MFU, train step (ours, {variants[-1]})", "", "n/a", detail={"achieved_tflops":
                            achieved / 1e12}, note=f"achieved {achieved / 1e9:.1f} GFLOP/s; {peak_note}"))
    return rows


def variant_names(arg: str, params) -> list[str]:
    """--variants as a list; empty: every variant the study trains (ablation.variants), in its order."""
    return arg.split(",") if arg else list(params.ablation.variants)


def load_inputs(params, reference_data: str, data: Path = ROOT / "data" / "prepared"
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The prepared train split in `data` (what the train stage reads); for --reference-data raw28, the original
    28x28 MNIST images, which the reference resizes per image as the example does."""
    from dcgan_lab.data.splits import load_split

    images, labels = load_split(Path(data), "train")
    reference_images = None
    if reference_data == "raw28":
        from dcgan_lab.core.paths import cache_dir as default_cache_dir
        from dcgan_lab.data.sources import load_mnist

        reference_images = load_mnist(default_cache_dir())["train"][0]
    return images, labels, reference_images


def add_arguments(parser: argparse.ArgumentParser, quick: bool) -> None:
    env = os.environ.get
    parser.add_argument("--variants", default=env("BENCH_TRAIN_VARIANTS", "baseline" if quick else ""),
                        help="comma-separated variants of params.yaml (default: the study's, ablation.variants, "
                             "whose last one the MFU rows count; quick: baseline)")
    parser.add_argument("--train-steps", type=int, default=int(env("BENCH_TRAIN_STEPS", 50)),
                        help="timed steps per run after log_every warm-up ones, rounded to a multiple of "
                             "train.log_every (default 50)")
    parser.add_argument("--train-repeats", type=int, default=int(env("BENCH_TRAIN_REPEATS", 1 if quick else 3)),
                        help="interleaved repeats per side (default 3; quick 1)")
    parser.add_argument("--workers", type=int, default=int(env("BENCH_WORKERS", -1)),
                        help="reference DataLoader workers (default: the example's 2 on CUDA, 0 on a CPU, "
                             "where workers take the cores the step needs; see benchmarks/README.md)")
    parser.add_argument("--reference-data", choices=["prepared", "raw28"], default=env("BENCH_REFERENCE_DATA",
                        "prepared"), help="reference images: the prepared 32x32 split (default) or raw 28x28 "
                        "MNIST resized per image like the example")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU (GPU only)")
    parser.add_argument("--data", default=env("BENCH_DATA", str(ROOT / "data" / "prepared")),
                        help="the prepared data directory (default: the pipeline's data/prepared)")


def main() -> None:
    def arguments(parser: argparse.ArgumentParser, quick: bool) -> None:
        add_arguments(parser, quick)
        parser.add_argument("--profile", action="store_true", help="print torch.profiler's top ops of our step and exit")
        parser.add_argument("--profile-variant", default="final")
        parser.add_argument("--profile-steps", type=int, default=10)
        parser.add_argument("--top", type=int, default=15, help="rows of the profile table")

    args, params, device = standalone(__doc__, arguments)
    images, labels, reference_images = load_inputs(params, args.reference_data, Path(args.data))
    if args.profile:
        from benchmarks.profile_step import profile

        print(profile(params, args.profile_variant, images, device, args.profile_steps, args.top))
        return
    rows = bench(params, images, labels, device, variant_names(args.variants, params), args.train_steps,
                 args.train_repeats, args.workers, reference_images, args.peak_tflops)
    report(rows, args, device)


if __name__ == "__main__":
    main()
