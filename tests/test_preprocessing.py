"""The evaluation crop (TensorFlow and timm's PIL transform), the ImageNet
statistics and the sample photographs."""

import os
import subprocess
import sys
from pathlib import Path

import crop_reference
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from lambda_keras.preprocessing import IMAGENET_MEAN
from lambda_keras.preprocessing import IMAGENET_STD
from lambda_keras.preprocessing import center_crop
from lambda_keras.preprocessing import load_image
from lambda_keras.preprocessing import resized_shorter_side
from lambda_keras.preprocessing import sample_images
from lambda_keras.preprocessing import timm_eval_transform

ROOT = Path(__file__).resolve().parents[1]


def test_imagenet_statistics():
    assert IMAGENET_MEAN == (0.485, 0.456, 0.406)
    assert IMAGENET_STD == (0.229, 0.224, 0.225)


def test_sample_images_are_shipped():
    names = [path.name for path in sample_images()]
    assert names == ["church.jpg", "parachute.jpg", "tench.jpg"]


@pytest.mark.parametrize(
    "size, crop_fraction, expected",
    [
        (80, 0.875, 91),  # 91.43
        (256, 0.94, 272),  # 272.34
        (224, 0.95, 235),  # 235.79
        (224, 0.875, 256),
        (48, 0.8, 60),
        (192, 1.0, 192),
    ],
)
def test_resized_shorter_side_is_floored(size, crop_fraction, expected):
    assert resized_shorter_side(size, crop_fraction) == expected


def test_resized_shorter_side_rejects_bad_arguments():
    with pytest.raises(ValueError, match="Received: crop_fraction=1.5"):
        resized_shorter_side(64, 1.5)
    with pytest.raises(ValueError, match="Received: crop_fraction=0"):
        resized_shorter_side(64, 0)
    with pytest.raises(ValueError, match="Received: size=0"):
        resized_shorter_side(0, 0.875)


# --- center_crop (TensorFlow) -------------------------------------------------


@pytest.mark.parametrize(
    "shape, size, crop_fraction",
    [
        ((224, 224), 64, 0.875),  # square, downscaled
        ((160, 224), 64, 0.5),  # wide; a left offset of 57.5 rounds to 58
        ((224, 150), 72, 0.9),  # tall
        ((37, 91), 48, 1.0),  # upscaled
    ],
)
@pytest.mark.parametrize("resize", ["bilinear", "bicubic"])
def test_center_crop_matches_the_reference(shape, size, crop_fraction, resize):
    image = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    expected = crop_reference.center_crop(image, size, crop_fraction, resize)

    eager = center_crop(tf.constant(image), size, crop_fraction, resize).numpy()
    # As in tf.data and the serving signatures: a graph, dynamic image size.
    graph = tf.function(
        lambda x: center_crop(x, size, crop_fraction, resize),
        input_signature=[tf.TensorSpec((None, None, 3), tf.uint8)],
    )(image).numpy()

    assert eager.shape == (size, size, 3) and eager.dtype == np.float32
    np.testing.assert_allclose(eager, expected, atol=3e-3)
    np.testing.assert_array_equal(graph, eager)


def test_center_crop_keeps_the_center():
    # A 60x120 image: red, green and blue bands of 30, 60 and 30 columns.
    image = np.zeros((60, 120, 3), np.uint8)
    image[:, :30, 0] = 255
    image[:, 30:90, 1] = 255
    image[:, 90:, 2] = 255
    # The shorter side is already 48 / 0.8 = 60: no resize, a 48x48 center crop.
    crop = center_crop(tf.constant(image), 48, 0.8).numpy()
    assert crop.shape == (48, 48, 3)
    np.testing.assert_allclose(crop[..., 1], 255.0, atol=1e-3)
    np.testing.assert_allclose(crop[..., [0, 2]], 0.0, atol=1e-3)


def test_center_crop_rejects_bad_arguments():
    image = tf.zeros((32, 32, 3), tf.uint8)
    with pytest.raises(ValueError, match="Received: resize='lanczos3'"):
        center_crop(image, 16, 0.875, resize="lanczos3")
    with pytest.raises(ValueError, match="Received: crop_fraction=1.5"):
        center_crop(image, 16, 1.5)


def test_load_image_is_the_center_crop_of_the_decoded_file():
    path = sample_images()[1]
    decoded = tf.io.decode_image(path.read_bytes(), channels=3).numpy()
    image = load_image(path, 80, 0.875, "bicubic")
    assert image.shape == (80, 80, 3) and image.dtype == np.float32
    expected = crop_reference.center_crop(decoded, 80, 0.875, "bicubic")
    np.testing.assert_allclose(image, expected, atol=3e-3)
    assert image.max() > 100  # 0-255, not 0-1


# --- timm_eval_transform (PIL) ------------------------------------------------


@pytest.mark.parametrize(
    "size, crop_fraction, resize",
    [(256, 0.94, "bicubic"), (224, 0.95, "bicubic"), (80, 0.875, "bilinear")],
)
@pytest.mark.parametrize("shape", [(224, 224), (300, 200), (180, 320)])
def test_timm_eval_transform_is_timms(size, crop_fraction, resize, shape):
    timm = pytest.importorskip("timm")
    image = Image.open(sample_images()[0]).convert("RGB").resize(shape)
    transform = timm.data.create_transform(
        input_size=(3, size, size),
        crop_pct=crop_fraction,
        interpolation=resize,
        is_training=False,
    )
    expected = transform(image).numpy().transpose(1, 2, 0)

    ours = timm_eval_transform(image, size, crop_fraction, resize)

    assert ours.shape == (size, size, 3)
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_timm_eval_transform_rejects_bad_arguments():
    with pytest.raises(ValueError, match="resize='lanczos5'"):
        timm_eval_transform(sample_images()[0], 64, 0.875, resize="lanczos5")
    with pytest.raises(ValueError, match="crop_fraction=1.5"):
        timm_eval_transform(sample_images()[0], 64, 1.5)


# --- How far apart the two crops are ------------------------------------------


def _pixels(normalized):
    """timm_eval_transform's output back on the 0-255 scale."""
    return (normalized * np.array(IMAGENET_STD) + np.array(IMAGENET_MEAN)) * 255


def _distance(a, b):
    difference = np.abs(np.asarray(a, np.float64) - b)
    return difference.mean(), difference.max()


# Measured on the sample photographs (0-255 levels): from the files, mean
# 0.51-0.96 and max 1.8-4.3 (bilinear), mean 0.60-1.07 and max 4.7-6.8
# (bicubic), most of it TensorFlow's JPEG decoder (its default, faster
# inverse DCT) against PIL's; from the same decoded pixels, mean 0.23-0.27
# and max 0.9-1.0 (bilinear, PIL's 8-bit rounding), mean 0.16-0.31 and max
# 4.8-6.4 (bicubic: PIL clips its overshoot between the two passes).
CONFIGURATIONS = [(80, 0.875, "bilinear"), (256, 0.94, "bicubic")]
FROM_FILES = {"bilinear": (1.0, 4.5), "bicubic": (1.1, 7.0)}
FROM_PIXELS = {"bilinear": (0.3, 1.01), "bicubic": (0.35, 6.5)}


@pytest.mark.parametrize("size, crop_fraction, resize", CONFIGURATIONS)
def test_tf_and_pil_crops_of_the_sample_photos_are_close(size, crop_fraction, resize):
    for path in sample_images():
        tf_crop = load_image(path, size, crop_fraction, resize)
        pil_crop = _pixels(timm_eval_transform(path, size, crop_fraction, resize))
        mean, largest = _distance(tf_crop, pil_crop)
        assert mean < FROM_FILES[resize][0], (path.name, mean)
        assert largest < FROM_FILES[resize][1], (path.name, largest)

        # The same decoded pixels: what is left is the resampling arithmetic.
        photo = Image.open(path).convert("RGB")
        tf_crop = center_crop(np.asarray(photo), size, crop_fraction, resize)
        pil_crop = _pixels(timm_eval_transform(photo, size, crop_fraction, resize))
        mean, largest = _distance(tf_crop, pil_crop)
        assert mean < FROM_PIXELS[resize][0], (path.name, mean)
        assert largest <= FROM_PIXELS[resize][1], (path.name, largest)


# --- Imports -----------------------------------------------------------------


def test_importing_it_loads_neither_train_export_nor_tensorflow():
    code = (
        "import sys, lambda_keras.preprocessing\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == "
        "'tensorflow' or name.startswith(('lambda_keras.train', "
        "'lambda_keras.export'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, KERAS_BACKEND="torch", TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]"
