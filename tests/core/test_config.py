"""The params schema itself: every key it knows is spelled out in params.yaml, sections left out take the
schema's defaults, and the derived bits (augmentation on or off, variant lookup) say what they mean."""

import dataclasses

import pytest

from dcgan_lab.core.config import AugmentConfig, Params, VariantConfig
from dcgan_lab.core.errors import ConfigError
from dcgan_lab.core.params import parse_params


def test_params_yaml_spells_out_every_key_of_the_schema(raw_params):
    """params.yaml is where users read what a key does: no schema key may be missing from it, none extra."""
    for section in dataclasses.fields(Params):
        if section.name == "variants":
            continue
        names = [f.name for f in dataclasses.fields(section.default_factory())]
        assert list(raw_params[section.name]) == names, section.name
    variant_keys = [f.name for f in dataclasses.fields(VariantConfig)]
    augment_keys = [f.name for f in dataclasses.fields(AugmentConfig)]
    # Every variant spells out the study's flags; the chapter keys (conditional, its own loss, d_steps, betas)
    # appear, in schema order, where a variant uses them, and each is spelled out by at least one variant.
    study, chapters = variant_keys[: variant_keys.index("augment") + 1], variant_keys[variant_keys.index("augment") + 1 :]
    seen = set()
    for name, variant in raw_params["variants"].items():
        keys = list(variant)
        assert keys[: len(study)] == study and list(variant["augment"]) == augment_keys, name
        assert keys[len(study) :] == [k for k in chapters if k in keys], name
        seen.update(keys)
    assert seen == set(variant_keys)


def test_sections_left_out_take_the_schema_defaults():
    names = Params().ablation.variants  # the variants the ablation runs unless told otherwise
    p = parse_params({"variants": {name: {} for name in names}})
    assert p == Params(variants={name: VariantConfig() for name in names})
    assert p.train.batch_size == 64 and p.data.pixel_range == (-1.0, 1.0) and p.evaluate.real_split == "test"


def test_augmentation_is_enabled_by_any_one_transform():
    assert not AugmentConfig().enabled
    for change in (dict(translation=0.1), dict(cutout=0.2), dict(color=True), dict(flip=True)):
        assert AugmentConfig(**change).enabled, change


def test_configs_are_frozen_and_an_unknown_variant_names_the_defined_ones():
    p = Params(variants={"a": VariantConfig(), "b": VariantConfig()})
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.train = None  # a stage cannot change the config it was given
    assert p.variant("b") is p.variants["b"]
    with pytest.raises(ConfigError, match=r"^variant: unknown variant 'c'; allowed: a, b$"):
        p.variant("c")
    with pytest.raises(ConfigError, match=r"allowed: \(none defined\)"):
        Params().variant("a")
