import pytest
import torch
from torch import nn

from dcgan_lab.gan.models import Discriminator, DiscriminatorSpec, Generator, GeneratorSpec, specs_from_params


def gspec(**kw):
    base = dict(latent_dim=16, width=8, image_size=32, channels=1, activation="relu", batch_norm=True, output="tanh")
    return GeneratorSpec(**{**base, **kw})


def dspec(**kw):
    base = dict(width=8, image_size=32, channels=1, batch_norm=True, spectral_norm=False, head="conv")
    return DiscriminatorSpec(**{**base, **kw})


@pytest.mark.parametrize("size,channels", [(32, 1), (64, 3), (16, 1)])
def test_shapes(size, channels):
    g = Generator(gspec(image_size=size, channels=channels))
    x = g(torch.randn(5, 16))
    assert x.shape == (5, channels, size, size)
    for head in ("conv", "gap"):
        d = Discriminator(dspec(image_size=size, channels=channels, head=head))
        assert d(x).shape == (5,)


def test_no_pooling_no_hidden_linear_strided_convs():
    for m in [*Generator(gspec()).modules(), *Discriminator(dspec()).modules()]:
        assert not isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.Linear))
    convs = [m for m in Discriminator(dspec()).modules() if isinstance(m, nn.Conv2d)]
    assert [c.stride for c in convs[:-1]] == [(2, 2)] * 3  # downsampling by stride, not pooling


def kinds(model):
    return [type(m).__name__ for m in model.net]


def test_generator_batch_norm_everywhere_but_the_output():
    layers = kinds(Generator(gspec(batch_norm=True)))
    assert layers.count("BatchNorm2d") == 3  # 32 px: 4x4, 8x8, 16x16 hidden layers
    assert layers[-2:] == ["ConvTranspose2d", "Tanh"]
    assert "BatchNorm2d" not in kinds(Generator(gspec(batch_norm=False)))


def test_generator_activation_and_output_follow_flags():
    assert "LeakyReLU" in kinds(Generator(gspec(activation="leaky_relu"))) and "ReLU" not in kinds(
        Generator(gspec(activation="leaky_relu")))
    assert "ReLU" in kinds(Generator(gspec(activation="relu")))
    out = Generator(gspec(output="sigmoid"))(torch.randn(64, 16) * 10)
    assert out.min() >= 0 and out.max() <= 1
    out = Generator(gspec(output="tanh"))(torch.randn(64, 16) * 10)
    assert out.min() < 0 and out.min() >= -1 and out.max() <= 1


def test_discriminator_no_batch_norm_on_input_layer_and_leaky_relu():
    layers = kinds(Discriminator(dspec()))
    assert layers[:2] == ["Conv2d", "LeakyReLU"]
    assert layers.count("BatchNorm2d") == 2
    assert "ReLU" not in layers


def test_spectral_norm_on_every_discriminator_conv():
    d = Discriminator(dspec(spectral_norm=True, head="gap"))
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4 and all(hasattr(c, "parametrizations") for c in convs)
    plain = Discriminator(dspec(spectral_norm=False))
    assert not any(hasattr(m, "parametrizations") for m in plain.modules())


def test_weights_start_from_n_0_002():
    g = Generator(gspec(width=64))
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, nn.ConvTranspose2d)])
    assert abs(w.mean().item()) < 2e-3 and abs(w.std().item() - 0.02) < 2e-3
    d = Discriminator(dspec(width=64, spectral_norm=True))
    w = torch.cat([m.parametrizations.weight.original.flatten() for m in d.modules() if isinstance(m, nn.Conv2d)])
    assert abs(w.std().item() - 0.02) < 2e-3


def test_specs_from_params_take_widths_from_model_and_flags_from_the_variant(params):
    g, d = specs_from_params(params, params.variant("baseline"), channels=3)
    assert g == gspec(activation="leaky_relu", batch_norm=False, channels=3)  # the shrunk widths: 16, 8, 8
    assert d == dspec(channels=3, batch_norm=True, spectral_norm=False)
    g, d = specs_from_params(params, params.variant("final"), channels=1)
    assert (g.activation, g.batch_norm, g.output, d.spectral_norm, d.head) == ("relu", True, "tanh", True, "conv")
    from dataclasses import replace

    unit = replace(params, data=replace(params.data, pixel_range=(0.0, 1.0)))
    assert specs_from_params(unit, unit.variant("final"), 1)[0].output == "sigmoid"  # [0, 1] pixels
