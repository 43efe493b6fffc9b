"""The weights registry as keras-hub presets.

Every name of `checkpoints/manifest.json` (`lambda_keras.weights`) is a
preset of the `lambda_keras.hub` classes: `registry_entry` tells a
registry name from a keras-hub preset (a folder, a "kaggle://" or "hf://"
handle), and the functions below turn its entry into the arguments and
weights of the keras-hub objects.
"""

from lambda_keras.applications.lambda_resnet import ARCHITECTURES
from lambda_keras.applications.variants import MODELS
from lambda_keras.applications.variants import VARIANTS_BY_NAME
from lambda_keras.weights import load_manifest
from lambda_keras.weights import resolve_weights


def registry_entry(preset):
    """The registry entry named `preset`, or None for a keras-hub preset.

    Args:
        preset: a registry name (e.g. "lambda_resnet26t.c1_in1k"), a preset
            folder or a handle with a scheme ("kaggle://...", "hf://...").

    Returns:
        The manifest entry (a dict), or None for a folder or a handle.

    Raises:
        ValueError: `preset` is neither; the message lists the registry's
            names.
    """
    if not isinstance(preset, str):
        return None
    try:
        # The one "file (or remote handle) or registered name?" decision.
        resolved = resolve_weights(preset, architecture=None, include_top=False)
    except ValueError as error:
        names = sorted(entry["name"] for entry in load_manifest())
        raise ValueError(
            "`preset` must be the name of registered weights (one of "
            f"{names}), a keras-hub preset folder or a handle such "
            f"as 'kaggle://...' or 'hf://...'. Received: preset={preset!r}"
        ) from error
    return resolved if isinstance(resolved, dict) else None


def image_converter_arguments(entry):
    """`LambdaResNetImageConverter` arguments of a registry entry.

    The entry's evaluation transform: resize (its interpolation, with
    antialiasing) and central crop to `input_size`, then `(x / 255 - mean)
    / std` as the converter's `scale` and `offset`.
    """
    preprocessing = entry["preprocessing"]
    mean, std = preprocessing["mean"], preprocessing["std"]
    return dict(
        image_size=tuple(entry["input_size"]),
        crop_fraction=preprocessing["crop_fraction"],
        interpolation=preprocessing["resize"],
        scale=[1.0 / (255.0 * s) for s in std],
        offset=[-m / s for m, s in zip(mean, std)],
    )


def image_classifier_arguments(entry):
    """`ImageClassifier` arguments of a registry entry's classifier.

    Its classes, the softmax the applications model ends with, and the
    dropout its architecture trains with.
    """
    variant = VARIANTS_BY_NAME[entry["architecture"]]
    dropout = variant.options.get(
        "dropout_rate", ARCHITECTURES[variant.architecture]["dropout_rate"]
    )
    return dict(num_classes=entry["classes"], activation="softmax", dropout=dropout)


def load_registry_weights(entry, backbone, head=None):
    """Loads a registry entry's weights into a backbone (and classifier).

    Builds the entry's `lambda_keras.applications` model with
    `weights=entry["name"]` (the download, hash check and conversion of
    `lambda_keras.weights`) and copies its weights layer by layer, by name.

    Args:
        entry: a manifest entry.
        backbone: a `LambdaResNetBackbone` of the entry's architecture.
        head: optionally, the classifier's `Dense` layer; it gets the
            applications model's "predictions".

    Raises:
        ValueError: a layer of `backbone` has no counterpart of the same
            shapes (a backbone built with other options).
    """
    size = entry["input_size"]
    source = MODELS[entry["architecture"]](
        weights=entry["name"], input_shape=(size[0], size[1], 3)
    )
    for layer in backbone.layers:
        if layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())
    if head is not None:
        head.set_weights(source.get_layer("predictions").get_weights())
