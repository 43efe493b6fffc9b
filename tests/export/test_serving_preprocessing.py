"""`decode_images`: the serving input pipeline and its checks."""

import numpy as np
import pytest
import tensorflow as tf
from export_helpers import PREPROCESSING
from export_helpers import encode
from export_helpers import keras_inputs
from PIL import Image

from lambda_keras.export import ServingPreprocessing
from lambda_keras.export import decode_images
from lambda_keras.preprocessing import IMAGENET_MEAN
from lambda_keras.preprocessing import IMAGENET_STD


def decode(encoded, **options):
    """`decode_images` run as a graph, as in the serving signature."""
    function = tf.function(lambda data: decode_images(data, PREPROCESSING, **options))
    return function(tf.constant(encoded)).numpy()


def test_decode_equals_the_reference_crop_of_the_decoded_image(encoded_images):
    # Square JPEGs, a wide RGBA PNG and a tall greyscale JPEG.
    images = decode(encoded_images)
    assert images.shape == (len(encoded_images), 64, 64, 3)
    assert images.dtype == np.float32
    # float32 resampling against the float64 reference.
    np.testing.assert_allclose(images, keras_inputs(encoded_images), atol=2e-3)
    assert 0 <= images.min() and images.max() <= 255 and images.std() > 10
    # The greyscale image is replicated over the three channels.
    np.testing.assert_array_equal(images[-1, ..., 0], images[-1, ..., 2])


def test_crop_fraction_and_resize_are_applied(encoded_images):
    wide = encoded_images[3]
    bicubic = ServingPreprocessing(input_size=64, crop_fraction=0.5, resize="bicubic")
    tight = tf.function(decode_images)(tf.constant([wide]), bicubic).numpy()[0]
    # By hand: 224x160 -> shorter side floor(64 / 0.5) = 128 -> 179x128; the
    # left offset (179 - 64) / 2 = 57.5 rounds half to even, to 58.
    image = tf.io.decode_image(wide, channels=3, expand_animations=False)
    resized = tf.image.resize(image, (128, 179), method="bicubic", antialias=True)
    expected = np.clip(resized.numpy()[32:96, 58:122], 0, 255)
    np.testing.assert_allclose(tight, expected, atol=1e-4)
    loose = decode([wide])[0]
    assert np.abs(tight - loose).mean() > 5


def test_dynamic_batch_sizes(encoded_images):
    assert decode(encoded_images[:1]).shape == (1, 64, 64, 3)
    assert decode(encoded_images * 3).shape == (15, 64, 64, 3)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", r"image_bytes\[1\] is an empty string"),
        (b"%PDF-1.4 not an image", r"image_bytes\[1\] is not a JPEG or PNG image"),
        (b"GIF89a\x01\x00\x01\x00", r"image_bytes\[1\] is not a JPEG or PNG image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "Invalid JPEG data"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", r"image_bytes\[1\] is a PNG file without"),
    ],
)
def test_bad_elements_raise_invalid_argument_naming_them(encoded_images, data, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        decode([encoded_images[0], data])


def test_size_limit_is_read_from_the_header(encoded_images):
    # A 224x224 JPEG and a 224x160 PNG against a 40,000-pixel limit.
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"image_bytes\[0\] is too large: 224x224 pixels is over the limit "
        r"of 0.04 megapixels",
    ):
        decode(encoded_images[:1], max_pixels=40_000)
    with pytest.raises(tf.errors.InvalidArgumentError, match="224x160 pixels"):
        decode(encoded_images[3:4], max_pixels=35_000)
    assert decode(encoded_images[3:4], max_pixels=224 * 160).shape == (1, 64, 64, 3)


def test_huge_png_header_is_rejected_before_decoding():
    # A real 1x1 PNG whose IHDR then claims 100,000 x 100,000 pixels (30 GB
    # decoded): the check reads the header and never allocates the image.
    png = bytearray(encode(Image.new("RGB", (1, 1)), "PNG"))
    png[16:24] = (100_000).to_bytes(4, "big") * 2
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"100000x100000 pixels is over the limit of 100 megapixels",
    ):
        decode([bytes(png)])


def test_serving_preprocessing_from_manifest_and_validation():
    entry_preprocessing = {
        "resize": "bicubic",
        "crop_fraction": 0.94,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
    }
    preprocessing = ServingPreprocessing.from_manifest(entry_preprocessing, [256, 256])
    assert preprocessing == ServingPreprocessing(256, 0.94, "bicubic")
    assert preprocessing.to_manifest() == {
        "input_size": [256, 256],
        "preprocessing": entry_preprocessing,
    }
    with pytest.raises(ValueError, match=r"Received: input_size=\[256, 192\]"):
        ServingPreprocessing.from_manifest(entry_preprocessing, [256, 192])
    with pytest.raises(ValueError, match="Received: resize='lanczos'"):
        ServingPreprocessing(64, resize="lanczos")
    with pytest.raises(ValueError, match="Received: crop_fraction=1.5"):
        ServingPreprocessing(64, crop_fraction=1.5)
    with pytest.raises(ValueError, match="Received: input_size=0"):
        ServingPreprocessing(0)
