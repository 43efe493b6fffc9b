"""Tests of the compact LambdaResNet-26s (width multiplier, small-image
stem) and of our own checkpoints shipped in checkpoints/."""

import tarfile
from pathlib import Path

import numpy as np
import pytest

from lambda_keras import LambdaResNet26Cifar
from lambda_keras import LambdaResNet26Compact
from lambda_keras.applications import LambdaResNet
from lambda_keras.applications import preprocess_input
from lambda_keras.applications.flops import count_multiply_adds
from lambda_keras.preprocessing import load_image
from lambda_keras.preprocessing import sample_images
from lambda_keras.train.trainer import build_model
from lambda_keras.train.trainer import evaluate
from lambda_keras.weights import find_checkpoint


def _filters(model, name):
    return model.get_layer(name).output.shape[-1]


def test_width_multiplier_scales_every_stage_and_the_stem():
    full = LambdaResNet((2, 2, 2, 2), input_shape=(64, 64, 3), classes=10)
    half = LambdaResNet(
        (2, 2, 2, 2), input_shape=(64, 64, 3), classes=10, width_multiplier=0.5
    )
    for name in ("stem_conv1", "stem_conv4", "c2_block1_conv1", "c4_block2_lambda"):
        assert _filters(half, name) * 2 == _filters(full, name)
    assert _filters(half, "c5_block2_out") == 1024
    # Convolution weights scale with width squared: about a quarter.
    assert 0.2 < half.count_params() / full.count_params() < 0.3
    assert 0.2 < count_multiply_adds(half) / count_multiply_adds(full) < 0.3


def test_compact_models():
    compact = LambdaResNet26Compact()
    assert compact.input_shape == (None, 64, 64, 3)
    assert compact.output_shape == (None, 10)
    assert compact.get_layer("c5_block2_lambda").output.shape[1:3] == (2, 2)
    lambdas = [layer.name for layer in compact.layers if "lambda" in layer.name]
    assert lambdas == ["c4_block2_lambda", "c5_block1_lambda", "c5_block2_lambda"]
    # The small-image stem halves, not quarters, the input: 32 px reaches
    # c5 at 2x2 as 64 px does through the ResNet-D stem.
    cifar = LambdaResNet26Cifar()
    assert cifar.input_shape == (None, 32, 32, 3)
    assert cifar.get_layer("stem_act2").output.shape[1:] == (16, 16, 32)
    assert cifar.get_layer("c5_block2_lambda").output.shape[1:3] == (2, 2)
    assert compact.count_params() - cifar.count_params() == pytest.approx(
        11_712, abs=1
    )  # the two extra stem convolutions and their batch norms


# --- Our checkpoints (checkpoints/imagenette, checkpoints/cifar10) ------------

SAMPLE_CLASSES = {"church": "n03028079", "parachute": "n03888257", "tench": "n01440764"}
CIFAR_SAMPLES = Path(__file__).resolve().parents[1] / "data" / "cifar10"
SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def test_imagenette_checkpoint_classifies_the_sample_photos():
    entry = find_checkpoint("imagenette", architecture="LambdaResNet26Compact")
    size = entry["input_size"][0]
    model = LambdaResNet26Compact(weights="imagenette", input_shape=(size, size, 3))
    preprocessing = entry["preprocessing"]
    images = np.stack(
        [
            load_image(
                path, size, preprocessing["crop_fraction"], preprocessing["resize"]
            )
            for path in sample_images()
        ]
    )
    predicted = model.predict(preprocess_input(images), verbose=0).argmax(axis=1)
    expected = [SAMPLE_CLASSES[path.stem] for path in sample_images()]
    assert [entry["class_names"][i] for i in predicted] == expected


def test_cifar10_checkpoint_on_committed_test_images():
    # Two CIFAR-10 test images per class (the first two of each class
    # folder), committed under tests/data: far above the 10% of chance.
    results = evaluate(
        "LambdaResNet26Cifar",
        "cifar10",
        str(CIFAR_SAMPLES),
        split="test",
        image_size=32,
        crop_fraction=1.0,
    )
    assert results["examples"] == 20
    assert results["top1"] >= 60.0


def _unpack(archive, target):
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


@pytest.mark.slow
@pytest.mark.parametrize(
    "architecture, alias, archive",
    [
        ("LambdaResNet26Compact", "imagenette", "imagenette2-224.tar"),
        ("LambdaResNet26Cifar", "cifar10", "cifar10.tar.gz"),
    ],
)
def test_checkpoint_accuracy_is_the_manifest_figure(
    architecture, alias, archive, tmp_path
):
    if not (SHARED_DATA / archive).is_file():
        pytest.skip(f"needs the dataset archive ../shared/data/{archive}")
    entry = find_checkpoint(alias, architecture=architecture)
    root = _unpack(SHARED_DATA / archive, tmp_path)
    results = evaluate(
        architecture,
        alias,
        str(root),
        split=entry["metrics"]["split"],
        image_size=entry["input_size"][0],
        crop_fraction=entry["preprocessing"]["crop_fraction"],
    )
    assert results["examples"] == entry["metrics"]["examples"]
    assert results["top1"] == pytest.approx(entry["metrics"]["top1"], abs=0.01)
    assert results["top5"] == pytest.approx(entry["metrics"]["top5"], abs=0.01)


def test_fine_tuning_model_keeps_the_backbone_and_replaces_the_classifier():
    pretrained = LambdaResNet26Compact(weights="imagenette", include_preprocessing=True)
    model = build_model("LambdaResNet26Compact", 3, 64, weights="imagenette")
    assert model.output_shape == (None, 3)
    for name in ("stem_conv1", "c4_block2_lambda", "c5_block2_conv3"):
        for a, b in zip(
            model.get_layer(name).get_weights(),
            pretrained.get_layer(name).get_weights(),
        ):
            np.testing.assert_array_equal(a, b)
