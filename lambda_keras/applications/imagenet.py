"""Offline ImageNet-1k preprocessing and prediction decoding.

Drop-in counterparts of `keras.applications.imagenet_utils.preprocess_input`
(in its `"torch"` mode, the one used by the lambda_keras models) and
`keras.applications.imagenet_utils.decode_predictions`. Unlike the Keras
`decode_predictions`, which downloads `imagenet_class_index.json` the first
time it is called, this module never touches the network: the class index
ships inside the package as `imagenet_class_index.json`, next to this file.

The JSON has exactly Keras' format: an object mapping `"0"` .. `"999"` to
`[wnid, label]`, e.g. `"0": ["n01440764", "tench"]`, in the standard
ImageNet-1k class order (the 1000 WordNet ids sorted). It is derived from
two files shipped in the `timm` wheel (version 1.0.31, from PyPI):

- `timm/data/_info/imagenet_synsets.txt`: the 1000 wnids, one per line, in
  class order (class `i` is line `i`);
- `timm/data/_info/imagenet_synset_to_lemma.txt`: tab-separated
  `wnid<TAB>lemma, lemma, ...` lines.

Each label is the first comma-separated lemma of its synset, stripped, with
spaces replaced by underscores (`"great white shark, white shark, ..."` ->
`"great_white_shark"`), which is how Keras' labels are formed; it keeps
Keras' two duplicated labels (`"crane"`, classes 134 and 517, and
`"maillot"`, classes 638 and 639), whose wnids differ. The file was written
with `json.dump` (default separators) plus a trailing newline.
"""

import functools
import json
from pathlib import Path

import keras
import numpy as np
from keras.applications import imagenet_utils

from lambda_keras.validation import positive_int

__all__ = [
    "class_names",
    "decode_predictions",
    "preprocess_input",
]

NUM_CLASSES = 1000

_CLASS_INDEX_PATH = Path(__file__).with_name("imagenet_class_index.json")


@functools.cache
def _class_index():
    """Loads the shipped class index once; a tuple of `(wnid, label)`."""
    with open(_CLASS_INDEX_PATH, encoding="utf-8") as f:
        index = json.load(f)
    return tuple(tuple(index[str(i)]) for i in range(NUM_CLASSES))


def class_names():
    """Returns the 1000 ImageNet-1k labels in class order.

    Returns:
        A new list of 1000 strings; entry `i` is the label of class `i`
        (e.g. `class_names()[0] == "tench"`).
    """
    return [label for _, label in _class_index()]


def imagenet_label(wnid):
    """The ImageNet-1k label of a WordNet id, e.g. "n01440764" -> "tench".

    Raises:
        ValueError: for an id that is not one of the 1000 classes.
    """
    for class_wnid, label in _class_index():
        if class_wnid == wnid:
            return label
    raise ValueError(f"Not an ImageNet-1k WordNet id. Received: wnid={wnid!r}")


def preprocess_input(x, data_format=None):
    """Preprocesses a batch of RGB images for an ImageNet model.

    Scales pixels from 0-255 to 0-1, then normalises each channel with the
    ImageNet mean and standard deviation: `(x / 255 - IMAGENET_MEAN) /
    IMAGENET_STD` (constants of `lambda_keras.preprocessing`). This is the
    `"torch"` mode of `keras.applications.imagenet_utils.preprocess_input`,
    to which it delegates; the input is copied first, so (unlike Keras) a
    float NumPy array or PyTorch tensor passed in is never modified in
    place, and integer tensors are accepted.

    Args:
        x: A NumPy array, a backend tensor or a nested list holding one RGB
            image (3D) or a batch of them (4D), with values in 0-255 and 3
            channels.
        data_format: `"channels_last"` (`(..., height, width, 3)`) or
            `"channels_first"` (`(..., 3, height, width)`). Defaults to
            `keras.config.image_data_format()`.

    Returns:
        The preprocessed images, with the shape of `x`: a float NumPy array
        when `x` is a NumPy array or a list, else a float tensor.

    Raises:
        ValueError: If `data_format` is not one of the two above, or `x` is
            not 3D or 4D with 3 channels.
    """
    if data_format is None:
        data_format = keras.config.image_data_format()
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError(
            "Expected `data_format` to be one of `channels_first` or "
            f"`channels_last`. Received: data_format={data_format!r}"
        )
    if keras.ops.is_tensor(x):
        dtype = keras.backend.standardize_dtype(x.dtype)
        if "float" in dtype:
            x = keras.ops.copy(x)
        else:
            x = keras.ops.cast(x, keras.config.floatx())
    else:
        x = np.array(x)  # Always a copy: Keras divides float arrays in place.
    channel_axis = -1 if data_format == "channels_last" else -3
    if len(x.shape) not in (3, 4) or x.shape[channel_axis] != 3:
        raise ValueError(
            "`preprocess_input` expects one RGB image (3D) or a batch of "
            f"them (4D) with 3 channels on the {data_format} axis. "
            f"Received: x.shape={tuple(x.shape)}"
        )
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="torch")


def decode_predictions(preds, top=5):
    """Decodes the predictions of an ImageNet-1k model.

    Same contract as `keras.applications.imagenet_utils.decode_predictions`,
    but reads the class index shipped with lambda_keras instead of
    downloading it.

    Args:
        preds: A NumPy array or tensor of shape `(samples, 1000)`: scores
            (probabilities or logits) for each ImageNet-1k class.
        top: Positive integer, how many top guesses to return per sample.
            Defaults to `5`; values above 1000 return all classes.

    Returns:
        A list with one list per sample of `(wnid, label, score)` tuples,
        e.g. `("n01440764", "tench", 0.92)`, sorted by descending score
        (ties by class index). Scores are Python floats.

    Raises:
        ValueError: If `preds` is not a 2D array with 1000 columns, or `top`
            is not a positive integer.
    """
    positive_int("top", top)
    if keras.ops.is_tensor(preds):
        preds = keras.ops.convert_to_numpy(preds)
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != NUM_CLASSES:
        raise ValueError(
            "`decode_predictions` expects a batch of predictions (i.e. a 2D "
            f"array of shape (samples, {NUM_CLASSES})). "
            f"Received: preds.shape={preds.shape}"
        )
    index = _class_index()
    results = []
    # Stable sort of the negated scores: descending, ties by class index.
    order = np.argsort(-preds.astype(np.float64), axis=-1, kind="stable")
    for pred, indices in zip(preds, order):
        top_indices = indices[:top]
        results.append([(*index[i], float(pred[i])) for i in top_indices])
    return results
