"""Models and images for the export tests (fixtures: conftest.py).

The models have random weights spread by
`lambda_keras.applications.random_weights.spread_weights` over the sample
photographs, so that their probabilities are neither near uniform nor
saturated (either would make the parity checks too easy). The expected
model inputs come from the numpy reference crop (crop_reference.py), not
from lambda_keras' own.
"""

import io

import crop_reference
import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from lambda_keras.applications import LambdaResNet
from lambda_keras.applications import LambdaResNet26Compact
from lambda_keras.applications import preprocess_input
from lambda_keras.applications.random_weights import spread_weights
from lambda_keras.export import ServingPreprocessing
from lambda_keras.preprocessing import sample_images

# The sample photographs' classes, in the order of sample_images().
CLASS_NAMES = ("church", "parachute", "tench")
SIZE = 64
PREPROCESSING = ServingPreprocessing(input_size=SIZE, crop_fraction=0.875)


def spread_over_sample_photos(model, seed=0):
    """`spread_weights` over the sample photographs at the model's size."""
    size = model.input_shape[1] or SIZE
    photos = [path.read_bytes() for path in sample_images()]
    images = keras_inputs(photos, ServingPreprocessing(size))
    if not any(layer.name == "normalization" for layer in model.layers):
        images = preprocess_input(images)
    return spread_weights(model, images, seed)


def compact_model(seed=0, **kwargs):
    """LambdaResNet26Compact, 3 classes, 64 px, preprocessing included."""
    options = dict(weights=None, classes=3, include_preprocessing=True)
    keras.utils.set_random_seed(seed)
    return spread_over_sample_photos(
        LambdaResNet26Compact(**{**options, **kwargs}), seed
    )


def small_model(size=SIZE, seed=0, **kwargs):
    """A one-block-per-stage LambdaResNet at a quarter width (fast)."""
    options = dict(
        input_shape=(size, size, 3),
        classes=3,
        width_multiplier=0.25,
        include_preprocessing=True,
    )
    keras.utils.set_random_seed(seed)
    return spread_over_sample_photos(
        LambdaResNet((1, 1, 1, 1), **{**options, **kwargs}), seed
    )


def tiny_classifier(classes=3):
    """The layers the signatures need and little else: exported in seconds,
    for the tests of requests and files rather than of the model."""
    inputs = keras.Input((None, None, 3))
    features = keras.layers.Conv2D(4, 8, strides=8)(inputs)
    features = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(
        features
    )
    return keras.Model(inputs, outputs, name="tiny_classifier")


def keras_inputs(encoded, preprocessing=PREPROCESSING):
    """What the serving signature should feed the model: each image decoded
    by TensorFlow and cropped by the numpy reference.

    Returns:
        float32 (batch, size, size, 3) in 0-255.
    """
    return np.stack(
        [
            crop_reference.center_crop(
                tf.io.decode_image(data, channels=3, expand_animations=False).numpy(),
                preprocessing.input_size,
                preprocessing.crop_fraction,
                preprocessing.resize,
            )
            for data in encoded
        ]
    )


def encode(image, format, **options):
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def png(width, height):
    """A black PNG of width x height pixels (it compresses to little)."""
    return encode(Image.new("RGB", (width, height)), "PNG")


def png_claiming(width, height):
    """A real 1x1 PNG whose IHDR header claims width x height."""
    data = bytearray(png(1, 1))
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    return bytes(data)


def cli_error(capsys, arguments):
    """Runs `lambda-keras ARGUMENTS`, expecting a user error: exit code 2 and
    one line on stderr, which is returned."""
    from lambda_keras.__main__ import main

    capsys.readouterr()
    assert main(arguments) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    return lines[0]
