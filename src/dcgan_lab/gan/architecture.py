"""What a network is, for people: a torchinfo summary (layers, output shapes, parameters, mult-adds) and
a layered figure in the spirit of visualkeras (one block per layer, sized by channels and resolution,
coloured by layer type).

The train stage writes both beside each checkpoint (`<model dir>/architecture/`) and logs them to its
MLflow run; `dcgan-lab summary` prints them for any checkpoint or MLflow model.

Both work on a copy of the network in eval mode, under a forked RNG: the caller's network (batch-norm
statistics, spectral norm's power-iteration vectors) and the global random stream stay exactly as they
were. A discriminator with spectral norm is shown as its spec built without it: the norm only rescales
each conv's weight, so layers, shapes and parameter counts are the same, torchinfo can count those
layers' mult-adds, and parametrization internals stay out of the figure; the title line says it is on.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from .models import DiscriminatorSpec, GeneratorSpec

# One colour per layer type (Okabe-Ito, colour-blind safe), the same in every figure: a type's colour
# does not depend on the order in which a network first uses it.
LAYER_COLOURS = {
    nn.ConvTranspose2d: "#56B4E9", nn.Conv2d: "#0072B2", nn.BatchNorm2d: "#009E73", nn.ReLU: "#F0E442",
    nn.LeakyReLU: "#E69F00", nn.Tanh: "#D55E00", nn.Sigmoid: "#D55E00", nn.AdaptiveAvgPool2d: "#CC79A7",
}
INPUT_COLOUR = "#BBBBBB"
# Columns of the text summary: what each layer makes, what it holds and what it costs.
SUMMARY_COLUMNS = ("output_size", "num_params", "mult_adds")
NETWORKS = ("generator", "discriminator")


def example_inputs(model: nn.Module) -> tuple[torch.Tensor, ...]:
    """One zero input for the network's forward, read from its spec: noise (1, latent_dim) for a generator
    or an image (1, C, S, S) for a critic; plus a label (1,) for a conditional one (spec.n_classes > 0)."""
    spec = model.spec
    x = torch.zeros(1, spec.latent_dim) if hasattr(spec, "latent_dim") else torch.zeros(
        1, spec.channels, spec.image_size, spec.image_size)
    return (x, torch.zeros(1, dtype=torch.long)) if getattr(spec, "n_classes", 0) > 0 else (x,)


def _plain_copy(model: nn.Module) -> nn.Module:
    """A CPU copy in eval mode, without spectral norm. Spectral norm only rescales each conv's weight: a
    network built from the same spec without it has the same layers, shapes and parameter counts, and
    torchinfo can count its mult-adds. (Rebuilt rather than unwrapped: torch's remove_parametrizations
    edits the parametrized class, which a deep copy shares with the original.)"""
    spec = getattr(model, "spec", None)
    if getattr(spec, "spectral_norm", False):
        return type(model)(replace(spec, spectral_norm=False)).eval()
    return copy.deepcopy(model).cpu().eval()


def describe(model: nn.Module) -> str:
    """One line from the spec: what goes in and out, and the variant's flags."""
    spec, n_params = getattr(model, "spec", None), sum(p.numel() for p in model.parameters())
    if isinstance(spec, GeneratorSpec):
        flags = [spec.activation, "batch norm" if spec.batch_norm else "no batch norm", f"{spec.output} output"]
        how = "conditional batch norm" if spec.conditioning == "cbn" else "label embedding joined to z"
        flags += [f"conditional on {spec.n_classes} classes ({how})"] if spec.n_classes else []
        head = f"generator: z ({spec.latent_dim}) -> {_size(spec)}, width {spec.width}"
    elif isinstance(spec, DiscriminatorSpec):
        flags = ["batch norm" if spec.batch_norm else "no batch norm",
                 "spectral norm on every conv" if spec.spectral_norm else "no spectral norm", f"{spec.head} head"]
        flags += [f"projection over {spec.n_classes} classes"] if spec.n_classes else []
        head = f"discriminator: {_size(spec)} -> 1 logit, width {spec.width}"
    else:  # a module without a spec: no flags to show
        flags = ["its layers are not known (no spec)"]
        head = type(model).__name__ + (f": z ({spec.latent_dim}) -> {_size(spec)}" if spec else "")
    return f"{', '.join([head, *flags])}; {n_params:,} parameters"


def _size(spec) -> str:
    return f"{spec.channels}x{spec.image_size}x{spec.image_size}"


def layer_table(model: nn.Module) -> str:
    """torchinfo's table for one network, under a line that describes it."""
    import torchinfo
    from torchinfo import Units

    with torch.random.fork_rng(devices=[]), torch.no_grad():
        stats = torchinfo.summary(_plain_copy(model), input_data=list(example_inputs(model)), depth=3,
                                  col_names=SUMMARY_COLUMNS, row_settings=("var_names",), verbose=0, device="cpu")
    # torchinfo 1.8.0 prints its unit enum as "(Units.MEGABYTES)" on Python >= 3.11: plain counts read better.
    stats.formatting.macs_units = Units.NONE
    return f"{describe(model)}\n{stats}\n"


def layer_tables(g: nn.Module, d: nn.Module | None) -> dict[str, str]:
    """{"generator": text, "discriminator": text} (no discriminator entry when `d` is None)."""
    return {name: layer_table(model) for name, model in zip(NETWORKS, (g, d)) if model is not None}


def draw(model: nn.Module, path: Path) -> Path:
    """The layered figure of one network as a PNG (visualtorch's flow style: a block per layer, its depth
    the channels, its height and width the resolution, each labelled with its output shape; a legend of
    layer types), titled with `describe`. A few tens of KB."""
    import visualtorch

    # Noise (1, latent) is drawn as the (latent, 1, 1) column G's first transposed conv sees it as.
    inputs = [x.view(*x.shape, 1, 1) if x.dim() == 2 else x for x in example_inputs(model)]
    colours = {t: {"fill": c} for t, c in LAYER_COLOURS.items()} | {visualtorch.Input: {"fill": INPUT_COLOUR}}
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        image = visualtorch.render(
            _plain_copy(model), tuple(tuple(x.shape) for x in inputs), style="flow",
            input_dtype=tuple(x.dtype for x in inputs), type_ignore=[nn.Identity],  # "no batch norm" slots
            color_map=colours, legend=True, show_dimension=True, scale_xy=3, scale_z=0.5, min_xy=12,
            max_z=200, spacing=14)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _titled(image, describe(model)).save(path, optimize=True)
    return path


def _titled(image, title: str):
    """`image` under a band holding `title`."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=13)
    left, top, right, bottom = ImageDraw.Draw(image).textbbox((0, 0), title, font=font)
    out = Image.new("RGB", (max(image.width, right - left + 20), image.height + bottom - top + 16), "white")
    ImageDraw.Draw(out).text((10, 8 - top), title, fill="black", font=font)
    out.paste(image.convert("RGB"), (0, bottom - top + 16))
    return out


def write_architecture(g: nn.Module, d: nn.Module | None, out_dir: Path) -> list[Path]:
    """generator.txt, discriminator.txt (torchinfo), generator.png, discriminator.png (figures) in
    `out_dir`; without `d`, the generator's two files only. Returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in layer_tables(g, d).items():
        (out_dir / f"{name}.txt").write_text(text)
        written.append(out_dir / f"{name}.txt")
    for name, model in zip(NETWORKS, (g, d)):
        if model is not None:
            written.append(draw(model, out_dir / f"{name}.png"))
    return written
