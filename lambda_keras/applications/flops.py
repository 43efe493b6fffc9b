"""Multiply-add counts of built models, counted as the paper does.

Convolutions, dense layers and lambda layers are counted; normalisation,
activations, pooling and element-wise operations are not. Position lambdas
count only the (query, context) pairs inside the scope: zeroed-out terms of
the masked einsum are not counted (Appendix D, "FLOPS count"). The paper's
FLOPS are twice these multiply-adds (Table 6 gives EfficientNet-B6, 19.0B
multiply-adds, as 38 GFLOPS).
"""

import math

import keras

from lambda_keras.layers import LambdaLayer


def count_multiply_adds(model):
    """Multiply-adds of one forward pass of one example through `model`.

    Args:
        model: a built functional `keras.Model` with known spatial sizes.

    Returns:
        An int.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_multiply_adds(layer)
        elif isinstance(layer, LambdaLayer):
            total += lambda_layer_multiply_adds(layer, layer.input.shape)
        elif isinstance(layer, keras.layers.Conv2D):
            kernel_h, kernel_w = layer.kernel_size
            in_channels = layer.input.shape[-1] // layer.groups
            positions = math.prod(_known(layer.output.shape[1:-1], layer.name))
            total += positions * kernel_h * kernel_w * in_channels * layer.filters
        elif isinstance(layer, keras.layers.Dense):
            positions = math.prod(_known(layer.output.shape[1:-1], layer.name))
            total += positions * layer.input.shape[-1] * layer.units
    return total


def lambda_layer_multiply_adds(layer, input_shape):
    """Multiply-adds of a `LambdaLayer` on one example of `input_shape`.

    Projections n * d * (hk + ku + vu); content lambda m * k * v * u and its
    application n * h * k * v; position lambdas (pairs in scope) * k * v * u
    and their application n * h * k * v (Eq. 4).
    """
    spatial = _known(input_shape[1:-1], layer.name)
    positions = math.prod(spatial)
    k, h, u, v = layer.dim_k, layer.heads, layer.dim_u, layer.dim_v
    total = positions * input_shape[-1] * (h * k + (k + v) * u)
    application = positions * h * k * v
    if layer.use_content:
        total += positions * k * v * u + application
    if layer.use_position:
        total += _pairs_in_scope(spatial, layer.scope) * k * v * u + application
    return total


def _pairs_in_scope(spatial, scope):
    """Number of (query, context) pairs whose offset lies in the scope."""
    if scope is None:
        return math.prod(spatial) ** 2
    half = scope // 2
    return math.prod(
        sum(min(i + half, size - 1) - max(i - half, 0) + 1 for i in range(size))
        for size in spatial
    )


def _known(shape, name):
    if any(size is None for size in shape):
        raise ValueError(
            "Counting multiply-adds needs known spatial sizes. Received: "
            f"shape {tuple(shape)} in layer '{name}'"
        )
    return tuple(shape)
