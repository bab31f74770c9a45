"""`dcgan-lab summary`, run as the installed console script: torchinfo tables of G and D whose parameter counts
are the networks' own, the same tables and a figure per network with --out, and G alone where SRC has no D."""

from __future__ import annotations

import re

from PIL import Image

from dcgan_lab.gan.checkpoint import load_discriminator, load_generator
from helpers import dcgan_lab_all


def total_params(text: str) -> list[int]:
    return [int(n.replace(",", "")) for n in re.findall(r"^Total params: ([\d,]+)$", text, re.M)]


def test_summary_prints_both_networks_and_writes_their_tables_and_figures(model_dir, tmp_path):
    both, generator_only = dcgan_lab_all(("summary", model_dir, "--out", tmp_path / "arch"),
                                         ("summary", model_dir / "best.pt"))
    assert both.returncode == 0 and both.stderr == "", both.stderr
    g, d = load_generator(model_dir / "checkpoint.pt"), load_discriminator(model_dir / "checkpoint.pt")
    counts = [sum(p.numel() for p in net.parameters()) for net in (g, d)]
    assert total_params(both.stdout) == counts  # spectral norm's `original` weights counted once, as in D
    assert f"{model_dir / 'checkpoint.pt'}: generator\ngenerator: z (16) -> 1x32x32" in both.stdout
    assert "spectral norm on every conv" in both.stdout and "ConvTranspose2d" in both.stdout
    assert "Total mult-adds: " in both.stdout and "Units." not in both.stdout

    files = {p.name: p for p in (tmp_path / "arch").iterdir()}
    assert sorted(files) == ["discriminator.png", "discriminator.txt", "generator.png", "generator.txt"]
    assert [total_params(files[f"{n}.txt"].read_text())[0] for n in ("generator", "discriminator")] == counts
    for name in ("generator.png", "discriminator.png"):
        with Image.open(files[name]) as figure:
            figure.verify()  # a whole PNG
            assert figure.format == "PNG" and figure.width > 300 and files[name].stat().st_size < 100_000

    assert generator_only.returncode == 0, generator_only.stderr
    assert total_params(generator_only.stdout) == counts[:1]
    assert f"no discriminator: {model_dir / 'best.pt'} holds the generator only" in generator_only.stdout
