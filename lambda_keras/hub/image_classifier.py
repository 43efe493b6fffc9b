"""`LambdaResNetImageClassifier`: keras-hub's image classifier on a
LambdaResNet."""

import keras
import keras_hub

from lambda_keras.hub import presets
from lambda_keras.hub.backbone import LambdaResNetBackbone
from lambda_keras.hub.image_classifier_preprocessor import (
    LambdaResNetImageClassifierPreprocessor,
)


@keras.saving.register_keras_serializable(package="lambda_keras")
class LambdaResNetImageClassifier(keras_hub.models.ImageClassifier):
    """keras-hub's `ImageClassifier` with a `LambdaResNetBackbone`.

    Global pooling, dropout and a dense classifier on the backbone's c5
    features; with a registry preset it is the applications model: the
    same layers, weights, softmax and dropout, after the entry's
    preprocessing.

    Args:
        backbone: a `LambdaResNetBackbone`.
        num_classes: number of classes.
        preprocessor: a `LambdaResNetImageClassifierPreprocessor`, or None
            for inputs already preprocessed.
        **kwargs: `keras_hub.models.ImageClassifier` arguments (`pooling`,
            `activation`, `dropout`, `head_dtype`, ...).

    Input shape:
        (batch, height, width, 3): images in 0-255 with a preprocessor,
        else the backbone's inputs.

    Output shape:
        (batch, num_classes): probabilities with `activation="softmax"`,
        else logits.

    Example:

    ```python
    classifier = LambdaResNetImageClassifier.from_preset(
        "lambda_resnet26_compact.imagenette"
    )
    classifier.predict(np.zeros((1, 224, 224, 3))).shape  # (1, 10)
    ```
    """

    backbone_cls = LambdaResNetBackbone
    preprocessor_cls = LambdaResNetImageClassifierPreprocessor

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """A classifier from a registry name or a keras-hub preset.

        As keras-hub's: given `num_classes`, the classifier is new (only the
        backbone's weights are loaded).

        Args:
            preset: the name of registered weights (e.g.
                "lambda_resnet26_compact.imagenette"), or a keras-hub preset
                (folder or handle).
            load_weights: whether to load the weights; False keeps the
                random initialisation.
            **kwargs: constructor arguments (`num_classes`, `activation`,
                `backbone`, `preprocessor`, ...), and the backbone's
                `image_shape` and `dtype`.

        Returns:
            A `LambdaResNetImageClassifier`.
        """
        entry = presets.registry_entry(preset)
        if entry is None:
            return super().from_preset(preset, load_weights=load_weights, **kwargs)
        new_classifier = "num_classes" in kwargs
        if "backbone" not in kwargs:
            backbone_kwargs = {
                key: kwargs.pop(key)
                for key in ("image_shape", "dtype")
                if key in kwargs
            }
            kwargs["backbone"] = cls.backbone_cls.from_preset(
                preset, load_weights=False, **backbone_kwargs
            )
        if "preprocessor" not in kwargs:
            kwargs["preprocessor"] = cls.preprocessor_cls.from_preset(preset)
        classifier = cls(**{**presets.image_classifier_arguments(entry), **kwargs})
        if load_weights:
            head = None if new_classifier else classifier.output_dense
            presets.load_registry_weights(entry, classifier.backbone, head)
        return classifier
