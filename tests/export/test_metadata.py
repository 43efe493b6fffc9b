"""Class names and preprocessing of an export, from the weights manifest."""

import pytest

from lambda_keras.applications.imagenet import class_names
from lambda_keras.export import ServingPreprocessing
from lambda_keras.export import resolve_metadata
from lambda_keras.export.metadata import class_names_from_entry
from lambda_keras.export.metadata import registered_entry
from lambda_keras.preprocessing import IMAGENET_MEAN
from lambda_keras.preprocessing import IMAGENET_STD

# An entry as `lambda-keras package-checkpoint` writes it for our own
# Imagenette checkpoint (class names are WordNet ids).
IMAGENETTE = {
    "name": "lambda_resnet26_compact.imagenette",
    "architecture": "LambdaResNet26Compact",
    "alias": "imagenette",
    "dataset": "imagenette (9469 training images)",
    "classes": 3,
    "class_names": ["n01440764", "n03028079", "n03888257"],
    "input_size": [80, 80],
    "preprocessing": {
        "resize": "bilinear",
        "crop_fraction": 0.875,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
    },
    "metrics": {"top1": 80.0, "top5": 98.0, "measured_by": "test"},
    "files": [
        {
            "path": "imagenette.weights.h5",
            "sha256": "0" * 64,
            "format": "keras_weights_h5",
        }
    ],
    "license": "apache-2.0",
    "provenance": "test",
}


@pytest.fixture
def manifest(write_manifest):
    return str(write_manifest([IMAGENETTE]))


def test_our_checkpoint_names_and_preprocessing(manifest):
    metadata = resolve_metadata(
        "LambdaResNet26Compact", "imagenette", 3, 64, manifest=manifest
    )
    assert metadata.class_names == ("tench", "church", "parachute")
    assert metadata.preprocessing == ServingPreprocessing(80, 0.875, "bilinear")
    assert metadata.entry["name"] == "lambda_resnet26_compact.imagenette"
    # The full name works as well as the alias.
    full = resolve_metadata(
        "LambdaResNet26Compact", IMAGENETTE["name"], 3, 64, manifest=manifest
    )
    assert full == metadata


def test_timm_imagenet_weights_get_the_imagenet_labels():
    # From the repository's manifest; nothing is downloaded.
    metadata = resolve_metadata("LambdaResNet26T", "imagenet", 1000, 256)
    assert metadata.class_names == tuple(class_names())
    assert metadata.class_names[0] == "tench"
    assert metadata.preprocessing == ServingPreprocessing(256, 0.94, "bicubic")
    assert metadata.entry["name"] == "lambda_resnet26t.c1_in1k"


def test_class_names_from_entries():
    assert class_names_from_entry(
        {"classes": 3, "class_names": ["n01440764", "airplane", "n99999999"]}
    ) == ("tench", "airplane", "n99999999")
    assert class_names_from_entry({"classes": 1000})[999] == "toilet_tissue"
    assert class_names_from_entry({"classes": 2}) == ("class_0", "class_1")


def test_weights_file_and_random_weights_use_defaults_and_overrides(tmp_path):
    weights = tmp_path / "model.weights.h5"
    weights.write_bytes(b"")
    assert registered_entry("LambdaResNet26Compact", str(weights)) is None
    assert registered_entry("LambdaResNet26Compact", None) is None
    metadata = resolve_metadata("LambdaResNet26Compact", str(weights), 2, 64)
    assert metadata.class_names == ("class_0", "class_1")
    assert metadata.preprocessing == ServingPreprocessing(64, 0.875, "bilinear")
    assert metadata.entry is None
    metadata = resolve_metadata(
        "LambdaResNet26Compact",
        None,
        2,
        64,
        class_names=["cat", "dog"],
        input_size=96,
        crop_fraction=0.9,
        resize="bicubic",
    )
    assert metadata.class_names == ("cat", "dog")
    assert metadata.preprocessing == ServingPreprocessing(96, 0.9, "bicubic")


def test_bad_names_are_rejected(manifest):
    with pytest.raises(ValueError, match=r"available for 'LambdaResNet26Compact'"):
        resolve_metadata("LambdaResNet26Compact", "imagenet", 3, 64, manifest=manifest)
    with pytest.raises(ValueError, match=r"Received: class_names=\['cat'\]"):
        resolve_metadata("LambdaResNet26Compact", None, 2, 64, class_names=["cat"])
