"""The domain classifier: trained on real MNIST (conftest), saved with its test accuracy, and registered as
a torch-fidelity feature extractor."""

import pytest
import torch

from dcgan_lab.core.errors import CheckpointError, UserError
from dcgan_lab.evaluation.classifier import (
    Classifier, ClassifierFeatureExtractor, ClassifierSpec, accuracy_on, check_accuracy, classifier_meta,
    load_classifier, register, save_classifier,
)


def test_extractor_is_a_registered_torch_fidelity_extractor(classifier_path):
    name = register()
    assert register() == name  # idempotent within a process
    fx = ClassifierFeatureExtractor(name, ["features", "logits"], feature_extractor_weights_path=str(classifier_path))
    feats, logits = fx(torch.zeros(3, 1, 32, 32, dtype=torch.uint8))
    assert feats.shape == (3, 64) and logits.shape == (3, 10)
    with pytest.raises(TypeError, match="expects uint8 images"):
        fx(torch.zeros(3, 1, 32, 32))


def test_the_checkpoint_carries_the_test_accuracy_that_evaluate_reports(mnist, classifier_path):
    meta = classifier_meta(classifier_path)
    model = load_classifier(classifier_path)
    _, (test_x, test_y) = mnist
    assert meta["test_accuracy"] == round(accuracy_on(model, test_x[:2000], test_y[:2000]), 5)
    assert meta["n_test"] == 2000 and meta["n_train"] == 10000 and model.spec == ClassifierSpec(1, 16, 10, 32)


def test_a_weak_classifier_stops_the_stage():
    check_accuracy({"test_accuracy": 0.99}, 0.98)
    with pytest.raises(UserError, match=r"^classifier\.min_accuracy: test accuracy 0\.5000 is below 0\.98; FID"):
        check_accuracy({"test_accuracy": 0.5}, 0.98)


def test_missing_or_foreign_classifier_checkpoint_is_one_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match=r"classifier checkpoint not found; run `dvc repro train_classifier`"):
        classifier_meta(tmp_path / "classifier.pt")
    torch.save({"spec": {"width": 4}, "state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match=r"foreign\.pt: not a readable dcgan-lab classifier checkpoint"):
        load_classifier(tmp_path / "foreign.pt")
    model = Classifier(ClassifierSpec(channels=1, width=4, n_classes=3, image_size=16))
    save_classifier(model, tmp_path / "small.pt", test_accuracy=0.5)
    assert classifier_meta(tmp_path / "small.pt") == {"test_accuracy": 0.5}
    x = torch.randint(0, 256, (2, 1, 16, 16), dtype=torch.uint8)
    assert torch.equal(load_classifier(tmp_path / "small.pt")(x), model.eval()(x))  # uint8 in, same logits
