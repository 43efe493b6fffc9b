"""Evaluation preprocessing of images: the ImageNet statistics, the central
crop, and the sample photographs shipped with the package.

Two implementations of the same evaluation transform (the shorter side
resized to `resized_shorter_side(size, crop_fraction)`, then the central
`size` x `size` square):

- `center_crop`, TensorFlow ops: the crop of `lambda-keras evaluate`
  (tf.data), of the exported serving signatures, of `load_image` and so of
  the demo and the notebooks;
- `timm_eval_transform`, PIL: reproduces timm's `transforms_imagenet_eval`
  (the transform timm's ImageNet weights are evaluated with), normalisation
  included.

Both follow torchvision's geometry exactly (the shorter side to
`floor(size / crop_fraction)`, the longer side truncated to keep the aspect
ratio, crop offsets rounded half to even). They differ in the arithmetic: on
the sample photographs by about one 0-255 level on average, most of it the
JPEG decoders (`load_image` decodes with TensorFlow, whose default inverse
DCT is faster and less exact than PIL's), a quarter of a level the
resampling (float kernels against PIL's 8-bit passes); the bounds are in
tests/test_preprocessing.py.

TensorFlow is imported on first use: `import lambda_keras` reads the ImageNet
statistics from here and stays free of TensorFlow on the JAX and PyTorch
backends.
"""

import math
from pathlib import Path

import numpy as np
from PIL import Image

from lambda_keras.validation import positive_int

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""Per-channel (RGB) mean of ImageNet-1k, in 0-1 units."""

IMAGENET_STD = (0.229, 0.224, 0.225)
"""Per-channel (RGB) standard deviation of ImageNet-1k, in 0-1 units."""

RESIZE_METHODS = ("bilinear", "bicubic")
"""The resampling filters of the evaluation crop (a manifest's `resize`)."""

SAMPLE_DIR = Path(__file__).parent / "sample_images"
"""The folder of the sample photographs shipped with the package."""

_PIL_FILTERS = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}


def sample_images():
    """Paths of the sample photographs shipped with the package.

    Returns:
        A list of `pathlib.Path`, sorted by name: church.jpg,
        parachute.jpg, tench.jpg (three Imagenette classes).
    """
    return sorted(SAMPLE_DIR.glob("*.jpg"))


def resized_shorter_side(size, crop_fraction):
    """The shorter side an image is resized to before its central crop.

    `floor(size / crop_fraction)`: timm's rule (`transforms_imagenet_eval`),
    which `timm_eval_transform` needs to reproduce timm and `center_crop`
    follows too, so that both crops see the same pixels.

    Args:
        size: side of the square crop, a positive int.
        crop_fraction: the crop's share of the resized shorter side, in
            (0, 1].

    Returns:
        An int, at least `size`.

    Raises:
        ValueError: `size` is not a positive int or `crop_fraction` is not in
            (0, 1].
    """
    positive_int("size", size)
    if not 0 < crop_fraction <= 1:
        raise ValueError(
            "`crop_fraction` must be in (0, 1]. "
            f"Received: crop_fraction={crop_fraction!r}"
        )
    return math.floor(size / crop_fraction)


def _check_resize(resize):
    if resize not in RESIZE_METHODS:
        raise ValueError(
            f"`resize` must be one of {RESIZE_METHODS}. Received: resize={resize!r}"
        )


def resized_shape(shape, size, crop_fraction):
    """The (height, width) `center_crop` resizes an image of `shape` to.

    The shorter side becomes `resized_shorter_side(size, crop_fraction)` and
    the longer one keeps the aspect ratio (truncated). The serving
    signatures also compute it from an image's header, to bound the resize
    before anything is decoded.

    Args:
        shape: int64 tensor (2,), the image's positive height and width.
        size: side of the crop, a positive int.
        crop_fraction: the crop's share of the resized shorter side, in
            (0, 1].

    Returns:
        int64 tensor (2,).
    """
    import tensorflow as tf

    shorter = tf.constant(resized_shorter_side(size, crop_fraction), tf.int64)
    smallest = tf.reduce_min(shape)
    return tf.where(shape == smallest, shorter, shorter * shape // smallest)


def center_crop(image, size, crop_fraction, resize="bilinear"):
    """The evaluation crop in TensorFlow ops (tf.data, serving signatures).

    Resizes the shorter side to `resized_shorter_side(size, crop_fraction)`
    and the longer one to keep the aspect ratio (truncated), with an
    antialiased `tf.image.resize`, then crops the central `size` x `size`
    (offsets rounded half to even, as torchvision's `CenterCrop`).

    Args:
        image: uint8 or float tensor (height, width, 3), 0-255; the height
            and width may be dynamic.
        size: side of the output, a positive int.
        crop_fraction: the crop's share of the resized shorter side, in
            (0, 1].
        resize: "bilinear" (our checkpoints) or "bicubic" (timm's weights): a
            manifest entry's `preprocessing["resize"]`.

    Returns:
        float32 tensor (size, size, 3), clipped to 0-255.
    """
    import tensorflow as tf

    _check_resize(resize)
    resized = resized_shape(tf.shape(image, out_type=tf.int64)[:2], size, crop_fraction)
    image = tf.image.resize(
        image, tf.cast(resized, tf.int32), method=resize, antialias=True
    )
    offsets = tf.cast(tf.math.round((resized - size) / 2), tf.int64)
    image = image[offsets[0] : offsets[0] + size, offsets[1] : offsets[1] + size]
    image.set_shape([size, size, 3])
    return tf.clip_by_value(image, 0.0, 255.0)


def load_image(path, size, crop_fraction=1.0, resize="bilinear"):
    """Reads an image file and returns its `center_crop`.

    Args:
        path: a JPEG, PNG, BMP or GIF file (the first frame of a GIF).
        size: side of the output.
        crop_fraction: the crop's share of the resized shorter side; `1.0`
            keeps the largest central square. For a classifier, pass its
            manifest entry's `preprocessing["crop_fraction"]`.
        resize: "bilinear" or "bicubic" (the manifest's
            `preprocessing["resize"]`).

    Returns:
        float32 NumPy array (size, size, 3), RGB in 0-255 (feed it to
        `lambda_keras.applications.preprocess_input`, or to a model built
        with `include_preprocessing=True`).
    """
    import tensorflow as tf

    image = tf.io.decode_image(
        tf.io.read_file(str(path)), channels=3, expand_animations=False
    )
    return center_crop(image, size, crop_fraction, resize).numpy()


def timm_eval_transform(
    image,
    size,
    crop_fraction,
    resize="bicubic",
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
):
    """timm's evaluation transform of one image (PIL), for timm's weights.

    Reproduces timm's `transforms_imagenet_eval` in its default "center"
    mode: torchvision's `Resize` of the shorter side to
    `resized_shorter_side(size, crop_fraction)` with PIL's `resize` filter,
    `CenterCrop(size)`, `ToTensor` and `Normalize(mean, std)`, channels
    last.

    Args:
        image: a path or a PIL image.
        size: side of the output.
        crop_fraction: timm's `crop_pct`, in (0, 1].
        resize: "bicubic" (timm's LambdaResNets) or "bilinear".
        mean: per-channel mean on the 0-1 scale.
        std: per-channel standard deviation on the 0-1 scale.

    Returns:
        float32 NumPy array (size, size, 3), normalised.
    """
    _check_resize(resize)
    shorter = resized_shorter_side(size, crop_fraction)
    if not isinstance(image, Image.Image):
        image = Image.open(image)
    image = image.convert("RGB")
    width, height = image.size
    if width <= height:
        resized = (shorter, int(shorter * height / width))
    else:
        resized = (int(shorter * width / height), shorter)
    image = image.resize(resized, resample=_PIL_FILTERS[resize])
    left = int(round((resized[0] - size) / 2.0))
    top = int(round((resized[1] - size) / 2.0))
    image = image.crop((left, top, left + size, top + size))
    pixels = np.asarray(image, dtype="float32") / 255.0
    return (pixels - np.asarray(mean, "float32")) / np.asarray(std, "float32")
