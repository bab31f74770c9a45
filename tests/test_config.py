import pytest

from dcgan_lab.config import ConfigError, load_params, parse_params

from conftest import ROOT


def test_real_params_file_loads_with_the_three_variants():
    p = load_params(ROOT / "params.yaml")
    assert list(p.variants) == ["baseline", "improved", "final"]
    assert p.train.lr_g == 2.0e-4 and p.train.betas == (0.5, 0.999)
    base, improved, final = p.variants.values()
    assert (base.g_activation, base.g_batch_norm, base.d_spectral_norm) == ("leaky_relu", False, False)
    assert (improved.g_batch_norm, improved.d_spectral_norm, improved.augment.enabled) == (True, True, False)
    assert (final.g_activation, final.augment.enabled, final.augment.color, final.augment.flip) == (
        "relu", True, False, False)


def error(raw, match):
    with pytest.raises(ConfigError, match=match) as info:
        parse_params(raw)
    assert "\n" not in str(info.value)  # one line for people
    return str(info.value)


def test_unknown_key_names_it_and_suggests(raw_params):
    raw = {**raw_params, "train": {**raw_params["train"], "batchsize": 8}}
    msg = error(raw, r"train\.batchsize: unknown key")
    assert "did you mean 'batch_size'" in msg


def test_unknown_top_level_section(raw_params):
    error({**raw_params, "evalute": {}}, r"evalute: unknown key \(did you mean 'evaluate'\?\)")


def test_wrong_type_and_float_written_as_string(raw_params):
    error({**raw_params, "train": {**raw_params["train"], "epochs": "two"}}, r"train\.epochs: expected an integer")
    msg = error({**raw_params, "train": {**raw_params["train"], "lr_g": "2e-4"}}, r"train\.lr_g: expected a number")
    assert "2.0e-4" in msg


@pytest.mark.parametrize(
    "section,key,value,match",
    [
        ("train", "lr_d", 0.0, r"train\.lr_d: 0\.0 is out of range; allowed: a number > 0"),
        ("data", "image_size", 48, r"data\.image_size: 48 .*power of two"),
        ("data", "image_size", 8, r"data\.image_size: 8 .*power of two"),
        ("model", "g_width", 0, r"model\.g_width: 0 .*>= 1"),
        ("data", "pixel_range", [0, 255], r"data\.pixel_range.*\[-1, 1\] or \[0, 1\]"),
        ("data", "dataset", "mnits", r"data\.dataset: 'mnits' is not allowed; allowed: mnist, .*did you mean 'mnist'"),
        ("evaluate", "feature_extractor", "clip", r"evaluate\.feature_extractor: 'clip' is not allowed"),
        ("train", "loss", "wgan", r"train\.loss: 'wgan' is not allowed; allowed: bce, hinge"),
    ],
)
def test_out_of_range_and_unknown_values(raw_params, section, key, value, match):
    error({**raw_params, section: {**raw_params[section], key: value}}, match)


def test_variant_keys_are_checked_and_unknown_variant_is_named(raw_params):
    bad = {**raw_params, "variants": {"final": {"g_activation": "tanh"}}}
    error(bad, r"variants\.final\.g_activation: 'tanh' is not allowed; allowed: relu, leaky_relu")
    p = parse_params(raw_params)
    with pytest.raises(ConfigError, match=r"variant: unknown variant 'fnal'; allowed: baseline, improved, final"):
        p.variant("fnal")


def test_ablation_seeds_are_a_list_of_distinct_integers(raw_params):
    p = parse_params({**raw_params, "ablation": {"seeds": [0, 1, 2]}})
    assert p.ablation.seeds == (0, 1, 2)
    error({**raw_params, "ablation": {"seeds": [0, 0]}}, r"ablation\.seeds: \[0, 0\] is out of range")
    error({**raw_params, "ablation": {"seeds": []}}, r"ablation\.seeds: \[\] is out of range")
    error({**raw_params, "ablation": {"seeds": 3}}, r"ablation\.seeds: expected a list, got 3")
    error({**raw_params, "ablation": {"seeds": [0, "one"]}}, r"ablation\.seeds\[1\]: expected an integer")
