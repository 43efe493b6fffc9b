"""Shipping a trained run as a registered checkpoint in `checkpoints/`.

`lambda-keras package-checkpoint --model-dir RUN --name NAME --alias ALIAS`
stores the run's final weights (cast to float16 by default, halving the
file), measures their top-1/top-5 after the cast with `evaluate` on the
run's held-out split, and writes the manifest entry that makes
`Constructor(weights=ALIAS)` load them without network. The run's model
card and learning curve are copied beside the weights.
"""

import json
import os
import shlex
import shutil
from pathlib import Path

import h5py
import numpy as np

from lambda_keras.preprocessing import IMAGENET_MEAN
from lambda_keras.preprocessing import IMAGENET_STD
from lambda_keras.train.callbacks import write_atomically
from lambda_keras.train.callbacks import write_json_atomically
from lambda_keras.weights import DEFAULT_MANIFEST
from lambda_keras.weights import FORMAT_VERSION
from lambda_keras.weights import MANIFEST_NAME
from lambda_keras.weights import REGISTRY_VARIABLE
from lambda_keras.weights import load_manifest
from lambda_keras.weights import sha256_of


def cast_weights_file(source, target, dtype="float16"):
    """Copies a `.weights.h5` file with its float32 arrays cast to `dtype`.

    Keras casts them back to each variable's dtype when loading.
    """

    def copy(source_group, target_group):
        target_group.attrs.update(dict(source_group.attrs))
        for key, item in source_group.items():
            if isinstance(item, h5py.Group):
                copy(item, target_group.create_group(key))
                continue
            data = item[()]
            if data.dtype == np.float32:
                data = data.astype(dtype)
            target_group.create_dataset(key, data=data).attrs.update(dict(item.attrs))

    def write(temporary):
        # A new file: HDF5 does not give back the space of replaced arrays.
        with h5py.File(source, "r") as read, h5py.File(temporary, "w") as written:
            copy(read, written)

    write_atomically(target, write)


def package_checkpoint(
    model_dir,
    name,
    alias,
    manifest_path=None,
    dtype="float16",
    license="apache-2.0",
):
    """Registers the final weights of a training run in a manifest.

    Args:
        model_dir: the `--model-dir` of a finished `lambda-keras train` run.
        name: the checkpoint's unique name, e.g.
            "lambda_resnet26_compact.imagenette".
        alias: its short name for `weights=`, e.g. "imagenette".
        manifest_path: the manifest to update, or a folder for it (created
            if need be); defaults to the package's own
            `checkpoints/manifest.json` when the package runs from its
            source tree, and is required when it is installed (nothing is
            written into site-packages). Files go to `<its folder>/<alias>/`.
            Name the folder in `LAMBDA_KERAS_REGISTRY` to load the weights
            by name.
        dtype: "float16" or "float32" storage.
        license: license of the weights.

    Returns:
        The manifest entry (a dict).
    """
    from lambda_keras.train.trainer import evaluate

    manifest_path = _writable_manifest(manifest_path)
    with open(os.path.join(model_dir, "model_card.json"), encoding="utf-8") as f:
        card = json.load(f)
    folder = os.path.join(os.path.dirname(manifest_path), alias)
    os.makedirs(folder, exist_ok=True)
    weights = os.path.join(folder, f"{name}.weights.h5")
    cast_weights_file(os.path.join(model_dir, "final.weights.h5"), weights, dtype)
    for extra in ("model_card.json", "training_log.csv"):
        shutil.copyfile(os.path.join(model_dir, extra), os.path.join(folder, extra))

    data = card["data"]
    dataset = _dataset_argument(card)
    results = evaluate(
        card["model"],
        weights,
        dataset,
        split=card["metrics"]["split"],
        image_size=data["image_size"],
        crop_fraction=data["crop_fraction"],
    )
    measure = shlex.join(
        [
            "lambda-keras", "evaluate", "--model", card["model"],
            "--weights", alias, "--dataset", dataset,
            "--split", card["metrics"]["split"],
            "--image-size", str(data["image_size"]),
            "--crop-fraction", str(data["crop_fraction"]),
        ]
    )  # fmt: skip
    entry = {
        "name": name,
        "architecture": card["model"],
        "alias": alias,
        "dataset": f"{alias} ({data['train_examples']} training images)",
        "classes": len(data["class_names"]),
        "class_names": data["class_names"],
        "input_size": [data["image_size"], data["image_size"]],
        "preprocessing": {
            "resize": "bilinear",
            "crop_fraction": data["crop_fraction"],
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
        },
        "metrics": {
            "top1": results["top1"],
            "top5": results["top5"],
            "top1_float32": card["metrics"]["top1"],
            "split": results["split"],
            "examples": results["examples"],
            "measured_by": f"{measure} (our own evaluation, {dtype} weights)",
        },
        "files": [
            {
                "path": os.path.relpath(weights, os.path.dirname(manifest_path)),
                "sha256": sha256_of(weights),
                "format": "keras_weights_h5",
                "size": os.path.getsize(weights),
                "dtype": dtype,
            }
        ],
        "license": license,
        "provenance": (
            f"Trained here with `{card['command']}` ({card['epochs_completed']} "
            f"epochs, {card['wall_time_seconds_this_run'] / 60:.0f} min on "
            f"{card['hardware']['cpu_count']} CPU cores, "
            f"{card['hardware']['strategy']}); model card and learning curve in "
            f"checkpoints/{alias}/."
        ),
    }
    _write_entry(manifest_path, entry)
    return entry


def _dataset_argument(card):
    """The `--dataset` the run was trained with, from its command line."""
    arguments = shlex.split(card["command"])
    return arguments[arguments.index("--dataset") + 1]


def _write_entry(manifest_path, entry):
    if os.path.exists(manifest_path):
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
    else:
        manifest = {"format_version": FORMAT_VERSION, "checkpoints": []}
    entries = [e for e in manifest["checkpoints"] if e["name"] != entry["name"]]
    manifest["checkpoints"] = entries + [entry]
    write_json_atomically(manifest_path, manifest)
    load_manifest(manifest_path)  # the result must still be a valid manifest


def _writable_manifest(manifest_path):
    """The manifest `package_checkpoint` may write: never an installed one."""
    argument = "--manifest"
    if manifest_path is None and DEFAULT_MANIFEST is None:
        raise ValueError(
            "This lambda_keras has no checkpoints folder of its own: name one "
            "with --manifest. Received: --manifest=None"
        )
    if manifest_path is None:
        manifest_path, argument = DEFAULT_MANIFEST, "the default manifest"
    path = Path(manifest_path)
    if path.is_dir() or path.suffix != ".json":
        path = path / MANIFEST_NAME
    if {"site-packages", "dist-packages"} & set(path.resolve().parts):
        raise ValueError(
            f"package-checkpoint writes into a checkpoints folder of yours, not "
            f"into an installed package: name one with --manifest (a folder or "
            f"its manifest.json), then add it to {REGISTRY_VARIABLE} to load the "
            f"weights by name. Received: {argument}={manifest_path}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)
