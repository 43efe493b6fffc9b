"""Which tensors the LambdaLayer's TensorFlow forward graph holds.

TensorFlow only (a traced graph lists every tensor with its static shape),
so this module is not part of the backend-agnostic tests/layers.
"""

import math

import keras
import pytest

from lambda_keras.layers import LambdaLayer

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="inspects a TensorFlow graph"
)


def forward_graph_shapes(layer, shape):
    """Shapes of every tensor in the layer's traced TensorFlow forward graph."""
    import tensorflow as tf

    layer.build(shape)
    function = tf.function(lambda x: layer(x, training=False))
    graph = function.get_concrete_function(tf.TensorSpec(shape)).graph
    return [
        tuple(output.shape)
        for operation in graph.get_operations()
        for output in operation.outputs
        if output.shape.rank is not None
    ]


def test_auto_layer_picks_its_method_from_the_input_size():
    # The c4 stage of a LambdaResNet50 (14x14, |v| = 64): the einsum, queries
    # first, with (b, n, h, m) weights and no (b, n, k, v) position lambdas.
    shapes = forward_graph_shapes(LambdaLayer(scope=23), (2, 14, 14, 256))
    assert (2, 196, 4, 196) in shapes
    assert (2, 196, 16, 64) not in shapes
    # 56x56 with scope 23: the lambda convolution, nothing quadratic.
    shapes = forward_graph_shapes(LambdaLayer(scope=23), (2, 56, 56, 64))
    assert max(math.prod(s) for s in shapes) < 3136**2


def test_global_layer_never_holds_a_dense_copy_of_the_embeddings():
    # 32x32 global context, |h| m > |k| |v|: the position lambdas first, from
    # E gathered depth first (k, n, m); no (n, m, k[, u]) layout of E.
    n = 32 * 32
    shapes = forward_graph_shapes(LambdaLayer(scope=None), (2, 32, 32, 64))
    assert (16, n, n) in shapes
    assert (n, n, 16, 1) not in shapes and (n, n, 16) not in shapes
    assert max(math.prod(s) for s in shapes) == 16 * n * n
