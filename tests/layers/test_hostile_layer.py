"""LambdaLayer under hostile inputs and arguments: large values under
mixed_float16, empty batches, bad constructor arguments and calls.

Backend-agnostic: CI also runs this module under KERAS_BACKEND=jax and
KERAS_BACKEND=torch.
"""

import math
import re

import keras
import numpy as np
import pytest
from keras import ops

from lambda_keras.layers import LambdaLayer
from lambda_keras.layers import RelativePositionEmbedding
from lambda_keras.ops.lambda_interaction import _lambda_convolution_gradients

FLOAT16_MAX = float(np.finfo("float16").max)
CONTEXTS = {
    "global": dict(scope=None),
    "local-conv": dict(scope=5, implementation="conv"),
}


def random(*shape, scale=1.0):
    """Normal samples, the same in every test whatever the order tests run in."""
    return (scale * np.random.default_rng(0).standard_normal(shape)).astype("float32")


def to_numpy(x):
    return ops.convert_to_numpy(ops.cast(x, "float32"))


def float32_and_mixed_layers(inputs, **kwargs):
    """A float32 layer and a mixed_float16 copy with the same weights."""
    reference = LambdaLayer(dim_k=16, heads=4, **kwargs)
    reference.build(inputs.shape)
    mixed = LambdaLayer(dim_k=16, heads=4, dtype="mixed_float16", **kwargs)
    mixed.build(inputs.shape)
    mixed.set_weights(reference.get_weights())
    return reference, mixed


def set_moving_statistics_to(layer, inputs):
    """Moving statistics of `inputs` itself, as a layer trained on such data."""
    qkv = to_numpy(layer.qkv_projection(inputs)).astype("float64")
    queries = qkv[..., : layer.heads * layer.dim_k]
    values = qkv[..., layer.heads * layer.dim_k + layer.dim_k * layer.dim_u :]
    for norm, part in ((layer.query_norm, queries), (layer.value_norm, values)):
        flat = part.reshape(-1, part.shape[-1])
        norm.moving_mean.assign(flat.mean(axis=0).astype("float32"))
        norm.moving_variance.assign(flat.var(axis=0).astype("float32"))


# --- mixed_float16 on large inputs ------------------------------------------


@pytest.mark.parametrize("scale", [1e2, 1e4])
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("context", sorted(CONTEXTS))
def test_mixed_float16_matches_float32_on_large_inputs(context, training, scale):
    inputs = random(2, 12, 12, 32, scale=scale)
    reference, mixed = float32_and_mixed_layers(inputs, **CONTEXTS[context])
    # In inference the statistics are those of a layer trained on such
    # inputs (with the initial ones, see the test below, the float32 result
    # itself is beyond float16's range).
    set_moving_statistics_to(reference, inputs)
    mixed.set_weights(reference.get_weights())

    outputs = to_numpy(mixed(inputs, training=training))
    expected = to_numpy(reference(inputs, training=training))

    assert mixed.compute_dtype == "float16"
    assert np.all(np.isfinite(outputs))
    # float16 keeps 11 bits: inputs of 1e4 carry errors of ~5, and so do
    # the key logits (~3e4 here) that the softmax over positions reads.
    # Where two logits are within that error of each other the softmax
    # can pick the other one: a few outputs move by a few percent, while
    # the bulk stays at float16's 1e-3.
    errors = np.abs(outputs - expected) / np.abs(expected).max()
    assert errors.max() < 0.1
    assert errors.mean() < 5e-3


@pytest.mark.parametrize("context", sorted(CONTEXTS))
def test_mixed_float16_keeps_normalised_queries_and_values_in_float32(context):
    # Value statistics that amplify the values past float16's range
    # (moving variance 1e-6: x1000), queries scaled down as much: the
    # layer's output is of order 10 and fits float16.
    inputs = random(2, 12, 12, 32, scale=10.0)
    reference, mixed = float32_and_mixed_layers(inputs, **CONTEXTS[context])
    variance, gamma = reference.value_norm.moving_variance, reference.query_norm.gamma
    variance.assign(np.full(variance.shape, 1e-6, "float32"))
    gamma.assign(np.full(gamma.shape, 1e-3, "float32"))
    mixed.set_weights(reference.get_weights())

    outputs = to_numpy(mixed(inputs, training=False))
    expected = to_numpy(reference(inputs, training=False))

    assert mixed.query_norm.compute_dtype == mixed.value_norm.compute_dtype
    assert mixed.value_norm.compute_dtype == "float32"
    assert np.abs(expected).max() < FLOAT16_MAX / 100
    assert np.all(np.isfinite(outputs))
    assert np.abs(outputs - expected).max() < 1e-2 * np.abs(expected).max()


@pytest.mark.parametrize("context", sorted(CONTEXTS))
def test_mixed_float16_overflows_only_where_float16_cannot_hold_the_result(context):
    # The initial statistics (mean 0, variance 1) do not normalise inputs
    # of 100 in inference: the float32 result reaches ~1e6. float16 holds
    # up to 65504; past it the output is inf, as for any Keras layer.
    inputs = random(2, 12, 12, 32, scale=100.0)
    reference, mixed = float32_and_mixed_layers(inputs, **CONTEXTS[context])

    outputs = to_numpy(mixed(inputs, training=False))
    expected = to_numpy(reference(inputs, training=False))

    beyond = np.abs(expected) > 1.1 * FLOAT16_MAX
    within = np.abs(expected) < 0.9 * FLOAT16_MAX
    assert beyond.any() and within.any()
    assert np.all(np.isinf(outputs[beyond]))
    assert np.all(np.isfinite(outputs[within]))


# --- empty batches ----------------------------------------------------------

EMPTY_CASES = {
    "image-global": ((5, 6, 16), dict(scope=None, dim_k=4, heads=2)),
    "image-local-einsum": ((6, 5, 16), dict(scope=3, dim_k=4, implementation="einsum")),
    "image-local-conv": ((6, 5, 16), dict(scope=3, dim_k=4, implementation="conv")),
    "image-u3-conv": ((5, 5, 12), dict(scope=3, dim_k=4, dim_u=3, heads=3)),
    "image-causal": ((4, 5, 8), dict(scope=3, dim_k=4, causal=True)),
    "image-causal-conv": (
        (4, 5, 8),
        dict(scope=3, dim_k=4, causal=True, implementation="conv"),
    ),
    "image-strided": ((6, 6, 8), dict(scope=3, dim_k=4, strides=2)),
    "sequence-global": ((9, 8), dict(scope=None, dim_k=4, heads=2)),
    "sequence-l2-conv": ((9, 8), dict(scope=5, dim_k=4, key_normalization="l2")),
}


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("case", sorted(EMPTY_CASES))
def test_empty_batch_gives_an_empty_output(case, training):
    spatial_and_channels, kwargs = EMPTY_CASES[case]
    layer = LambdaLayer(**kwargs)
    layer.build((None,) + spatial_and_channels)
    statistics = [to_numpy(w) for w in layer.non_trainable_weights]

    outputs = layer(np.zeros((0,) + spatial_and_channels, "float32"), training=training)

    assert tuple(outputs.shape) == layer.compute_output_shape(
        (0,) + spatial_and_channels
    )
    # Training on no examples learns nothing (Keras' batch normalisation
    # alone would write NaN moving statistics).
    for before, after in zip(statistics, layer.non_trainable_weights):
        np.testing.assert_array_equal(to_numpy(after), before)


@pytest.mark.parametrize("causal", [False, True])
def test_empty_batch_with_a_context_mask(causal):
    mask = np.tril(np.ones((9, 9), "float32"))
    layer = LambdaLayer(scope=None, dim_k=4, causal=causal)

    outputs = layer(np.zeros((0, 9, 8), "float32"), context_mask=mask)

    assert tuple(outputs.shape) == (0, 9, 8)


@pytest.mark.parametrize("dim_u", [1, 2])
def test_lambda_convolution_gradients_of_an_empty_batch(dim_u):
    values = np.zeros((0, 6, 5, 4, dim_u), "float32")
    kernel = random(3, 3, 2, dim_u)
    upstream = np.zeros((0, 6, 5, 4, 2), "float32")

    values_gradient, kernel_gradient = _lambda_convolution_gradients(
        ops.convert_to_tensor(values), ops.convert_to_tensor(kernel), upstream
    )

    assert tuple(values_gradient.shape) == values.shape
    np.testing.assert_array_equal(to_numpy(kernel_gradient), np.zeros_like(kernel))


# --- constructor arguments and calls ----------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(heads=0), "heads=0"),
        (dict(filters=0), "filters=0"),
        (dict(filters=10, heads=0), "heads=0"),
        (dict(filters=10, heads=3), "filters=10, heads=3"),
        (dict(dim_k=0), "dim_k=0"),
        (dict(dim_u=0), "dim_u=0"),
        (dict(heads=True), "heads=True"),
        (dict(scope=2), "scope=2"),
        (dict(scope=-1), "scope=-1"),
        (dict(scope=3.0), "scope=3.0"),
        (dict(scope=True), "scope=True"),
        (dict(key_normalization=None), "key_normalization=None"),
        (dict(key_normalization="Softmax"), "key_normalization='Softmax'"),
        (dict(implementation="Conv"), "implementation='Conv'"),
        (dict(implementation=None), "implementation=None"),
        (dict(max_size=(4, 4, 4)), r"max_size=\(4, 4, 4\)"),
        (dict(strides=2.0), "strides=2.0"),
        (dict(strides=True), "strides=True"),
        (dict(batch_norm_epsilon=math.inf), "batch_norm_epsilon=inf"),
        (dict(batch_norm_epsilon=math.nan), "batch_norm_epsilon=nan"),
        (dict(kernel_initializer="bogus"), "kernel_initializer='bogus'"),
        (dict(embeddings_initializer=3), "embeddings_initializer=3"),
    ],
)
def test_hostile_constructor_arguments_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LambdaLayer(**kwargs)


def test_relative_position_embedding_initializer_is_named():
    with pytest.raises(ValueError, match="embeddings_initializer='bogus'"):
        RelativePositionEmbedding(embeddings_initializer="bogus")


@pytest.mark.parametrize(
    "shape",
    [(2, 8), (2, 3, 4, 5, 8)],
)
def test_input_of_the_wrong_rank_is_named(shape):
    with pytest.raises(ValueError, match=re.escape(f"input_shape={shape}")):
        LambdaLayer(scope=3, dim_k=4)(np.zeros(shape, "float32"))


@pytest.mark.parametrize(
    "built, called",
    [
        ((2, 5, 5, 8), (2, 5, 5, 16)),  # channels change
        ((2, 5, 5, 8), (2, 5, 8)),  # image layer called on a sequence
        ((2, 9, 8), (2, 3, 3, 8)),  # sequence layer called on an image
        ((2, 5, 5, 8), (2, 8)),
    ],
)
@pytest.mark.parametrize("use_batch_norm", [True, False])
def test_call_with_another_rank_or_channels_than_built(built, called, use_batch_norm):
    layer = LambdaLayer(scope=3, dim_k=4, use_batch_norm=use_batch_norm)
    layer(np.zeros(built, "float32"))

    with pytest.raises(ValueError) as raised:
        layer(np.zeros(called, "float32"))

    message = str(raised.value)
    assert f"rank {len(built)} with {built[-1]} channels" in message
    assert f"Received: input_shape={called}" in message


def test_global_layer_on_an_empty_image_is_named():
    with pytest.raises(ValueError, match=r"input spatial shape \(0,\)"):
        LambdaLayer(scope=None, dim_k=4)(np.zeros((1, 0, 8), "float32"))


def test_symbolic_channels_change_is_named():
    layer = LambdaLayer(scope=3, dim_k=4)
    layer(keras.Input((5, 5, 8)))

    with pytest.raises(ValueError, match=r"Received: input_shape=\(None, 5, 5, 4\)"):
        layer(keras.Input((5, 5, 4)))
