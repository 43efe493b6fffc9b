"""LambdaResNetImageConverter: the registry's resize, central crop and
normalisation."""

import json

import keras
import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

import tensorflow as tf  # noqa: E402
from crop_reference import center_crop  # noqa: E402

from lambda_keras.hub import LambdaResNetImageConverter  # noqa: E402
from lambda_keras.weights import find_checkpoint  # noqa: E402

COMPACT = "lambda_resnet26_compact.imagenette"


@pytest.fixture
def converter():
    return LambdaResNetImageConverter.from_preset(COMPACT)


def _evaluation_transform(photo, entry):
    """What our checkpoints are evaluated with, by the numpy reference."""
    preprocessing = entry["preprocessing"]
    size = entry["input_size"][0]
    image = center_crop(
        photo, size, preprocessing["crop_fraction"], preprocessing["resize"]
    )
    return (image / 255.0 - preprocessing["mean"]) / preprocessing["std"]


def test_registry_entry_sets_size_crop_interpolation_mean_and_std(converter):
    assert converter.image_size == (80, 80)
    assert converter.crop_fraction == 0.875
    assert converter.interpolation == "bilinear"
    assert converter.antialias
    assert (converter.resizing.height, converter.resizing.width) == (91, 91)
    std = np.array(find_checkpoint(COMPACT)["preprocessing"]["std"])
    np.testing.assert_allclose(converter.scale, 1 / (255 * std))


def test_is_the_evaluation_transform_of_the_checkpoints(converter, photos):
    entry = find_checkpoint(COMPACT)
    expected = np.stack([_evaluation_transform(photo, entry) for photo in photos])
    np.testing.assert_allclose(converter(photos), expected, atol=1e-4)
    # One image, unbatched.
    np.testing.assert_allclose(converter(photos[0]), expected[0], atol=1e-4)


def test_any_input_size_and_aspect_ratio(converter, photos):
    assert tuple(converter(photos[:, :, :150]).shape) == (3, 80, 80, 3)
    assert tuple(converter(np.zeros((1, 500, 90, 3))).shape) == (1, 80, 80, 3)
    resized = converter([photos[0], photos[1, :120]])
    assert [tuple(image.shape) for image in resized] == [(80, 80, 3)] * 2


def test_image_size_is_settable(converter, photos):
    converter.image_size = (64, 64)
    assert (converter.resizing.height, converter.resizing.width) == (73, 73)
    assert tuple(converter(photos).shape) == (3, 64, 64, 3)


def test_crop_fraction_one_is_keras_hubs_resize(photos):
    ours = LambdaResNetImageConverter(image_size=(48, 48), scale=1 / 255)
    theirs = keras_hub.layers.ImageConverter(
        image_size=(48, 48), scale=1 / 255, antialias=True
    )
    # Keras' `Resizing` rounds integer images; ours resizes them in float.
    expected = theirs(photos.astype("float32"))
    np.testing.assert_allclose(ours(photos), expected, atol=1e-6)


def test_in_a_tf_data_pipeline(converter, photos):
    dataset = tf.data.Dataset.from_tensor_slices(photos).batch(2).map(converter)
    mapped = np.concatenate([batch.numpy() for batch in dataset])
    np.testing.assert_allclose(mapped, converter(photos), atol=1e-6)


def test_serialization_round_trip(converter, photos):
    config = converter.get_config()
    assert (config["image_size"], config["crop_fraction"]) == ((80, 80), 0.875)
    serialized = json.dumps(keras.saving.serialize_keras_object(converter))
    revived = keras.saving.deserialize_keras_object(json.loads(serialized))
    assert type(revived) is LambdaResNetImageConverter
    assert json.dumps(revived.get_config()) == json.dumps(config)
    np.testing.assert_allclose(revived(photos), converter(photos), atol=1e-6)


@pytest.mark.parametrize("crop_fraction", [0, 1.5, True, "0.9"])
def test_bad_crop_fraction(crop_fraction):
    with pytest.raises(ValueError, match="crop_fraction"):
        LambdaResNetImageConverter(image_size=(64, 64), crop_fraction=crop_fraction)


def test_boxes_are_not_cropped(converter, photos):
    boxes = {"boxes": np.zeros((3, 1, 4)), "labels": np.zeros((3, 1))}
    with pytest.raises(ValueError, match="crop_fraction=1"):
        converter({"images": photos, "bounding_boxes": boxes})
