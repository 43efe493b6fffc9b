"""The serving input pipeline: encoded images to model inputs, in TF ops.

`ServingPreprocessing` holds the values of a manifest entry's
`preprocessing` (input size, crop fraction, resize method, mean and std);
`decode_images` turns a batch of encoded JPEG or PNG strings into the
model's input, with the evaluation transform our checkpoints were measured
with (`lambda_keras.preprocessing.center_crop`: the shorter side resized to
`floor(size / crop_fraction)` with antialiasing, then the central square),
and checks every image first so that a bad one fails with an
`InvalidArgumentError` that names it (`image_bytes[2] ...`):

- an empty string;
- bytes that start with neither the JPEG nor the PNG signature (text, PDF,
  GIF, ...);
- an image whose header claims more than `max_pixels` pixels, or whose
  resize (the shorter side scaled up or down to `floor(size /
  crop_fraction)`, the longer one in proportion) would hold more than
  `max_resized_pixels` pixels in either of its two passes (the new shorter
  side by the old longer one, then the resized image): a 1 x 200,000 strip
  is 200,000 pixels but resizes to 73 x 14,600,000 for a 64-pixel model.
  Both are checked from the header, before anything is decoded or
  allocated;
- a truncated or corrupt file (TensorFlow's decoder: "Invalid JPEG data",
  "Invalid PNG data").

The images are decoded one at a time, so the transient memory of a request
is that of its largest image: at most `max_pixels` x 3 bytes decoded (uint8
RGB) and `max_resized_pixels` x 12 bytes for each pass of the resize
(float32 RGB), 900 MB with the defaults.

Everything here is TensorFlow ops, so it is traced into the SavedModel's
`serving_default` signature and needs no lambda_keras at serving time.
"""

import dataclasses

import tensorflow as tf

from lambda_keras.preprocessing import IMAGENET_MEAN
from lambda_keras.preprocessing import IMAGENET_STD
from lambda_keras.preprocessing import RESIZE_METHODS
from lambda_keras.preprocessing import center_crop
from lambda_keras.preprocessing import resized_shape
from lambda_keras.preprocessing import resized_shorter_side

DEFAULT_CROP_FRACTION = 0.875
DEFAULT_MAX_PIXELS = 100_000_000  # 100 megapixels: 300 MB decoded (uint8 RGB)
# 25 megapixels: 300 MB (float32 RGB) for each of the resize's two passes.
DEFAULT_MAX_RESIZED_PIXELS = 25_000_000
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


def decode_images(
    image_bytes,
    preprocessing,
    max_pixels=DEFAULT_MAX_PIXELS,
    max_resized_pixels=DEFAULT_MAX_RESIZED_PIXELS,
):
    """Decodes, checks, resizes and centre-crops a batch of encoded images.

    Args:
        image_bytes: string tensor (batch,) of encoded JPEG or PNG files;
            the batch may be empty.
        preprocessing: a `ServingPreprocessing`.
        max_pixels: the largest image (height x width, read from its
            header) accepted; larger ones fail before decoding.
        max_resized_pixels: the most pixels either pass of the resize may
            make (the shorter side scaled to `floor(size / crop_fraction)`
            by the longer side, then the resized image; computed from the
            header); a more elongated image fails before decoding.

    Returns:
        float32 (batch, input_size, input_size, 3) RGB in 0-255.

    Raises:
        tf.errors.InvalidArgumentError: (when run) an element is empty, not
            a JPEG or PNG, over either limit, truncated or corrupt; the
            message names the first such element, e.g. "image_bytes[2] is
            an empty string".
    """
    image_bytes = tf.convert_to_tensor(image_bytes, tf.string)
    size = preprocessing.input_size
    count = tf.shape(image_bytes, out_type=tf.int64)[0]
    limits = (preprocessing, max_pixels, max_resized_pixels)

    def decode(index, data):
        return index, _decode_one(data, index, *limits)

    # One image at a time, so that a request holds the decoding memory of one
    # image. An image that fails (in a check or in TensorFlow's decoder, whose
    # message cannot name it) is dropped here and reported below; the extra
    # last element, numbered `count`, keeps the batch from being empty.
    last = tf.data.Dataset.from_tensors((count, tf.zeros((size, size, 3))))
    indices, images = (
        tf.data.Dataset.from_tensor_slices((tf.range(count), image_bytes))
        .map(decode)
        .ignore_errors()
        .concatenate(last)
        .batch(count + 1)
        .get_single_element()
    )
    # `indices` is 0, 1, ..., count unless an image was dropped: the first
    # position where it differs is the first image that failed.
    dropped = tf.not_equal(indices, tf.range(tf.size(indices, out_type=tf.int64)))
    first = tf.argmax(tf.cast(dropped, tf.int32), output_type=tf.int64)
    reported = tf.cond(
        tf.reduce_any(dropped),
        lambda: _report_failure(image_bytes[first], first, *limits),
        lambda: tf.constant(True),
    )
    with tf.control_dependencies([reported]):
        return tf.identity(images[:-1])


def assert_with_message(condition, *message):
    """An Assert whose message is the concatenation of strings and tensors.

    Numeric tensors are written with `tf.strings.as_string`; string tensors
    and Python strings as they are.
    """
    parts = [
        part
        if isinstance(part, str) or part.dtype == tf.string
        else tf.strings.as_string(part)
        for part in message
    ]
    return tf.debugging.Assert(condition, [tf.strings.join(parts)], summarize=1)


def _decode_one(data, index, preprocessing, max_pixels, max_resized_pixels):
    checked = _check_header(data, index, preprocessing, max_pixels, max_resized_pixels)
    with tf.control_dependencies([checked]):
        image = tf.io.decode_image(
            data, channels=3, dtype=tf.uint8, expand_animations=False
        )
    return center_crop(
        image,
        preprocessing.input_size,
        preprocessing.crop_fraction,
        resize=preprocessing.resize,
    )


def _report_failure(data, index, preprocessing, max_pixels, max_resized_pixels):
    """Raises the error of an image that failed to decode, naming it.

    The header checks run again, this time also reporting a JPEG header that
    TensorFlow cannot read; an image that passes them all failed in the
    decoder.
    """
    checked = _check_header(
        data,
        index,
        preprocessing,
        max_pixels,
        max_resized_pixels,
        report_unreadable_jpeg=True,
    )
    with tf.control_dependencies([checked]):
        kind = tf.where(_is_jpeg(data), "JPEG", "PNG")
        failed = assert_with_message(
            False,
            _where(index),
            " is a truncated or corrupt ",
            kind,
            " file: the TensorFlow decoder rejects its data (Invalid ",
            kind,
            " data)",
        )
    with tf.control_dependencies([failed]):
        return tf.constant(False)


def _where(index):
    return tf.strings.join(["image_bytes[", tf.strings.as_string(index), "]"])


def _is_jpeg(data):
    return tf.strings.substr(data, 0, 3) == JPEG_SIGNATURE


def _check_header(
    data,
    index,
    preprocessing,
    max_pixels,
    max_resized_pixels,
    report_unreadable_jpeg=False,
):
    """The checks of an encoded image that read only its header.

    Args:
        data: string scalar, the encoded image.
        index: its position in the batch, for the messages.
        preprocessing: a `ServingPreprocessing` (the resize's size).
        max_pixels: largest height x width.
        max_resized_pixels: largest height x width after the resize.
        report_unreadable_jpeg: also check that TensorFlow can read a JPEG's
            header, with a message naming the image (otherwise its reader's
            own error, which does not name it, is raised).

    Returns:
        The last check's op: a control dependency for what may only run on
        an image that passed them all.
    """
    where = _where(index)
    length = tf.strings.length(data)
    not_empty = assert_with_message(
        length > 0,
        where,
        " is an empty string; expected the bytes of a JPEG or PNG image",
    )
    with tf.control_dependencies([not_empty]):
        is_jpeg = _is_jpeg(data)
        is_png = tf.strings.substr(data, 0, 8) == PNG_SIGNATURE
        known = assert_with_message(
            tf.logical_or(is_jpeg, is_png),
            where,
            " is not a JPEG or PNG image (",
            length,
            " bytes that start with neither signature)",
        )
    if report_unreadable_jpeg:
        with tf.control_dependencies([known]):
            known = assert_with_message(
                tf.cond(
                    is_jpeg,
                    lambda: _jpeg_header_readable(data),
                    lambda: tf.constant(True),
                ),
                where,
                " is a JPEG file whose header is truncated or corrupt "
                "(Invalid JPEG data)",
            )
    with tf.control_dependencies([known]):
        height, width = tf.cond(
            is_jpeg, lambda: _jpeg_size(data), lambda: _png_size(data, where)
        )
        positive = assert_with_message(
            tf.logical_and(height > 0, width > 0),
            where,
            " is corrupt: its header claims ",
            width,
            "x",
            height,
            " pixels",
        )
    # The products in float64: a PNG header's sides (up to 2**32 - 1 each)
    # overflow an int64 product.
    with tf.control_dependencies([positive]):
        pixels = tf.cast(height, tf.float64) * tf.cast(width, tf.float64)
        small_enough = assert_with_message(
            pixels <= max_pixels,
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
    size, crop_fraction = preprocessing.input_size, preprocessing.crop_fraction
    shorter = resized_shorter_side(size, crop_fraction)
    with tf.control_dependencies([small_enough]):
        resized = resized_shape(tf.stack([height, width]), size, crop_fraction)
        # The resize runs one axis at a time: its first pass makes the new
        # shorter side by the old longer one, its second the resized image;
        # both are float32.
        passes = tf.stack(
            [
                shorter * tf.cast(tf.maximum(height, width), tf.float64),
                tf.reduce_prod(tf.cast(resized, tf.float64)),
            ]
        )
        work = tf.reduce_max(passes)
        return assert_with_message(
            work <= max_resized_pixels,
            where,
            " is too elongated to resize: ",
            width,
            "x",
            height,
            " pixels resize to ",
            resized[1],
            "x",
            resized[0],
            " (the shorter side scaled to ",
            str(shorter),
            "), ",
            tf.strings.as_string(work / 1e6, precision=1),
            " megapixels in the larger of the two passes of the resize, over "
            "the limit of ",
            f"{max_resized_pixels / 1e6:g}",
            " megapixels; crop it nearer to a square before sending",
        )


def _jpeg_header_readable(data):
    """Whether `tf.io.extract_jpeg_shape` reads `data` without an error."""
    return (
        tf.data.Dataset.from_tensors(data)
        .map(_jpeg_size)
        .ignore_errors()
        .reduce(tf.constant(False), lambda readable, size: tf.constant(True))
    )


def _jpeg_size(data):
    """(height, width) int64 from a JPEG's frame header, without decoding."""
    shape = tf.io.extract_jpeg_shape(data, output_type=tf.int64)
    return shape[0], shape[1]


def _png_size(data, where):
    """(height, width) int64 from a PNG's IHDR chunk, without decoding."""
    # Padding keeps substr in range for a file shorter than the header.
    header = tf.strings.substr(tf.strings.join([data, b"\0" * 24]), 0, 24)
    has_ihdr = assert_with_message(
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
