"""benchmarks.lambda_vs_conv_layers times each lambda layer of a model
against the convolution its twin has in the same block."""

import pytest

from benchmarks import lambda_vs_conv_layers
from lambda_keras.applications import LambdaResNet26T
from lambda_keras.layers import LambdaLayer


@pytest.mark.slow
def test_profile_has_a_row_per_lambda_layer():
    rows = lambda_vs_conv_layers.profile("LambdaResNet26T", size=64, batch=2, repeats=1)
    model = LambdaResNet26T(weights=None, input_shape=(64, 64, 3))
    lambdas = [layer for layer in model.layers if isinstance(layer, LambdaLayer)]
    assert [row["block"] for row in rows] == [
        layer.name.removesuffix("_lambda") for layer in lambdas
    ]
    assert [row["stride"] for row in rows] == [layer.strides for layer in lambdas]
    for row in rows:
        assert set(row["seconds"]) == {
            f"{part}/{task}"
            for part in ("lambda", "conv")
            for task in ("inference", "training")
        }
        assert all(seconds > 0 for seconds in row["seconds"].values())
