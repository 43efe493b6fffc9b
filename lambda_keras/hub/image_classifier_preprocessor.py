"""`LambdaResNetImageClassifierPreprocessor`: images to classifier inputs."""

import keras
import keras_hub

from lambda_keras.hub import presets
from lambda_keras.hub.backbone import LambdaResNetBackbone
from lambda_keras.hub.image_converter import LambdaResNetImageConverter


@keras.saving.register_keras_serializable(package="lambda_keras")
class LambdaResNetImageClassifierPreprocessor(
    keras_hub.models.ImageClassifierPreprocessor
):
    """keras-hub's image classifier preprocessor for LambdaResNets.

    Runs its `image_converter` (a `LambdaResNetImageConverter`) on the
    images and passes labels and sample weights through.

    Args:
        image_converter: a `LambdaResNetImageConverter`, or None.
        **kwargs: `keras_hub.models.ImageClassifierPreprocessor` arguments.

    Input shape:
        `x`: images (batch, height, width, 3) in 0-255; `y` and
        `sample_weight` optional.

    Output shape:
        `x` as the converter makes it, or `(x, y)` / `(x, y,
        sample_weight)`.
    """

    backbone_cls = LambdaResNetBackbone
    image_converter_cls = LambdaResNetImageConverter

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """A preprocessor from a registry name or a keras-hub preset.

        Args:
            preset: the name of registered weights, or a keras-hub preset
                (folder or handle).
            **kwargs: constructor arguments (`image_converter`, ...).

        Returns:
            A `LambdaResNetImageClassifierPreprocessor`.
        """
        entry = presets.registry_entry(preset)
        if entry is None:
            return super().from_preset(preset, **kwargs)
        if "image_converter" not in kwargs:
            kwargs["image_converter"] = cls.image_converter_cls.from_preset(preset)
        return cls(**kwargs)
