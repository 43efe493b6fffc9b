"""Naive numpy reference of the evaluation crop, written from its definition.

torchvision's geometry (what timm's `transforms_imagenet_eval` does): the
shorter side resized to `floor(size / crop_fraction)`, the longer one to
`int(shorter * long / short)`, then the central `size` x `size` with offsets
`round((resized - size) / 2)` (Python's round: half to even). The resize is
an antialiased separable filter, in float64: each output pixel's centre maps
back to the input, and when downscaling the kernel is stretched by the
scale (a low-pass filter), with the weights normalised to sum to 1.
Independent of lambda_keras' code.
"""

import math

import numpy as np


def _kernel(resize, x):
    x = np.abs(x)
    if resize == "bilinear":
        return np.maximum(0.0, 1.0 - x)
    # Keys' cubic convolution kernel with a = -0.5.
    near = (1.5 * x - 2.5) * x * x + 1.0
    far = ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def resize_weights(in_size, out_size, resize):
    """(out_size, in_size) weights of an antialiased 1-D resize."""
    scale = in_size / out_size
    stretch = max(scale, 1.0)
    centres = (np.arange(out_size) + 0.5) * scale
    pixels = np.arange(in_size) + 0.5
    weights = _kernel(resize, (pixels[None, :] - centres[:, None]) / stretch)
    return weights / weights.sum(axis=1, keepdims=True)


def center_crop(image, size, crop_fraction, resize="bilinear"):
    """The evaluation crop of one image.

    Args:
        image: (height, width, 3) array in 0-255.
        size: side of the crop.
        crop_fraction: the crop's share of the resized shorter side.
        resize: "bilinear" or "bicubic".

    Returns:
        float32 (size, size, 3), clipped to 0-255.
    """
    height, width = image.shape[:2]
    shorter = math.floor(size / crop_fraction)
    if width <= height:
        new_width, new_height = shorter, int(shorter * height / width)
    else:
        new_width, new_height = int(shorter * width / height), shorter
    rows = resize_weights(height, new_height, resize)
    columns = resize_weights(width, new_width, resize)
    resized = np.einsum("yh,hwc,xw->yxc", rows, image.astype(np.float64), columns)
    top = round((new_height - size) / 2)
    left = round((new_width - size) / 2)
    crop = resized[top : top + size, left : left + size]
    return np.clip(crop, 0.0, 255.0).astype(np.float32)
