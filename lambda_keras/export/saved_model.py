"""SavedModel export in TF Serving's layout, with image-bytes signatures.

`export_saved_model(model, "models/lambda_resnet", version=1)` writes
`models/lambda_resnet/1/saved_model.pb` and `variables/`: the layout
`tensorflow_model_server --model_base_path=models/lambda_resnet` serves (it
picks the highest numeric version). The SavedModel is built with
`keras.export.ExportArchive` and holds only TensorFlow functions, so
`tf.saved_model.load` and TF Serving read it without lambda_keras.

The version is written to a hidden temporary folder beside it and renamed
when complete, so a server watching the base path never loads a half-written
version.
"""

import os
import shutil
import tempfile
from pathlib import Path

import keras

from lambda_keras.export.outputs import check_can_write
from lambda_keras.export.preprocessing import DEFAULT_MAX_PIXELS
from lambda_keras.export.preprocessing import DEFAULT_MAX_RESIZED_PIXELS
from lambda_keras.export.signatures import ServingEndpoints
from lambda_keras.validation import positive_int


def export_saved_model(
    model,
    export_dir,
    version=1,
    *,
    class_names=None,
    preprocessing=None,
    top_k=5,
    max_pixels=DEFAULT_MAX_PIXELS,
    max_resized_pixels=DEFAULT_MAX_RESIZED_PIXELS,
    dynamic_size=None,
    overwrite=False,
):
    """Exports a LambdaResNet classifier as a SavedModel for TF Serving.

    Signatures (see `lambda_keras.export.signatures`):

    - `serving_default`: `image_bytes` tf.string (batch,) of JPEG or PNG
      files -> `probabilities` (batch, classes), top-k `classes` int32,
      `scores` float32 and `class_names` tf.string, each (batch, k);
    - `predict_images`: `images` float32 (batch, H, W, 3) in 0-255 -> the
      same outputs;
    - `features`: `images` as above -> `features` (batch, d), the pooled
      features.

    Args:
        model: a classifier built with `include_top=True`, usually with
            `include_preprocessing=True` (otherwise the signatures apply the
            preprocessing's mean and std).
        export_dir: the model's base folder; the SavedModel goes into
            `export_dir/<version>`.
        version: positive integer version (TF Serving serves the highest).
        class_names: one name per class (e.g. from
            `lambda_keras.export.resolve_metadata`); defaults to "class_0",
            "class_1", ...
        preprocessing: a `ServingPreprocessing`, or a dict with the keys of
            a manifest entry's `preprocessing` plus `input_size`; defaults
            to the model's input size, crop 0.875, bilinear.
        top_k: classes listed per image by the classification outputs.
        max_pixels: largest image `serving_default` accepts (width x
            height, read from the file header before decoding).
        max_resized_pixels: the most pixels either pass of
            `serving_default`'s resize may make (the shorter side scaled to
            `floor(size / crop_fraction)`, the longer in proportion;
            computed from the header too).
        dynamic_size: whether `predict_images` and `features` accept any
            height and width; None: when the model allows it.
        overwrite: replace an existing `export_dir/<version>`.

    Returns:
        The path of the version folder (a str).

    Raises:
        ValueError: a bad argument or a model without a classifier.
        FileExistsError: an existing version folder without `overwrite`.
        NotADirectoryError: `export_dir` is a file.
    """
    positive_int("version", version)
    endpoints = ServingEndpoints(
        model,
        class_names=class_names,
        preprocessing=preprocessing,
        top_k=top_k,
        max_pixels=max_pixels,
        max_resized_pixels=max_resized_pixels,
        dynamic_size=dynamic_size,
    )
    base = Path(export_dir)
    if base.exists() and not base.is_dir():
        raise NotADirectoryError(
            f"{base} is a file; the SavedModel goes into a folder. "
            f"Received: export_dir={str(base)!r}"
        )
    target = base / str(version)
    check_can_write(target, overwrite, f"version={version}")
    base.mkdir(parents=True, exist_ok=True)
    archive = keras.export.ExportArchive()
    # No `archive.track(model)`: add_endpoint already saves the variables
    # the signatures use, and tracking the model would store every weight a
    # second time (as the Keras variables besides their tf.Variables),
    # doubling the size of variables/.
    for name, (function, signature) in endpoints.signatures.items():
        archive.add_endpoint(name, function, input_signature=signature)
    staging = tempfile.mkdtemp(prefix=f".{version}.partial-", dir=base)
    try:
        archive.write_out(staging, verbose=False)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(target)


def saved_model_version_dir(path):
    """The SavedModel folder to load from a base or version folder.

    Args:
        path: a folder holding `saved_model.pb`, or a TF Serving base folder
            of numeric versions (the highest is returned).

    Returns:
        The folder (a str).

    Raises:
        FileNotFoundError: neither.
    """
    path = Path(path)
    if (path / "saved_model.pb").is_file():
        return str(path)
    versions = (
        sorted(
            (int(child.name), child)
            for child in path.iterdir()
            if child.name.isdigit() and (child / "saved_model.pb").is_file()
        )
        if path.is_dir()
        else []
    )
    if not versions:
        raise FileNotFoundError(
            f"{path} holds no saved_model.pb and no numeric version folder "
            f"with one. Received: path={str(path)!r}"
        )
    return str(versions[-1][1])
