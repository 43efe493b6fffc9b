"""Multiply-add counts against published counts and a brute-force count."""

import keras
import numpy as np
import numpy_reference
import pytest

from lambda_keras.applications.flops import count_multiply_adds
from lambda_keras.applications.flops import lambda_layer_multiply_adds
from lambda_keras.layers import LambdaLayer


@pytest.mark.parametrize(
    "constructor, published",
    [(keras.applications.ResNet50, 3.8e9), (keras.applications.ResNet101, 7.6e9)],
)
def test_resnets_match_he_et_al_table1(constructor, published):
    # He et al. (2016), Table 1: 3.8e9 and 7.6e9 multiply-adds at 224x224.
    counted = count_multiply_adds(constructor(weights=None))
    assert abs(counted - published) <= 0.02 * published


@pytest.mark.parametrize(
    "spatial, scope", [((9, 7), 3), ((9, 7), 5), ((6, 6), None), ((11,), 5)]
)
@pytest.mark.parametrize("content", [True, False])
def test_lambda_layer_count_by_brute_force(spatial, scope, content):
    dim_k, heads, dim_u, channels = 4, 2, 3, 8
    layer = LambdaLayer(
        dim_k=dim_k, heads=heads, dim_u=dim_u, scope=scope, use_content=content
    )
    shape = (1, *spatial, channels)
    layer.build(shape)
    positions = int(np.prod(spatial))
    dim_v = channels // heads
    table = np.ones((*(layer.position_embedding.table.shape[:-2]), 1, 1))
    pairs = int(numpy_reference.relative_embeddings(table, spatial).sum())
    expected = positions * channels * (heads * dim_k + (dim_k + dim_v) * dim_u)
    expected += pairs * dim_k * dim_v * dim_u + positions * heads * dim_k * dim_v
    if content:
        expected += (
            positions * dim_k * dim_v * dim_u + positions * heads * dim_k * dim_v
        )
    assert lambda_layer_multiply_adds(layer, shape) == expected
    assert pairs < positions**2 or scope is None


def test_unknown_spatial_size_is_rejected():
    model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(4, 3)])
    with pytest.raises(ValueError, match=r"shape \(None, None\)"):
        count_multiply_adds(model)
