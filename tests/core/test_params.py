"""Reading params.yaml: every key checked once, at the edge, with one line naming the key, the value and
what is allowed; and the plain forms the stages pass on (to_dict, flatten)."""

import copy

import pytest

from dcgan_lab.core.errors import ConfigError
from dcgan_lab.core.params import flatten, load_params, parse_params, read_raw, to_dict
from helpers import ROOT, shrink


def test_real_params_file_loads_with_its_variants():
    p = load_params(ROOT / "params.yaml")
    assert list(p.variants) == ["radford", "baseline", "improved", "final", "cgan", "cgan_cbn", "wgan"]
    assert p.train.lr_g == 2.0e-4 and p.train.betas == (0.5, 0.999)
    radford = p.variants["radford"]  # the textbook control: ReLU + BN in G, BN in D, nothing else
    assert (radford.g_activation, radford.g_batch_norm, radford.d_batch_norm, radford.d_spectral_norm,
            radford.augment.enabled) == ("relu", True, True, False, False)
    assert p.data.pixel_range == (-1.0, 1.0)  # hence G's tanh output
    assert p.ablation.variants == ("radford", "baseline", "improved", "final")
    assert p.ablation.seeds == (10, 11, 12, 13, 14)
    # fresh seeds (0-2 were the pilot that chose the design), decided at 5 and, where still open, at 10
    assert (p.ablation.looks, p.ablation.seed_sequence) == ((5, 10), tuple(range(10, 20)))
    base, improved, final = (p.variants[name] for name in ("baseline", "improved", "final"))
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
        ("evaluate", "collapse_diversity", 1.5,
         r"^evaluate\.collapse_diversity: 1\.5 is out of range; allowed: 0 \(off\) or a number in \(0, 1\]$"),
        ("evaluate", "collapse_recall", -0.1,
         r"^evaluate\.collapse_recall: -0\.1 is out of range; allowed: 0 \(off\) or a number in \(0, 1\]$"),
        ("evaluate", "collapse_recall", "0.1", r"^evaluate\.collapse_recall: expected a number, got '0\.1'"),
    ],
)
def test_out_of_range_and_unknown_values(raw_params, section, key, value, match):
    error({**raw_params, section: {**raw_params[section], key: value}}, match)


def test_variant_keys_are_checked_and_unknown_variant_is_named(raw_params):
    bad = {**raw_params, "variants": {"final": {"g_activation": "tanh"}}}
    error(bad, r"variants\.final\.g_activation: 'tanh' is not allowed; allowed: relu, leaky_relu")
    p = parse_params(raw_params)
    with pytest.raises(ConfigError, match=r"variant: unknown variant 'fnal'; allowed: radford, baseline, improved, "
                                          r"final, cgan, cgan_cbn, wgan$"):
        p.variant("fnal")


def test_ablation_variants_name_defined_variants_once_each(raw_params):
    p = parse_params({**raw_params, "ablation": {**raw_params["ablation"], "variants": ["final", "baseline"]}})
    assert p.ablation.variants == ("final", "baseline")
    error({**raw_params, "ablation": {"variants": ["final", "fnal"]}},
          r"^ablation\.variants: 'fnal' is not a variant; allowed: radford, baseline, improved, final, cgan, cgan_cbn, wgan "
          r"\(did you mean 'final'\?\)$")
    error({**raw_params, "ablation": {"variants": ["final", "final"]}}, r"ablation\.variants: \['final', 'final'\] is out")
    error({**raw_params, "ablation": {"variants": []}}, r"ablation\.variants: \[\] is out of range")


def test_ablation_seeds_are_a_list_of_distinct_integers(raw_params):
    p = parse_params({**raw_params, "ablation": {"seeds": [0, 1, 2], "looks": None}})  # a fixed design: any seeds
    assert p.ablation.seeds == (0, 1, 2)
    error({**raw_params, "ablation": {"seeds": [0, 0]}}, r"ablation\.seeds: \[0, 0\] is out of range")
    error({**raw_params, "ablation": {"seeds": []}}, r"ablation\.seeds: \[\] is out of range")
    error({**raw_params, "ablation": {"seeds": 3}}, r"ablation\.seeds: expected a list, got 3")
    error({**raw_params, "ablation": {"seeds": [0, "one"]}}, r"ablation\.seeds\[1\]: expected an integer")


def with_ablation(raw_params, **changes) -> dict:
    return {**raw_params, "ablation": {**raw_params["ablation"], **changes}}


def test_the_looks_increase_have_at_least_2_seeds_and_fit_in_the_seed_sequence(raw_params):
    p = parse_params(with_ablation(raw_params, looks=[3, 5, 10], seeds=[10, 11, 12]))
    assert p.ablation.looks == (3, 5, 10)
    assert parse_params(with_ablation(raw_params, looks=[10], seeds=list(range(10, 20)))).ablation.looks == (10,)
    for looks in ([10, 5], [5, 5], []):
        error(with_ablation(raw_params, looks=looks),
              r"^ablation\.looks: .* is out of range; allowed: null \(a fixed design\) or a strictly increasing list "
              r"of seeds per variant, e\.g\. \[5, 10\]$")
    error(with_ablation(raw_params, looks=[1, 5]),
          r"^ablation\.looks: \[1, 5\] is out of range; allowed: looks of at least 2 seeds each \(a t test needs 2\)$")
    error(with_ablation(raw_params, looks=[5, 12]),
          r"^ablation\.looks: \[5, 12\] is out of range; allowed: looks of at most 10 seeds, the length of "
          r"ablation\.seed_sequence$")
    error(with_ablation(raw_params, looks=5), r"^ablation\.looks: expected a list, got 5 \(null is allowed too")


def test_the_seed_sequence_is_distinct_and_the_seeds_are_its_start(raw_params):
    for order in ([10, 11, 10], [10, -1, 12], []):
        error(with_ablation(raw_params, seed_sequence=order),
              r"^ablation\.seed_sequence: .* is out of range; allowed: a non-empty list of distinct integers >= 0, "
              r"the design's seeds in the order they are used$")
    p = parse_params(with_ablation(raw_params, seed_sequence=[7, 3, 9, 1, 4, 8], seeds=[7, 3, 9, 1, 4], looks=[5, 6]))
    assert p.ablation.seeds == (7, 3, 9, 1, 4)  # any order the design declares: each look takes them as listed
    message = error(with_ablation(raw_params, seeds=[0, 1, 2]),
                    r"^ablation\.seeds: \[0, 1, 2\] is not the start of ablation\.seed_sequence \[10, 11, .*, 19\]; "
                    r"allowed with ablation\.looks set: its first seeds in its order, e\.g\. \[10, 11, 12, 13, 14\] ")
    assert message.endswith("(looks: null runs a fixed design on any seeds)")
    error(with_ablation(raw_params, seeds=[11, 10]), r"^ablation\.seeds: \[11, 10\] is not the start")  # its order
    error(with_ablation(raw_params, seeds=[10, 12]), r"^ablation\.seeds: \[10, 12\] is not the start")  # no gaps
    assert parse_params(with_ablation(raw_params, seeds=[0, 1, 2], looks=None)).ablation.seeds == (0, 1, 2)


def test_the_declared_design_is_checked(raw_params):
    p = parse_params(raw_params)
    assert (p.ablation.primary, p.ablation.margin, p.ablation.alpha) == ("ema_fid", 1.0, 0.05)
    p = parse_params({**raw_params, "ablation": {"primary": "is_mean", "margin": 0.5, "alpha": 0.01}})
    assert (p.ablation.primary, p.ablation.margin, p.ablation.alpha) == ("is_mean", 0.5, 0.01)
    error({**raw_params, "ablation": {"primary": "ema_fdi"}},
          r"^ablation\.primary: 'ema_fdi' is not a metric the report can decide on; allowed: fid, .*ema_fid_inf "
          r"\(did you mean 'ema_fid'\?\)$")
    error({**raw_params, "ablation": {"primary": "conditional_accuracy"}}, r"^ablation\.primary: 'conditional_accuracy'")
    error({**raw_params, "ablation": {"margin": -1.0}}, r"^ablation\.margin: -1\.0 is out of range; allowed: a number > 0")
    error({**raw_params, "ablation": {"margin": "1e0"}}, r"^ablation\.margin: expected a number, got '1e0'")
    for alpha in (0.0, 0.5, 1.0):
        error({**raw_params, "ablation": {"alpha": alpha}}, r"^ablation\.alpha: .* is out of range; allowed: a number "
                                                              r"in \(0, 0\.5\)$")


def test_mlflow_section_is_validated(raw_params):
    assert parse_params(raw_params).mlflow.register is False
    with pytest.raises(ConfigError, match=r"^mlflow.registr: unknown key \(did you mean 'register'\?\); allowed: "
                                          r"register, model_name$"):
        parse_params({**raw_params, "mlflow": {"registr": True}})
    with pytest.raises(ConfigError, match=r"^mlflow.model_name: 'a/b' is out of range; allowed: a non-empty"):
        parse_params({**raw_params, "mlflow": {"model_name": "a/b"}})
    with pytest.raises(ConfigError, match=r"^mlflow.register: expected true or false, got 'yes'$"):
        parse_params({**raw_params, "mlflow": {"register": "yes"}})


def test_stream_takes_null_true_or_false(raw_params):
    raw = shrink(raw_params)
    raw["train"]["stream"] = "auto"
    with pytest.raises(ConfigError, match=r"^train\.stream: expected true or false, got 'auto' \(null is allowed too"):
        parse_params(raw)
    assert parse_params(shrink(raw_params)).train.stream is None


def test_missing_file_and_bad_yaml_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: params file not found$"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML") as info:
        load_params(bad)
    assert "\n" not in str(info.value).split(" (")[0]
    assert str(info.value) == (f"{bad}: not valid YAML (while parsing a flow sequence: expected ',' or ']', but got "
                               "'<stream end>' at line 2, column 1)")  # one line, with where it went wrong
    bad.write_text("- a list\n- not sections\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: expected a mapping of sections, got list"):
        load_params(bad)
    assert read_raw("", "empty.yaml") == {}


def test_to_dict_round_trips_through_parse_and_flatten_names_mlflow_params(raw_params):
    p = parse_params(raw_params)
    plain = to_dict(p)
    assert plain["train"]["betas"] == [0.5, 0.999] and plain["data"]["pixel_range"] == [-1.0, 1.0]  # lists, not tuples
    assert parse_params(plain) == p  # what a stage logs or saves reads back as the same config
    flat = flatten(plain)
    assert flat["train.lr_g"] == 2.0e-4 and flat["variants.final.augment.cutout"] == 0.5
    assert flatten({"a": {"b": {"c": 1}}, "d": 2}, "x") == {"x.a.b.c": 1, "x.d": 2}


def test_the_ready_cgan_and_wgan_variants_and_their_own_training_settings():
    p = load_params(ROOT / "params.yaml")
    cgan, wgan = p.variants["cgan"], p.variants["wgan"]
    assert cgan.conditional and not wgan.conditional and "cgan" not in p.ablation.variants
    # radford + conditional with a 10-wide label embedding (issue 22): the same flags otherwise
    assert {**vars(cgan), "conditional": False, "g_embedding_dim": None, "mode_seeking": None} == vars(
        p.variants["radford"])
    t = p.train_for(wgan)  # Gulrajani et al.: 5 critic steps, Adam (0.0, 0.9), no batch norm in the critic
    assert (t.loss, t.d_steps, t.betas, t.gp_weight, wgan.d_batch_norm) == ("wgan-gp", 5, (0.0, 0.9), 10.0, False)
    assert p.train_for(cgan) == p.train  # nothing of its own: train.* as it is


def test_wgan_gp_with_batch_norm_in_the_critic_names_both_keys(raw_params):
    raw = copy.deepcopy(raw_params)
    raw["variants"]["wgan"]["d_batch_norm"] = True
    assert error(raw, "variants.wgan.d_batch_norm").startswith(
        "variants.wgan.d_batch_norm: true conflicts with variants.wgan.loss: wgan-gp")
    raw = copy.deepcopy(raw_params)
    raw["train"]["loss"] = "wgan-gp"  # every variant with batch norm in D now conflicts: the first is named
    assert error(raw, "train.loss").startswith("variants.radford.d_batch_norm: true conflicts with train.loss: wgan-gp")


@pytest.mark.parametrize("key,value,match", [
    ("train.d_steps", 0, r"train\.d_steps: 0 is out of range; allowed: an integer >= 1"),
    ("train.gp_weight", -1.0, r"train\.gp_weight: -1\.0 is out of range; allowed: a number >= 0"),
    ("train.loss", "wgan", r"train\.loss: 'wgan' is not allowed; allowed: bce, hinge, wgan-gp \(did you mean 'wgan-gp'\?\)"),
    ("variants.wgan.d_steps", 0, r"variants\.wgan\.d_steps: 0 is out of range"),
    ("variants.cgan.conditional", "yes", r"variants\.cgan\.conditional: expected true or false, got 'yes'"),
    ("train.mode_seeking", -0.5, r"train\.mode_seeking: -0\.5 is out of range; allowed: a number >= 0 \(0: off\)"),
    ("train.ema_bn_batches", -1, r"train\.ema_bn_batches: -1 is out of range; allowed: 0 \(off: the live G's "
                                 r"statistics copied\) or an integer >= 1"),
    ("train.ema_bn_batches", 2.5, r"train\.ema_bn_batches: expected an integer, got 2\.5"),
    ("variants.cgan.mode_seeking", -1.0, r"variants\.cgan\.mode_seeking: -1\.0 is out of range; allowed: null "),
    ("variants.cgan.g_embedding_dim", 0, r"variants\.cgan\.g_embedding_dim: 0 is out of range; allowed: null "
                                         r"\(model\.latent_dim\) or an integer >= 1"),
    ("variants.cgan.g_embedding_std", 0.0, r"variants\.cgan\.g_embedding_std: 0\.0 is out of range; allowed: a "
                                           r"number > 0"),
])
def test_the_new_training_keys_are_checked(raw_params, key, value, match):
    raw = copy.deepcopy(raw_params)
    *path, last = key.split(".")
    node = raw
    for part in path:
        node = node[part]
    node[last] = value
    error(raw, match)


def test_the_recall_floor_of_the_collapse_alarm_needs_precision_recall(raw_params):
    off = {**raw_params["evaluate"], "precision_recall": False}
    error({**raw_params, "evaluate": off}, r"^evaluate\.collapse_recall: 0\.1 needs recall, and evaluate\.precision_"
                                           r"recall is false; allowed with precision_recall false: 0 \(off\)$")
    p = parse_params({**raw_params, "evaluate": {**off, "collapse_recall": 0.0}})  # the diversity check stays on
    assert (p.evaluate.collapse_recall, p.evaluate.collapse_diversity) == (0.0, 0.5)
