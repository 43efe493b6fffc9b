"""Top-k predictions for image files, from a SavedModel or a Keras model.

Both run the `serving_default` signature on the files' bytes: loaded from an
exported SavedModel (`load_saved_model_signature`), or built in memory from a
Keras model by the same `ServingEndpoints` code that `export_saved_model`
writes (`keras_signature`), so the two agree.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from lambda_keras.export.saved_model import saved_model_version_dir
from lambda_keras.export.signatures import SERVING_DEFAULT
from lambda_keras.export.signatures import ServingEndpoints


@dataclasses.dataclass
class Prediction:
    """The top classes of one image.

    Attributes:
        image: the file's path.
        classes: class ids, best first.
        class_names: their names.
        scores: their probabilities.
        error: the error message when the image could not be classified
            (then the lists are empty).
    """

    image: str
    classes: list
    class_names: list
    scores: list
    error: str = None


class ServingSignature:
    """`serving_default` as a callable: `signature(image_bytes=...)`.

    Args:
        function: the signature's function (taking `image_bytes`).
        top_k: how many classes its outputs list per image.
        owner: an object to keep referenced (a loaded SavedModel owns the
            variables of its signatures).
    """

    def __init__(self, function, top_k, owner=None):
        self.function = function
        self.top_k = top_k
        self.owner = owner

    def __call__(self, image_bytes):
        return self.function(image_bytes=image_bytes)


def load_saved_model_signature(path):
    """`serving_default` of a SavedModel (a version or TF Serving base folder).

    Returns:
        `(signature, version_dir)`: a `ServingSignature` and the folder it
        was loaded from.

    Raises:
        FileNotFoundError: no SavedModel at `path`.
        ValueError: the SavedModel is corrupt or has no `serving_default`.
    """
    try:
        version_dir = saved_model_version_dir(path)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"{path} holds no saved_model.pb and no numeric version folder with "
            f"one. Received: --saved-model={path}"
        ) from error
    try:
        loaded = tf.saved_model.load(version_dir)
    # What TensorFlow raises for an unparsable saved_model.pb (OSError), one
    # without a MetaGraph (ValueError), missing or truncated variables
    # (OSError, IndexError) and a checkpoint it cannot restore (OpError).
    except (OSError, ValueError, LookupError, tf.errors.OpError) as error:
        raise ValueError(
            f"{version_dir} is not a readable SavedModel "
            f"({type(error).__name__}: {_first_line(error)}). "
            f"Received: --saved-model={path}"
        ) from error
    if SERVING_DEFAULT not in loaded.signatures:
        raise ValueError(
            f"The SavedModel {version_dir} has no '{SERVING_DEFAULT}' signature "
            f"(it has {sorted(loaded.signatures)}). Received: --saved-model={path}"
        )
    function = loaded.signatures[SERVING_DEFAULT]
    top_k = function.structured_outputs["classes"].shape[-1]
    return ServingSignature(function, top_k, owner=loaded), version_dir


def keras_signature(model, **endpoint_options):
    """`serving_default` of a Keras classifier, built in memory.

    Args:
        model: a classifier (see `ServingEndpoints`).
        **endpoint_options: `class_names`, `preprocessing`, `top_k`, ... of
            `ServingEndpoints`.

    Returns:
        A `ServingSignature`.
    """
    endpoints = ServingEndpoints(model, **endpoint_options)
    function = endpoints.functions()[SERVING_DEFAULT]
    return ServingSignature(lambda image_bytes: function(image_bytes), endpoints.top_k)


def predict_files(signature, paths, top_k=5):
    """Runs `serving_default` on image files, one at a time.

    A file that fails (unreadable, not an image, corrupt, too large) gets
    its error message instead of stopping the others.

    Args:
        signature: a `serving_default` callable (see above).
        paths: image files.
        top_k: classes kept per image (at most the signature's top-k).

    Returns:
        A list of `Prediction`, in the order of `paths`.
    """
    predictions = []
    for path in paths:
        try:
            with open(path, "rb") as file:
                data = file.read()
            outputs = signature(image_bytes=tf.constant([data]))
        except (OSError, tf.errors.InvalidArgumentError) as error:
            message = _first_line(getattr(error, "message", None) or str(error))
            # One file per request: "image_bytes[0]" is this file.
            message = message.replace("image_bytes[0]", "the file")
            predictions.append(Prediction(str(path), [], [], [], message))
            continue
        classes = np.asarray(outputs["classes"])[0, :top_k]
        names = np.asarray(outputs["class_names"])[0, :top_k]
        scores = np.asarray(outputs["scores"])[0, :top_k]
        predictions.append(
            Prediction(
                str(path),
                [int(index) for index in classes],
                [name.decode("utf-8") for name in names],
                [float(score) for score in scores],
            )
        )
    return predictions


def format_predictions(predictions):
    """Text lines: the file, then `rank. probability  name (class id)`."""
    lines = []
    for prediction in predictions:
        lines.append(f"{prediction.image}:")
        if prediction.error:
            lines.append(f"  error: {prediction.error}")
            continue
        for rank, (index, name, score) in enumerate(
            zip(prediction.classes, prediction.class_names, prediction.scores), 1
        ):
            lines.append(f"  {rank}. {score:.4f}  {name} (class {index})")
    return lines


def _first_line(message):
    """The informative line of a TensorFlow error message."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    for line in lines:
        if line.startswith("assertion failed:"):
            return line.removeprefix("assertion failed:").strip(" []")
    for line in lines:
        if not line.startswith(("Graph execution error", "Detected at node", "<")):
            return line.split(" [[")[0].split(" [Op:")[0]
    return lines[0] if lines else "error"
