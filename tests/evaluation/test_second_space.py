"""The second feature space: a classifier of another family (conv + max-pool, no batch norm, a wide FC layer), trained
apart from the first on real MNIST (conftest), saved with its test accuracy and registered with torch-fidelity."""

from dataclasses import replace

import pytest
import torch
from torch import nn

from dcgan_lab.core.config import SecondClassifierConfig
from dcgan_lab.core.errors import CheckpointError, UserError
from dcgan_lab.evaluation.classifier import Classifier, ClassifierSpec, save_classifier
from dcgan_lab.evaluation.second_space import (
    EXTRACTOR_NAME, LeNet, LeNetFeatureExtractor, LeNetSpec, check_second_accuracy, load_second_classifier, register,
    save_second_classifier, second_kwargs, second_meta, train_second_classifier,
)

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def second_path(mnist, tmp_path_factory):
    train, test = mnist
    cfg = SecondClassifierConfig(channels=8, features=64, epochs=1, max_steps=150, batch_size=64)
    model, metrics = train_second_classifier(cfg, train, (test[0][:2000], test[1][:2000]), 10, CPU)
    path = tmp_path_factory.mktemp("second") / "classifier.pt"
    save_second_classifier(model, path, **metrics)
    return path


def test_it_shares_no_layer_type_with_the_first_and_learns_digits(second_path, classifier_path):
    meta = second_meta(second_path)
    assert meta["test_accuracy"] > 0.9 and meta["steps"] == 150 and meta["extractor"] == EXTRACTOR_NAME
    model = load_second_classifier(second_path)
    kinds = {type(m) for m in model.modules()}
    first = {type(m) for m in Classifier(ClassifierSpec(1, 4, 10, 32)).modules()}
    assert nn.MaxPool2d in kinds and nn.Dropout in kinds and nn.BatchNorm2d not in kinds
    assert nn.BatchNorm2d in first and nn.AdaptiveAvgPool2d in first and nn.MaxPool2d not in first
    assert {m.kernel_size for m in model.modules() if isinstance(m, nn.Conv2d)} == {(5, 5)}
    assert model.features(torch.zeros(2, 1, 32, 32, dtype=torch.uint8)).shape == (2, 64)


def test_it_is_a_registered_torch_fidelity_extractor_giving_the_models_features(second_path):
    assert register() == register() == EXTRACTOR_NAME == second_kwargs(second_path)["feature_extractor"]
    fx = LeNetFeatureExtractor(EXTRACTOR_NAME, ["features", "logits"], feature_extractor_weights_path=str(second_path))
    x = torch.randint(0, 256, (3, 1, 32, 32), dtype=torch.uint8)
    feats, logits = fx(x)
    model = load_second_classifier(second_path)
    assert torch.equal(feats, model.features(x)) and torch.equal(logits, model(x)) and logits.shape == (3, 10)
    assert (feats >= 0).all()  # the FC layer's ReLU activations
    with pytest.raises(TypeError, match=f"^{EXTRACTOR_NAME} expects uint8 images"):
        fx(x.float())


def test_training_is_repeatable_and_another_seed_is_another_model(mnist):
    train, test = mnist
    cfg = SecondClassifierConfig(channels=4, features=16, max_steps=5, batch_size=32)
    a, _ = train_second_classifier(cfg, train, (test[0][:50], test[1][:50]), 10, CPU)
    b, _ = train_second_classifier(cfg, train, (test[0][:50], test[1][:50]), 10, CPU)
    c, _ = train_second_classifier(replace(cfg, seed=7), train, (test[0][:50], test[1][:50]), 10, CPU)
    x = test[0][:8]
    assert torch.equal(a.features(x), b.features(x)) and not torch.equal(a.features(x), c.features(x))


def test_a_weak_second_classifier_stops_its_stage_naming_its_own_key():
    check_second_accuracy({"test_accuracy": 0.99}, 0.98)
    with pytest.raises(UserError, match=r"^second_classifier\.min_accuracy: test accuracy 0\.5000 is below 0\.98; .*"
                                        r"\(second_classifier\.epochs\)"):
        check_second_accuracy({"test_accuracy": 0.5}, 0.98)


def test_a_missing_corrupt_or_first_space_checkpoint_is_one_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match=r"classifier\.pt: second classifier checkpoint not found; run `dvc repro "
                                              r"train_second_classifier` first, or set evaluate\.second_extractor: "
                                              r"false$"):
        load_second_classifier(tmp_path / "classifier.pt")
    (tmp_path / "corrupt.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"corrupt\.pt: .*rerun `dvc repro train_second_classifier`"):
        load_second_classifier(tmp_path / "corrupt.pt")
    save_classifier(Classifier(ClassifierSpec(1, 4, 10, 32)), tmp_path / "first.pt")  # the first space's checkpoint
    with pytest.raises(CheckpointError, match=r"first\.pt: not a readable dcgan-lab second classifier checkpoint "
                                              r"\(ValueError: family None, not 'lenet'\); rerun `dvc repro "
                                              r"train_second_classifier`$"):
        load_second_classifier(tmp_path / "first.pt")
    model = LeNet(LeNetSpec(channels=1, width=4, features=8, n_classes=3, image_size=16, dropout=0.5))
    save_second_classifier(model, tmp_path / "small.pt", test_accuracy=0.5)
    assert second_meta(tmp_path / "small.pt") == {"test_accuracy": 0.5}
    x = torch.randint(0, 256, (2, 1, 16, 16), dtype=torch.uint8)
    assert torch.equal(load_second_classifier(tmp_path / "small.pt")(x), model.eval()(x))
