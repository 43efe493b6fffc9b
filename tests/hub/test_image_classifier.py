"""LambdaResNetImageClassifier and its preprocessor: registry presets,
keras-hub preset folders, and keras-hub's `run_task_test` checks."""

import json

import keras
import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

import tensorflow as tf  # noqa: E402
from crop_reference import center_crop  # noqa: E402

from lambda_keras.applications import LambdaResNet26Compact  # noqa: E402
from lambda_keras.applications.imagenet import imagenet_label  # noqa: E402
from lambda_keras.hub import LambdaResNetBackbone  # noqa: E402
from lambda_keras.hub import LambdaResNetImageClassifier  # noqa: E402
from lambda_keras.hub import LambdaResNetImageClassifierPreprocessor  # noqa: E402
from lambda_keras.hub import LambdaResNetImageConverter  # noqa: E402
from lambda_keras.weights import find_checkpoint  # noqa: E402
from lambda_keras.weights import load_manifest  # noqa: E402

COMPACT = "lambda_resnet26_compact.imagenette"


@pytest.fixture(scope="module")
def pretrained():
    return LambdaResNetImageClassifier.from_preset(COMPACT)


@pytest.fixture(scope="module")
def small():
    """A random 3-class classifier on a one-block-per-stage backbone."""
    backbone = LambdaResNetBackbone("LambdaResNet26Compact", depths=(1, 1, 1, 1))
    converter = LambdaResNetImageConverter(
        image_size=(64, 64), crop_fraction=0.875, scale=1 / 255
    )
    return dict(
        backbone=backbone,
        num_classes=3,
        preprocessor=LambdaResNetImageClassifierPreprocessor(converter),
    )


def test_registry_preset_predicts_as_the_applications_model(pretrained, photos):
    probabilities = pretrained.predict(photos, verbose=0)
    model = LambdaResNet26Compact(
        weights="imagenette", include_preprocessing=True, input_shape=(80, 80, 3)
    )
    crops = np.stack([center_crop(photo, 80, 0.875) for photo in photos])
    np.testing.assert_allclose(
        probabilities, model.predict(crops, verbose=0), atol=1e-5
    )
    class_names = find_checkpoint(COMPACT)["class_names"]
    labels = [imagenet_label(class_names[i]) for i in probabilities.argmax(-1)]
    assert labels == ["church", "parachute", "tench"]


def test_registry_preset_is_the_applications_classifier(pretrained):
    assert type(pretrained.backbone) is LambdaResNetBackbone
    assert pretrained.backbone.variant == "LambdaResNet26Compact"
    assert (pretrained.num_classes, pretrained.activation) == (10, "softmax")
    assert pretrained.dropout == 0.3  # the hybrid architecture's
    assert isinstance(pretrained.preprocessor, LambdaResNetImageClassifierPreprocessor)
    assert pretrained.preprocessor.image_size == (80, 80)


def test_preset_folder_reloads_with_keras_hubs_from_preset(
    pretrained, photos, tmp_path
):
    pretrained.save_to_preset(tmp_path)
    for name in ("config.json", "task.json", "preprocessor.json", "metadata.json"):
        assert (tmp_path / name).is_file()
    metadata = json.loads((tmp_path / "metadata.json").read_text())
    assert metadata["tasks"] == ["ImageClassifier"]
    reloaded = keras_hub.models.ImageClassifier.from_preset(str(tmp_path))
    assert type(reloaded) is LambdaResNetImageClassifier
    np.testing.assert_allclose(
        reloaded.predict(photos, verbose=0),
        pretrained.predict(photos, verbose=0),
        atol=1e-6,
    )
    preprocessor = keras_hub.models.ImageClassifierPreprocessor.from_preset(
        str(tmp_path)
    )
    assert type(preprocessor) is LambdaResNetImageClassifierPreprocessor
    converter = keras_hub.layers.ImageConverter.from_preset(str(tmp_path))
    assert (type(converter), converter.crop_fraction) == (
        LambdaResNetImageConverter,
        0.875,
    )


def test_num_classes_gives_a_new_classifier_on_the_pretrained_backbone(pretrained):
    classifier = LambdaResNetImageClassifier.from_preset(COMPACT, num_classes=3)
    assert classifier.output_dense.kernel.shape == (1024, 3)
    for ours, theirs in zip(classifier.backbone.weights, pretrained.backbone.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_registry_preprocessor_preset():
    preprocessor = LambdaResNetImageClassifierPreprocessor.from_preset(COMPACT)
    images, labels = preprocessor(np.zeros((2, 100, 120, 3), "uint8"), [1, 2])
    assert tuple(images.shape) == (2, 80, 80, 3)
    np.testing.assert_array_equal(labels, [1, 2])


def test_serialization_round_trip(small):
    classifier = LambdaResNetImageClassifier(**small)
    config = json.dumps(keras.saving.serialize_keras_object(classifier))
    revived = keras.saving.deserialize_keras_object(json.loads(config))
    assert type(revived) is LambdaResNetImageClassifier
    assert json.dumps(revived.get_config(), sort_keys=True) == json.dumps(
        classifier.get_config(), sort_keys=True
    )


@pytest.mark.slow
def test_task_predict_and_fit(small, tmp_path):
    """keras-hub's `run_task_test`, and a `.keras` round trip."""
    images = np.random.default_rng(0).integers(0, 256, (4, 72, 72, 3), "uint8")
    labels = np.array([0, 1, 2, 0])
    classifier = LambdaResNetImageClassifier(**small)
    preprocessor = classifier.preprocessor
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(2)

    predictions = classifier.predict(images, verbose=0)
    assert predictions.shape == (4, 3)
    batched = classifier.predict(dataset, verbose=0)
    np.testing.assert_allclose(batched, predictions, atol=1e-6)
    classifier.preprocessor = None
    split = classifier.predict(dataset.map(preprocessor), verbose=0)
    classifier.preprocessor = preprocessor
    np.testing.assert_allclose(split, predictions, atol=1e-6)

    classifier.fit(images, labels, batch_size=2, verbose=0)
    classifier.fit(dataset, verbose=0)
    path = tmp_path / "classifier.keras"
    classifier.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is LambdaResNetImageClassifier
    np.testing.assert_allclose(
        restored.predict(images, verbose=0),
        classifier.predict(images, verbose=0),
        atol=1e-6,
    )
    uncompiled = LambdaResNetImageClassifier(**small, compile=False)
    with pytest.raises(ValueError, match="You must call `compile"):
        uncompiled.fit(dataset)


@pytest.mark.slow
@pytest.mark.parametrize("entry", load_manifest(), ids=lambda entry: entry["name"])
def test_every_registry_name_is_a_preset(entry):
    # Shipped weights load offline; downloaded ones are built without them.
    shipped = "path" in entry["files"][0]
    classifier = LambdaResNetImageClassifier.from_preset(
        entry["name"], load_weights=shipped
    )
    assert classifier.backbone.variant == entry["architecture"]
    assert classifier.num_classes == entry["classes"]
    assert classifier.preprocessor.image_size == tuple(entry["input_size"])
    outputs = classifier.predict(np.zeros((1, 300, 260, 3), "uint8"), verbose=0)
    assert outputs.shape == (1, entry["classes"])
    np.testing.assert_allclose(outputs.sum(), 1, atol=1e-5)
