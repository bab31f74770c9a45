import pytest
import torch
from torch import nn

from dcgan_lab.gan.models import (ConditionalBatchNorm2d, Discriminator, DiscriminatorSpec, Generator, GeneratorSpec,
                                  specs_from_params)


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


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("sn", [False, True])
@pytest.mark.parametrize("head", ["conv", "gap"])
def test_conditional_shapes_at_32_and_64_px_with_and_without_spectral_norm(size, sn, head):
    g = Generator(gspec(image_size=size, n_classes=10))
    d = Discriminator(dspec(image_size=size, spectral_norm=sn, head=head, n_classes=10))
    labels = torch.tensor([0, 3, 9, 3, 1])
    x = g(torch.randn(5, 16), labels)
    assert x.shape == (5, 1, size, size) and d(x, labels).shape == (5,)
    assert g.net[0].in_channels == 32  # z (16) joined by the label embedding (16)
    # With spectral norm the projection's embedding is normalised too (Miyato & Koyama's code does it).
    assert hasattr(d.embed, "parametrizations") == sn


@pytest.mark.parametrize("head", ["conv", "gap"])
def test_the_projection_term_changes_the_logit_when_the_label_changes(head):
    torch.manual_seed(0)
    d = Discriminator(dspec(head=head, n_classes=10)).eval()
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    a, b = d(x, torch.tensor([0, 0, 0, 0])), d(x, torch.tensor([1, 1, 1, 1]))
    assert not torch.allclose(a, b)
    # logit = psi(phi(x)) + <embed(y), phi(x)>: the difference between two labels is <embed(0) - embed(1), phi(x)>
    phi = d.net[: -d.n_head](x).sum((2, 3))
    assert torch.allclose(a - b, phi @ (d.embed.weight[0] - d.embed.weight[1]), atol=1e-5)


def test_a_conditional_model_refuses_to_run_without_labels_and_the_unconditional_keys_stay():
    with pytest.raises(ValueError, match=r"needs one label per sample, \(B,\) = \(3,\); got none"):
        Generator(gspec(n_classes=4))(torch.randn(3, 16))
    with pytest.raises(ValueError, match=r"got shape \(2,\)"):
        Discriminator(dspec(n_classes=4))(torch.zeros(3, 1, 32, 32), torch.tensor([0, 1]))
    # Unconditional models have no embedding: their state_dict keys (old checkpoints) are unchanged.
    assert not any("embed" in k for k in [*Generator(gspec()).state_dict(), *Discriminator(dspec()).state_dict()])
    assert set(Discriminator(dspec()).state_dict()) < set(Discriminator(dspec(n_classes=4)).state_dict())


def test_same_seed_gives_the_same_conv_weights_to_the_conditional_and_the_plain_discriminator():
    plain, cond = Discriminator(dspec(), init_seed=6), Discriminator(dspec(n_classes=10), init_seed=6)
    assert all(torch.equal(w, cond.state_dict()[k]) for k, w in plain.state_dict().items())


def test_conditional_batch_norm_gives_each_class_its_own_gain_and_shift_and_z_its_first_layer_alone():
    g = Generator(gspec(n_classes=10, conditioning="cbn"), init_seed=4)
    assert g.embed is None and g.net[0].in_channels == 16  # z alone: the labels go to the batch-norm layers
    cbn = [m for m in g.modules() if isinstance(m, ConditionalBatchNorm2d)]
    assert len(cbn) == 3 and all(m.gain.shape == (10, m.norm.num_features) for m in cbn)
    assert all(torch.equal(m.shift, torch.zeros_like(m.shift)) for m in cbn)
    assert 0.9 < float(cbn[0].gain.mean()) < 1.1 and float(cbn[0].gain.std()) > 0  # N(1, 0.02), as batch norm's
    plain = Generator(gspec(), init_seed=4)  # the same conv weights as the unconditional G with this seed
    assert all(torch.equal(w, g.state_dict()[k]) for k, w in plain.state_dict().items() if "net.0." in k)
    g.eval()
    z = torch.randn(4, 16)
    a, b = g(z, torch.tensor([0, 0, 0, 0])), g(z, torch.tensor([1, 1, 1, 1]))
    with torch.no_grad():
        cbn[0].gain[1] += 0.5  # class 1's gain alone moves class 1's images alone
    assert torch.equal(g(z, torch.tensor([0, 0, 0, 0])), a) and not torch.equal(g(z, torch.tensor([1, 1, 1, 1])), b)
    with pytest.raises(ValueError, match="conditioning cbn needs batch norm in G"):
        Generator(gspec(n_classes=10, conditioning="cbn", batch_norm=False))


def test_the_label_embedding_has_its_own_width_and_init_scale():
    """Issue 22: a 100-wide N(0, 1) embedding beside z drowned the noise; the width and scale are the variant's."""
    default, narrow = Generator(gspec(n_classes=10), init_seed=2), Generator(gspec(n_classes=10, embed_dim=4,
                                                                                   embed_std=0.1), init_seed=2)
    assert default.embed.weight.shape == (10, 16) and narrow.embed.weight.shape == (10, 4)
    assert narrow.net[0].in_channels == 16 + 4  # z joined by the 4-wide embedding
    assert 0.5 < float(default.embed.weight.std()) < 1.5 and 0.05 < float(narrow.embed.weight.std()) < 0.15
    narrow.eval()
    assert narrow(torch.randn(3, 16), torch.tensor([0, 5, 9])).shape == (3, 1, 32, 32)
