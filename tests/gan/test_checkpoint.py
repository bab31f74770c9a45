"""Checkpoints rebuild their models alone (weights plus specs); a bad file is one clear error."""

import pytest
import torch

from dcgan_lab.core.errors import CheckpointError
from dcgan_lab.gan.checkpoint import (
    has_discriminator, has_ema, load_discriminator, load_generator, load_meta, save_gan, save_generator,
)
from dcgan_lab.gan.models import Discriminator, Generator, specs_from_params


def test_checkpoint_rebuilds_models_alone(params, tmp_path):
    g_spec, d_spec = specs_from_params(params, params.variant("improved"), channels=1)
    g, d = Generator(g_spec).eval(), Discriminator(d_spec).eval()
    save_gan(tmp_path / "ckpt.pt", g, d, variant="improved")
    g2, d2 = load_generator(tmp_path / "ckpt.pt"), load_discriminator(tmp_path / "ckpt.pt")
    assert g2.spec == g_spec and d2.spec == d_spec
    z = torch.randn(4, g_spec.latent_dim)
    assert torch.equal(g(z), g2(z))
    assert torch.equal(d(g(z)), d2(g(z)))


def test_ema_generator_and_meta_travel_with_the_checkpoint(params, tmp_path):
    g_spec, d_spec = specs_from_params(params, params.variant("final"), channels=1)
    g, ema = Generator(g_spec).eval(), Generator(g_spec).eval()  # two different initialisations
    save_gan(tmp_path / "with.pt", g, Discriminator(d_spec), ema=ema, steps=12, variant="final")
    save_gan(tmp_path / "without.pt", g, Discriminator(d_spec))
    assert has_ema(tmp_path / "with.pt") and not has_ema(tmp_path / "without.pt")
    z = torch.randn(3, g_spec.latent_dim)
    assert torch.equal(load_generator(tmp_path / "with.pt", ema=True)(z), ema(z))
    assert not torch.equal(load_generator(tmp_path / "with.pt")(z), ema(z))
    assert load_meta(tmp_path / "with.pt") == {"steps": 12, "variant": "final"}
    save_generator(tmp_path / "best.pt", g, steps=5, fid_quick=3.5)  # a generator alone, e.g. the best one
    assert torch.equal(load_generator(tmp_path / "best.pt")(z), g(z))
    assert load_meta(tmp_path / "best.pt") == {"steps": 5, "fid_quick": 3.5}


def test_corrupt_or_missing_checkpoint_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_generator(bad)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_generator(tmp_path / "missing.pt")


def test_incompatible_checkpoint_is_one_clear_error(params, tmp_path):
    g_spec, d_spec = specs_from_params(params, params.variant("final"), channels=1)
    save_gan(tmp_path / "ckpt.pt", Generator(g_spec), Discriminator(d_spec))
    blob = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    blob["generator"]["spec"]["width"] *= 2  # weights no longer fit the spec: another version's file
    torch.save(blob, tmp_path / "ckpt.pt")
    with pytest.raises(CheckpointError, match=r"ckpt\.pt: not a dcgan-lab GAN checkpoint, or one made by an "
                                              r"incompatible version"):
        load_generator(tmp_path / "ckpt.pt")
    with pytest.raises(CheckpointError, match="incompatible version"):
        load_generator(tmp_path / "ckpt.pt", ema=True)  # no EMA generator in this file


def test_which_networks_a_checkpoint_holds_and_a_file_that_is_no_dict(params, tmp_path):
    g_spec, d_spec = specs_from_params(params, params.variant("final"), channels=1)
    save_gan(tmp_path / "ckpt.pt", Generator(g_spec), Discriminator(d_spec))
    save_generator(tmp_path / "best.pt", Generator(g_spec))
    assert has_discriminator(tmp_path / "ckpt.pt") and not has_discriminator(tmp_path / "best.pt")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    with pytest.raises(CheckpointError, match=r"tensor\.pt: not a dcgan-lab GAN checkpoint \(it holds a Tensor"):
        load_generator(tmp_path / "tensor.pt")


def test_a_conditional_batch_norm_generator_rebuilds_alone_and_an_older_conditional_one_still_loads(params, tmp_path):
    g_spec, d_spec = specs_from_params(params, params.variant("cgan_cbn"), 1, n_classes=10)
    g, d = Generator(g_spec, init_seed=4).eval(), Discriminator(d_spec)
    save_gan(tmp_path / "cbn.pt", g, d)
    back, labels, z = load_generator(tmp_path / "cbn.pt"), torch.tensor([0, 3, 9]), torch.randn(3, g_spec.latent_dim)
    assert back.spec.conditioning == "cbn" and torch.equal(back(z, labels), g(z, labels))
    # A cgan checkpoint written before the conditioning field: its spec lacks the key, and it means concat.
    old_g = Generator(specs_from_params(params, params.variant("cgan"), 1, n_classes=10)[0]).eval()
    save_gan(tmp_path / "old.pt", old_g, d)
    blob = torch.load(tmp_path / "old.pt", weights_only=True)
    del blob["generator"]["spec"]["conditioning"]
    torch.save(blob, tmp_path / "old.pt")
    assert load_generator(tmp_path / "old.pt").spec.conditioning == "concat"
    # The chapter's cgan (a 10-wide label embedding) rebuilds alone too.
    g_spec = specs_from_params(params, params.variant("cgan"), 1, n_classes=10)[0]
    assert g_spec.embed_dim == 10
    save_gan(tmp_path / "cgan.pt", Generator(g_spec, init_seed=1).eval(), d)
    assert torch.equal(load_generator(tmp_path / "cgan.pt")(z, labels), Generator(g_spec, init_seed=1).eval()(z, labels))
