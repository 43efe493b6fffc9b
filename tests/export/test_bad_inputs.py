"""Bad requests to the reloaded SavedModel: a clear InvalidArgumentError
naming the problem, and the model keeps serving the next request."""

import io
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from export_helpers import CLASS_NAMES
from export_helpers import PREPROCESSING
from export_helpers import png_claiming
from export_helpers import small_model
from PIL import Image

from lambda_keras.export import export_saved_model

README = Path(__file__).parents[2] / "README.md"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The reloaded SavedModel of a small model."""
    base = tmp_path_factory.mktemp("bad_inputs")
    model = small_model()
    export_saved_model(
        model, base, 1, class_names=CLASS_NAMES, preprocessing=PREPROCESSING
    )
    return tf.saved_model.load(str(base / "1"))


@pytest.fixture(scope="module")
def good_request(served, encoded_images):
    """A good request and the answer to it before any bad request."""
    image_bytes = tf.constant(encoded_images[:3])
    expected = served.signatures["serving_default"](image_bytes=image_bytes)
    return image_bytes, expected["probabilities"].numpy()


def assert_still_serving(served, good_request):
    image_bytes, expected = good_request
    outputs = served.signatures["serving_default"](image_bytes=image_bytes)
    np.testing.assert_array_equal(outputs["probabilities"].numpy(), expected)
    images = tf.fill((2, 64, 64, 3), 100.0)
    assert served.signatures["predict_images"](images=images)["classes"].shape == (
        2,
        3,
    )


def bad_requests(encoded_images):
    jpeg, png = encoded_images[0], encoded_images[3]
    scrambled = jpeg[:1000] + bytes(b ^ 0x5A for b in jpeg[1000:3000]) + jpeg[3000:]
    gif = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).save(gif, format="GIF")
    return {
        "truncated JPEG": (
            jpeg[: len(jpeg) // 2],
            r"image_bytes\[1\] is a truncated or corrupt JPEG file",
        ),
        "corrupt JPEG": (
            scrambled,
            r"image_bytes\[1\] is a truncated or corrupt JPEG file",
        ),
        "JPEG cut in its header": (
            jpeg[:200],
            r"image_bytes\[1\] is a JPEG file whose header is truncated",
        ),
        "truncated PNG": (
            png[: len(png) // 3],
            r"image_bytes\[1\] is a truncated or corrupt PNG file",
        ),
        "empty string": (b"", r"image_bytes\[1\] is an empty string"),
        "huge image": (
            png_claiming(60_000, 50_000),
            r"image_bytes\[1\] is too large: 60000x50000 pixels is over the "
            r"limit of 100 megapixels",
        ),
        "non-image file": (
            README.read_bytes(),
            r"image_bytes\[1\] is not a JPEG or PNG image",
        ),
        "GIF": (gif.getvalue(), r"image_bytes\[1\] is not a JPEG or PNG image"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "truncated JPEG",
        "corrupt JPEG",
        "JPEG cut in its header",
        "truncated PNG",
        "empty string",
        "huge image",
        "non-image file",
        "GIF",
    ],
)
def test_bad_image_bytes(served, good_request, encoded_images, case):
    data, message = bad_requests(encoded_images)[case]
    # The bad file is the second of the batch: the error names it.
    batch = tf.constant([encoded_images[1], data, encoded_images[2]])
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        served.signatures["serving_default"](image_bytes=batch)
    assert_still_serving(served, good_request)


def test_a_corrupt_image_fails_in_the_decoder_not_silently(encoded_images):
    # The scrambled JPEG keeps a valid header: only the decoder sees it.
    scrambled = bad_requests(encoded_images)["corrupt JPEG"][0]
    assert tf.io.extract_jpeg_shape(scrambled).numpy().tolist() == [224, 224, 3]


@pytest.mark.parametrize(
    "image_bytes, message",
    [
        (tf.constant(b"x"), r"Shape of tensor image_bytes \[\] is not compatible"),
        (tf.constant([[b"x"]]), r"image_bytes \[1,1\] is not compatible"),
        (tf.constant([1.0]), "expected to be a string tensor but is a float tensor"),
    ],
)
def test_image_bytes_of_another_rank_or_dtype(
    served, good_request, image_bytes, message
):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        served.signatures["serving_default"](image_bytes=image_bytes)
    assert_still_serving(served, good_request)


@pytest.mark.parametrize(
    "images, message",
    [
        (tf.zeros((1, 64, 64, 3), tf.float64), "float tensor but is a double tensor"),
        (tf.zeros((1, 64, 64, 3), tf.uint8), "float tensor but is a uint8 tensor"),
        (tf.zeros((1, 64, 64, 3), tf.int32), "float tensor but is a int32 tensor"),
        (tf.zeros((64, 64, 3)), r"images \[64,64,3\] is not compatible"),
        (tf.zeros((1, 1, 64, 64, 3)), r"images \[1,1,64,64,3\] is not compatible"),
        (tf.zeros((1, 64, 64, 4)), r"images \[1,64,64,4\] is not compatible"),
    ],
)
@pytest.mark.parametrize("signature", ["predict_images", "features"])
def test_images_of_another_dtype_or_rank(
    served, good_request, signature, images, message
):
    # Tensors go through the graph's own checks, as TF Serving's requests do.
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        served.signatures[signature](images=images)
    if images.dtype == tf.float32:
        # NumPy arrays of another shape fail in the signature's binding
        # already (NumPy arrays of another dtype are cast to float32).
        with pytest.raises(TypeError, match="Can not cast"):
            served.signatures[signature](images=images.numpy())
    assert_still_serving(served, good_request)
