"""Tests of the compact LambdaResNet-26s (width multiplier, small-image
stem) and of our own checkpoints shipped in checkpoints/."""

import pytest

from lambda_keras import LambdaResNet26Cifar
from lambda_keras import LambdaResNet26Compact
from lambda_keras.applications import LambdaResNet
from lambda_keras.applications.flops import count_multiply_adds


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
