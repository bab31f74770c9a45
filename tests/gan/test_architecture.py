"""Architecture summaries and figures of the real networks: parameter counts that are the networks' own, small
valid PNGs, and nothing of the caller's network or random stream touched."""

from __future__ import annotations

import re

import pytest
import torch
from PIL import Image

from dcgan_lab.gan.architecture import describe, draw, layer_tables, write_architecture
from dcgan_lab.gan.models import Discriminator, Generator, specs_from_params


def total_params(text: str) -> int:
    return int(re.search(r"^Total params: ([\d,]+)$", text, re.M).group(1).replace(",", ""))


@pytest.mark.parametrize("variant", ["baseline", "final"])  # final: spectral norm in D, batch norm in G
def test_summaries_count_every_parameter_and_show_each_layer(params, variant):
    g_spec, d_spec = specs_from_params(params, params.variant(variant), channels=1)
    g, d = Generator(g_spec), Discriminator(d_spec)
    text = layer_tables(g, d)
    assert list(text) == ["generator", "discriminator"]
    assert total_params(text["generator"]) == sum(p.numel() for p in g.parameters())
    assert total_params(text["discriminator"]) == sum(p.numel() for p in d.parameters())
    assert text["generator"].startswith(describe(g)) and text["generator"].count("ConvTranspose2d") == 4
    assert "[1, 1, 32, 32]" in text["generator"] and "Total mult-adds: " in text["discriminator"]
    assert ("spectral norm on every conv" in text["discriminator"]) == (variant == "final")
    assert list(layer_tables(g, None)) == ["generator"]


def test_figures_are_small_pngs_and_the_networks_are_left_as_they_were(params, tmp_path):
    g_spec, d_spec = specs_from_params(params, params.variant("final"), channels=1)
    g, d = Generator(g_spec).train(), Discriminator(d_spec).train()
    before = {k: v.clone() for k, v in {**g.state_dict(), **d.state_dict()}.items()}
    rng = torch.get_rng_state()
    written = write_architecture(g, d, tmp_path / "architecture")
    assert [p.name for p in written] == ["generator.txt", "discriminator.txt", "generator.png", "discriminator.png"]
    for png in written[2:]:
        with Image.open(png) as figure:
            figure.verify()
            assert figure.format == "PNG" and figure.width > 300 and png.stat().st_size < 60_000
    assert torch.equal(torch.get_rng_state(), rng)  # no draw from the global stream
    after = {**g.state_dict(), **d.state_dict()}
    assert g.training and d.training and all(torch.equal(before[k], after[k]) for k in before)  # BN, SN u/v too
    assert draw(g, tmp_path / "again.png").read_bytes() == written[2].read_bytes()  # the same figure each time
