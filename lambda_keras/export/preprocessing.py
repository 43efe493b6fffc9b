"""The serving input pipeline: encoded images to model inputs, in TF ops.

`ServingPreprocessing` holds the values of a manifest entry's
`preprocessing` (input size, crop fraction, resize method, mean and std);
`decode_images` turns a batch of encoded JPEG or PNG strings into the
model's input, with the evaluation transform our checkpoints were measured
with (`lambda_keras.preprocessing.center_crop`: the shorter side resized to
`floor(size / crop_fraction)` with antialiasing, then the central square),
and checks every image first so that a bad one fails with an
`InvalidArgumentError` that names it:

- an empty string;
- bytes that start with neither the JPEG nor the PNG signature (text, PDF,
  GIF, ...);
- an image whose header claims more than `max_pixels` pixels (checked from
  the header, before anything is decoded or allocated);
- a truncated or corrupt file (TensorFlow's decoder: "Invalid JPEG data",
  "Invalid PNG data").

Everything here is TensorFlow ops, so it is traced into the SavedModel's
`serving_default` signature and needs no lambda_keras at serving time.
"""

import dataclasses

import tensorflow as tf

from lambda_keras.preprocessing import IMAGENET_MEAN
from lambda_keras.preprocessing import IMAGENET_STD
from lambda_keras.preprocessing import RESIZE_METHODS
from lambda_keras.preprocessing import center_crop

DEFAULT_CROP_FRACTION = 0.875
DEFAULT_MAX_PIXELS = 100_000_000  # 100 megapixels
JPEG_SIGNATURE = b"\xff\xd8\xff"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclasses.dataclass(frozen=True)
class ServingPreprocessing:
    """How an encoded image becomes the model's input.

    Attributes:
        input_size: side of the square model input (the manifest's
            `input_size`).
        crop_fraction: the central crop's share of the resized shorter
            side.
        resize: "bilinear" or "bicubic" (antialiased `tf.image.resize`).
        mean: per-channel RGB mean on the 0-1 scale; applied by the
            signatures only to a model without its own normalisation.
        std: per-channel RGB standard deviation on the 0-1 scale (as
            `mean`).
    """

    input_size: int
    crop_fraction: float = DEFAULT_CROP_FRACTION
    resize: str = "bilinear"
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD

    def __post_init__(self):
        size = self.input_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(
                "`input_size` must be a positive integer. "
                f"Received: input_size={size!r}"
            )
        if not 0 < self.crop_fraction <= 1:
            raise ValueError(
                "`crop_fraction` must be in (0, 1]. "
                f"Received: crop_fraction={self.crop_fraction!r}"
            )
        if self.resize not in RESIZE_METHODS:
            raise ValueError(
                f"`resize` must be one of {RESIZE_METHODS}. "
                f"Received: resize={self.resize!r}"
            )
        for name in ("mean", "std"):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 3:
                raise ValueError(
                    f"`{name}` must have 3 values (RGB). Received: {name}={value!r}"
                )
            object.__setattr__(self, name, value)
        if min(self.std) <= 0:
            raise ValueError(f"`std` must be positive. Received: std={self.std!r}")

    @classmethod
    def from_manifest(cls, preprocessing, input_size):
        """From a manifest entry's `preprocessing` and `input_size`.

        Args:
            preprocessing: dict with `crop_fraction` and optionally
                `resize`, `mean`, `std` (see checkpoints/README.md).
            input_size: an int or `[height, width]` with height == width.

        Returns:
            A `ServingPreprocessing`.
        """
        if not isinstance(input_size, int):
            input_size = list(input_size)
            if len(input_size) != 2 or input_size[0] != input_size[1]:
                raise ValueError(
                    "The serving signatures take square inputs: `input_size` "
                    f"must be an int or [size, size]. Received: input_size={input_size}"
                )
            input_size = int(input_size[0])
        return cls(
            input_size=input_size,
            crop_fraction=float(
                preprocessing.get("crop_fraction", DEFAULT_CROP_FRACTION)
            ),
            resize=preprocessing.get("resize", "bilinear"),
            mean=tuple(preprocessing.get("mean", IMAGENET_MEAN)),
            std=tuple(preprocessing.get("std", IMAGENET_STD)),
        )

    def to_manifest(self):
        """The manifest form: `{"input_size": [s, s], "preprocessing": {...}}`."""
        return {
            "input_size": [self.input_size, self.input_size],
            "preprocessing": {
                "resize": self.resize,
                "crop_fraction": self.crop_fraction,
                "mean": list(self.mean),
                "std": list(self.std),
            },
        }


def normalize(images, preprocessing):
    """`(images / 255 - mean) / std` (float32, channels last)."""
    mean = tf.constant(preprocessing.mean, tf.float32)
    std = tf.constant(preprocessing.std, tf.float32)
    return (images / 255.0 - mean) / std


def decode_images(image_bytes, preprocessing, max_pixels=DEFAULT_MAX_PIXELS):
    """Decodes, checks, resizes and centre-crops a batch of encoded images.

    Args:
        image_bytes: string tensor (batch,) of encoded JPEG or PNG files.
        preprocessing: a `ServingPreprocessing`.
        max_pixels: the largest image (height x width, read from its
            header) accepted; larger ones fail before decoding.

    Returns:
        float32 (batch, input_size, input_size, 3) RGB in 0-255.

    Raises:
        tf.errors.InvalidArgumentError: (when run) an element is empty, not
            a JPEG or PNG, over `max_pixels`, truncated or corrupt; the
            message names the element, e.g. "image_bytes[2] is an empty
            string".
    """
    image_bytes = tf.convert_to_tensor(image_bytes, tf.string)
    size = preprocessing.input_size
    indices = tf.range(tf.shape(image_bytes, out_type=tf.int64)[0])
    return tf.map_fn(
        lambda args: _decode_one(args[0], args[1], preprocessing, max_pixels),
        (image_bytes, indices),
        fn_output_signature=tf.TensorSpec((size, size, 3), tf.float32),
    )


def _assert(condition, *message):
    """An Assert whose message is the concatenation of strings and tensors."""
    parts = [
        part if isinstance(part, str) else tf.strings.as_string(part)
        for part in message
    ]
    return tf.debugging.Assert(condition, [tf.strings.join(parts)], summarize=1)


def _decode_one(data, index, preprocessing, max_pixels):
    where = tf.strings.join(["image_bytes[", tf.strings.as_string(index), "]"])
    length = tf.strings.length(data)
    not_empty = _assert(
        length > 0,
        where,
        " is an empty string; expected the bytes of a JPEG or PNG image",
    )
    with tf.control_dependencies([not_empty]):
        is_jpeg = tf.strings.substr(data, 0, 3) == JPEG_SIGNATURE
        is_png = tf.strings.substr(data, 0, 8) == PNG_SIGNATURE
        known = _assert(
            tf.logical_or(is_jpeg, is_png),
            where,
            " is not a JPEG or PNG image (",
            length,
            " bytes that start with neither signature)",
        )
    with tf.control_dependencies([known]):
        height, width = tf.cond(
            is_jpeg, lambda: _jpeg_size(data), lambda: _png_size(data, where)
        )
        small_enough = _assert(
            height * width <= max_pixels,
            where,
            " is too large: ",
            width,
            "x",
            height,
            " pixels is over the limit of ",
            f"{max_pixels / 1e6:g}",
            " megapixels (",
            str(max_pixels),
            " pixels); downscale it before sending",
        )
    with tf.control_dependencies([small_enough]):
        image = tf.io.decode_image(
            data, channels=3, dtype=tf.uint8, expand_animations=False
        )
    return center_crop(
        image,
        preprocessing.input_size,
        preprocessing.crop_fraction,
        resize=preprocessing.resize,
    )


def _jpeg_size(data):
    """(height, width) int64 from a JPEG's frame header, without decoding."""
    shape = tf.io.extract_jpeg_shape(data, output_type=tf.int64)
    return shape[0], shape[1]


def _png_size(data, where):
    """(height, width) int64 from a PNG's IHDR chunk, without decoding."""
    # Padding keeps substr in range for a file shorter than the header.
    header = tf.strings.substr(tf.strings.join([data, b"\0" * 24]), 0, 24)
    has_ihdr = _assert(
        tf.strings.substr(header, 12, 4) == b"IHDR",
        where,
        " is a PNG file without its IHDR header (truncated or corrupt)",
    )
    with tf.control_dependencies([has_ihdr]):
        digits = tf.io.decode_raw(tf.strings.substr(header, 16, 8), tf.uint8)
    digits = tf.cast(digits, tf.int64)
    big_endian = tf.constant([1 << 24, 1 << 16, 1 << 8, 1], tf.int64)
    width = tf.reduce_sum(digits[:4] * big_endian)
    height = tf.reduce_sum(digits[4:] * big_endian)
    return height, width
