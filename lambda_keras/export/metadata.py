"""Class names and preprocessing of an exported model, from its weights.

For registered weights (a name or alias in `checkpoints/manifest.json`) both
come from the manifest entry: `class_names` (our checkpoints list ImageNet
WordNet ids, shown as their labels, e.g. "n01440764" -> "tench"), or the
1000 ImageNet labels for a 1000-class entry without them; `input_size` and
`preprocessing` (crop fraction, resize method, mean, std). For a weights file
or random weights, names default to "class_0", "class_1", ... and the
preprocessing to a centre crop of 0.875 with bilinear resizing, unless given.
"""

import dataclasses
import re

from lambda_keras.applications.imagenet import NUM_CLASSES
from lambda_keras.applications.imagenet import class_names as imagenet_class_names
from lambda_keras.applications.imagenet import imagenet_label
from lambda_keras.export.preprocessing import DEFAULT_CROP_FRACTION
from lambda_keras.export.preprocessing import ServingPreprocessing
from lambda_keras.weights import resolve_weights

_WNID = re.compile(r"n\d{8}")


@dataclasses.dataclass(frozen=True)
class ServingMetadata:
    """What the signatures need besides the model.

    Attributes:
        class_names: one name per class, in class order.
        preprocessing: a `ServingPreprocessing`.
        entry: the manifest entry of registered weights, else None.
    """

    class_names: tuple
    preprocessing: ServingPreprocessing
    entry: dict = None


def registered_entry(architecture, weights, manifest=None):
    """The manifest entry of `weights` for `architecture`, or None.

    Args:
        architecture: constructor name, e.g. "LambdaResNet26Compact".
        weights: None, a path to a weights file, or a registered name/alias.
        manifest: entries or a manifest path (see `find_checkpoint`); None
            for the repository's.

    Returns:
        The entry (a dict) when `weights` is a registered name or alias,
        None for None or an existing file.

    Raises:
        ValueError: `weights` is neither a file nor a registered name (the
            message lists the known names).
    """
    resolved = resolve_weights(
        weights, architecture, include_top=False, manifest=manifest
    )
    return resolved if isinstance(resolved, dict) else None


def class_names_from_entry(entry):
    """Display names of a manifest entry's classes.

    WordNet ids of ImageNet classes become their labels; other names are
    kept; a 1000-class entry without `class_names` gets the ImageNet-1k
    labels; any other entry "class_0", "class_1", ...
    """
    names = entry.get("class_names")
    if names is None:
        if entry["classes"] == NUM_CLASSES:
            return tuple(imagenet_class_names())
        return default_class_names(entry["classes"])
    return tuple(_display_name(str(name)) for name in names)


def default_class_names(classes):
    """("class_0", "class_1", ...) for `classes` classes."""
    return tuple(f"class_{index}" for index in range(classes))


def resolve_metadata(
    architecture,
    weights,
    classes,
    default_size,
    class_names=None,
    input_size=None,
    crop_fraction=None,
    resize=None,
    manifest=None,
):
    """Class names and preprocessing for a model built with `weights`.

    Args:
        architecture: constructor name, e.g. "LambdaResNet26T".
        weights: None, a weights file or a registered name/alias.
        classes: the model's number of classes.
        default_size: input side when neither the manifest nor
            `input_size` gives one (the constructor's `default_size`).
        class_names: overrides the names (a sequence of `classes` strings).
        input_size: overrides the input side.
        crop_fraction: overrides the crop fraction.
        resize: overrides the resize method.
        manifest: entries or a manifest path; None for the repository's.

    Returns:
        A `ServingMetadata`.

    Raises:
        ValueError: unknown weights (the message lists the registered
            ones), or `class_names` of the wrong length.
    """
    entry = registered_entry(architecture, weights, manifest)
    if entry is not None:
        preprocessing = ServingPreprocessing.from_manifest(
            entry["preprocessing"], entry["input_size"]
        )
        names = class_names_from_entry(entry)
    else:
        preprocessing = ServingPreprocessing(
            input_size=default_size, crop_fraction=DEFAULT_CROP_FRACTION
        )
        names = default_class_names(classes)
    overrides = {
        key: value
        for key, value in dict(
            input_size=input_size, crop_fraction=crop_fraction, resize=resize
        ).items()
        if value is not None
    }
    preprocessing = dataclasses.replace(preprocessing, **overrides)
    if class_names is not None:
        names = tuple(str(name) for name in class_names)
    if len(names) != classes:
        shown = list(names) if len(names) <= 10 else [*names[:10], "..."]
        raise ValueError(
            f"Expected {classes} class names (one per class of the model), "
            f"got {len(names)}. Received: class_names={shown}"
        )
    return ServingMetadata(names, preprocessing, entry)


def _display_name(name):
    if _WNID.fullmatch(name):
        try:
            return imagenet_label(name)
        except ValueError:
            return name
    return name
