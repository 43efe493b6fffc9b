"""`LambdaResNetImageConverter`: the registry's evaluation transform."""

import keras
import keras_hub
import numpy as np

from lambda_keras.hub import presets
from lambda_keras.hub.backbone import LambdaResNetBackbone
from lambda_keras.preprocessing import resized_shorter_side


@keras.saving.register_keras_serializable(package="lambda_keras")
class LambdaResNetImageConverter(keras_hub.layers.ImageConverter):
    """Resizes, centre-crops and normalises images for a LambdaResNet.

    keras-hub's `ImageConverter` with a central crop: the image's central
    region of the output's aspect ratio is resized (antialiased) to
    `ceil(image_size / crop_fraction)` and its central `image_size` kept,
    as the registry's `preprocessing` (and `lambda_keras.train.data.
    center_crop`) do. `scale` and `offset` then normalise it: for a mean
    and standard deviation on the 0-1 scale, `scale = 1 / (255 * std)` and
    `offset = -mean / std`. `from_preset` with a registry name sets all of
    these from its entry. Integer images are resized in float (Keras'
    `Resizing` alone would round them).

    Args:
        image_size: (height, width) of the output, or None for no resize
            and no crop.
        crop_fraction: the crop's share of the resized image, in (0, 1];
            1 resizes straight to `image_size`.
        antialias: whether the resize filters when it downsamples (as the
            registry's checkpoints were evaluated).
        **kwargs: other `keras_hub.layers.ImageConverter` arguments
            (`scale`, `offset`, `interpolation`, ...).

    Input shape:
        (batch, height, width, 3) or (height, width, 3), any size, 0-255;
        or a list of images of different sizes.

    Output shape:
        (batch, image_size[0], image_size[1], 3) (or unbatched), float.

    Example:

    ```python
    converter = LambdaResNetImageConverter.from_preset(
        "lambda_resnet26_compact.imagenette"
    )
    converter(np.zeros((2, 224, 300, 3))).shape  # (2, 80, 80, 3)
    ```
    """

    backbone_cls = LambdaResNetBackbone

    def __init__(self, image_size=None, crop_fraction=1.0, antialias=True, **kwargs):
        if isinstance(crop_fraction, bool) or not (
            isinstance(crop_fraction, (int, float)) and 0 < crop_fraction <= 1
        ):
            raise ValueError(
                "`crop_fraction` must be a number in (0, 1]. "
                f"Received: crop_fraction={crop_fraction!r}"
            )
        super().__init__(antialias=antialias, **kwargs)
        self.crop_fraction = crop_fraction
        self.image_size = image_size

    @property
    def image_size(self):
        """Settable (height, width) of the output, after the crop."""
        return self._crop_size

    @image_size.setter
    def image_size(self, value):
        self._crop_size = None if value is None else tuple(value)
        resized = None
        if value is not None:
            resized = tuple(
                resized_shorter_side(side, self.crop_fraction) for side in value
            )
        keras_hub.layers.ImageConverter.image_size.fset(self, resized)

    def call(self, inputs):
        cropping = self.image_size is not None and self.crop_fraction < 1
        if cropping and isinstance(inputs, dict):
            raise ValueError(
                "A `crop_fraction` below 1 does not move bounding boxes; "
                "use `crop_fraction=1` for images with boxes. "
                f"Received: crop_fraction={self.crop_fraction}"
            )
        is_array = isinstance(inputs, np.ndarray) or keras.ops.is_tensor(inputs)
        if is_array and "int" in keras.backend.standardize_dtype(inputs.dtype):
            # Keras' `Resizing` rounds integer images to integers; the
            # registry's transform resizes in float.
            inputs = keras.ops.cast(inputs, "float32")
        outputs = super().call(inputs)
        return self._central_crop(outputs) if cropping else outputs

    def _central_crop(self, images):
        """The central `image_size` of images resized by `self.resizing`."""
        if isinstance(images, (list, tuple)):
            return type(images)(self._central_crop(image) for image in images)
        height, width = self.image_size
        # Offsets rounded half to even, as `lambda_keras.preprocessing`.
        top = round((self.resizing.height - height) / 2)
        left = round((self.resizing.width - width) / 2)
        rows, columns = slice(top, top + height), slice(left, left + width)
        if self.data_format == "channels_first":
            return images[..., rows, columns]
        return images[..., rows, columns, :]

    def get_config(self):
        config = super().get_config()
        config["crop_fraction"] = self.crop_fraction
        return config

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """A converter from a registry name or a keras-hub preset.

        Args:
            preset: the name of registered weights (its entry's
                `input_size` and `preprocessing`), or a keras-hub preset
                (folder or handle).
            **kwargs: constructor arguments, overriding the preset's.

        Returns:
            A `LambdaResNetImageConverter`.
        """
        entry = presets.registry_entry(preset)
        if entry is None:
            return super().from_preset(preset, **kwargs)
        return cls(**{**presets.image_converter_arguments(entry), **kwargs})
