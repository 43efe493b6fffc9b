"""LambdaLayer against the numpy reference, its invariances, and its errors.

Backend-agnostic: CI also runs this module under KERAS_BACKEND=jax and
KERAS_BACKEND=torch.
"""

import keras
import numpy as np
import numpy_reference
import pytest
from keras import ops

from lambda_keras.layers import LambdaLayer
from lambda_keras.layers import RelativePositionEmbedding
from lambda_keras.ops import CONV_FORMULATIONS

RNG = np.random.default_rng(0)
TOLERANCE = {"rtol": 1e-4, "atol": 1e-4}


def random(*shape, scale=1.0):
    return (scale * RNG.standard_normal(shape)).astype("float32")


def built_layer(inputs, **kwargs):
    """A layer built on `inputs` with non-trivial batch-norm statistics."""
    layer = LambdaLayer(**kwargs)
    layer.build(inputs.shape)
    if layer.use_batch_norm:
        for norm in (layer.query_norm, layer.value_norm):
            size = norm.gamma.shape[0]
            norm.gamma.assign(1.0 + 0.3 * random(size))
            norm.beta.assign(0.3 * random(size))
            norm.moving_mean.assign(0.3 * random(size))
            norm.moving_variance.assign(1.0 + RNG.random(size).astype("float32"))
    if layer.use_position_bias:
        layer.position_bias.assign(random(layer.dim_k))
    return layer


def run(layer, inputs, **kwargs):
    return ops.convert_to_numpy(layer(inputs, training=False, **kwargs))


CASES = {
    "image-global": ((2, 5, 6, 16), dict(scope=None, dim_k=4, heads=2)),
    "image-local-einsum": (
        (2, 6, 5, 16),
        dict(scope=3, dim_k=4, implementation="einsum"),
    ),
    "image-local-conv": ((2, 6, 5, 16), dict(scope=3, dim_k=4, implementation="conv")),
    "image-u3-conv": ((1, 5, 5, 12), dict(scope=3, dim_k=4, dim_u=3, heads=3)),
    "image-filters": ((2, 4, 4, 8), dict(filters=12, scope=5, dim_k=4, heads=3)),
    "image-causal": ((1, 4, 5, 8), dict(scope=3, dim_k=4, causal=True)),
    "image-causal-conv": (
        (1, 4, 5, 8),
        dict(scope=3, dim_k=4, causal=True, implementation="conv"),
    ),
    "sequence-global": ((2, 9, 8), dict(scope=None, dim_k=4, heads=2)),
    "sequence-local-u2": (
        (2, 9, 8),
        dict(scope=5, dim_k=4, dim_u=2, implementation="einsum"),
    ),
    "sequence-causal": ((2, 9, 8), dict(scope=None, dim_k=4, causal=True)),
    "sequence-causal-conv": ((2, 9, 8), dict(scope=5, dim_k=4, dim_u=2, causal=True)),
    "sequence-l2": ((2, 9, 8), dict(scope=None, dim_k=4, key_normalization="l2")),
    "sequence-causal-l2": (
        (2, 9, 8),
        dict(scope=3, dim_k=4, causal=True, key_normalization="l2"),
    ),
    "sequence-no-norm": (
        (2, 9, 8),
        dict(scope=None, dim_k=4, key_normalization="none"),
    ),
    "content-only": ((2, 9, 8), dict(use_position=False, dim_k=4)),
    "position-only": ((2, 4, 4, 8), dict(use_content=False, scope=3, dim_k=4)),
    "position-only-conv": (
        (2, 4, 4, 8),
        dict(use_content=False, scope=3, dim_k=4, implementation="conv"),
    ),
    "no-batch-norm": ((2, 9, 8), dict(scope=None, dim_k=4, use_batch_norm=False)),
    "timm-style-conv": (
        (2, 6, 5, 16),
        dict(scope=3, dim_k=4, use_position_bias=True, batch_norm_epsilon=1e-5),
    ),
    "timm-style-einsum": (
        (2, 6, 5, 16),
        dict(scope=3, dim_k=4, use_position_bias=True, implementation="einsum"),
    ),
    "timm-style-global": (
        (2, 5, 6, 16),
        dict(scope=None, dim_k=4, use_position_bias=True, batch_norm_epsilon=1e-5),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_layer_matches_numpy_reference(case):
    shape, kwargs = CASES[case]
    inputs = random(*shape)
    layer = built_layer(inputs, **kwargs)

    outputs = run(layer, inputs)

    expected = numpy_reference.lambda_layer(layer, inputs)
    assert outputs.shape == expected.shape
    np.testing.assert_allclose(outputs, expected, **TOLERANCE)


@pytest.mark.parametrize("causal", [False, True])
def test_context_mask_matches_reference(causal):
    inputs = random(2, 3, 4, 8)
    mask = (RNG.random((12, 12)) < 0.5).astype("float32")
    mask[np.arange(12), np.arange(12)] = 1.0
    layer = built_layer(inputs, scope=3, dim_k=4, causal=causal)

    outputs = run(layer, inputs, context_mask=mask)

    expected = numpy_reference.lambda_layer(layer, inputs, context_mask=mask)
    np.testing.assert_allclose(outputs, expected, **TOLERANCE)


@pytest.mark.parametrize(
    "shape, kwargs",
    [
        ((2, 9, 8, 8), dict(scope=5, dim_u=1)),
        ((2, 9, 8, 8), dict(scope=5, dim_u=4)),
        ((2, 15, 8), dict(scope=7, dim_u=1)),
        ((2, 15, 8), dict(scope=7, dim_u=4)),
        ((1, 9, 8, 8), dict(scope=5, causal=True)),
    ],
)
@pytest.mark.parametrize("implementation", CONV_FORMULATIONS)
def test_einsum_and_conv_implementations_agree(shape, kwargs, implementation):
    inputs = random(*shape)
    einsum = built_layer(inputs, dim_k=4, implementation="einsum", **kwargs)
    conv = LambdaLayer(dim_k=4, implementation=implementation, **kwargs)
    conv.build(inputs.shape)

    # The same weights, in name and shape, whatever the formulation.
    def layout(layer):
        return [(w.path.split("/", 1)[1], w.shape) for w in layer.weights]

    assert layout(conv) == layout(einsum)
    conv.set_weights(einsum.get_weights())

    np.testing.assert_allclose(run(conv, inputs), run(einsum, inputs), **TOLERANCE)


def test_position_interactions_are_translation_equivariant():
    scope, shift = 3, (1, 2)
    inputs = random(1, 10, 10, 8)
    layer = built_layer(inputs, use_content=False, scope=scope, dim_k=4)
    shifted = np.roll(inputs, shift, axis=(1, 2))

    outputs = np.roll(run(layer, inputs), shift, axis=(1, 2))
    outputs_of_shifted = run(layer, shifted)

    # Away from the borders (and the wrapped-around rows/columns) the two agree.
    border = scope // 2 + max(shift)
    interior = (slice(None), slice(border, -border), slice(border, -border))
    np.testing.assert_allclose(
        outputs_of_shifted[interior], outputs[interior], **TOLERANCE
    )
    assert not np.allclose(outputs_of_shifted, outputs, **TOLERANCE)


def test_content_only_layer_is_permutation_equivariant():
    inputs = random(2, 12, 8)
    layer = built_layer(inputs, use_position=False, dim_k=4)
    permutation = RNG.permutation(12)

    np.testing.assert_allclose(
        run(layer, inputs[:, permutation]),
        run(layer, inputs)[:, permutation],
        **TOLERANCE,
    )


@pytest.mark.parametrize("implementation", ["einsum", "conv"])
@pytest.mark.parametrize("shape", [(2, 12, 8), (1, 5, 6, 8)])
def test_causal_outputs_ignore_later_positions(implementation, shape):
    inputs = random(*shape)
    layer = built_layer(
        inputs, scope=3, dim_k=4, causal=True, implementation=implementation
    )
    flat = inputs.reshape(shape[0], -1, shape[-1])
    position = flat.shape[1] // 2
    changed = flat.copy()
    changed[:, position + 1 :] += random(*changed[:, position + 1 :].shape, scale=5.0)
    changed = changed.reshape(shape)

    before = run(layer, inputs).reshape(flat.shape)
    after = run(layer, changed).reshape(flat.shape)

    np.testing.assert_allclose(
        after[:, : position + 1], before[:, : position + 1], **TOLERANCE
    )
    assert not np.allclose(
        after[:, position + 1 :], before[:, position + 1 :], **TOLERANCE
    )


def test_causal_training_without_batch_norm_stays_causal():
    inputs = random(2, 10, 8)
    layer = LambdaLayer(scope=None, dim_k=4, causal=True, use_batch_norm=False)
    changed = inputs.copy()
    changed[:, 6:] += 3.0
    before = ops.convert_to_numpy(layer(inputs, training=True))
    after = ops.convert_to_numpy(layer(changed, training=True))
    np.testing.assert_allclose(after[:, :6], before[:, :6], **TOLERANCE)


@pytest.mark.parametrize("implementation", ["einsum", "conv"])
def test_position_lambdas_are_local(implementation):
    scope = 3
    inputs = random(1, 9, 9, 8)
    layer = built_layer(
        inputs, use_content=False, scope=scope, dim_k=4, implementation=implementation
    )
    changed = inputs.copy()
    changed[:, 0, :] += 5.0  # row 0 is outside the 3x3 scope of rows >= 2
    changed[:, :, 8] += 5.0  # so is column 8 for columns <= 6

    before, after = run(layer, inputs), run(layer, changed)

    np.testing.assert_allclose(after[:, 2:, :7], before[:, 2:, :7], **TOLERANCE)
    assert not np.allclose(after[:, 1], before[:, 1], **TOLERANCE)


def test_global_embeddings_run_at_any_size_up_to_max_size():
    large = LambdaLayer(scope=None, max_size=8, dim_k=4, heads=2)
    large.build((None, 8, 8, 8))
    small_inputs = random(2, 5, 6, 8)
    small = LambdaLayer(scope=None, max_size=(5, 6), dim_k=4, heads=2)
    small.build(small_inputs.shape)
    table = large.position_embedding.table.numpy()
    sliced = table[8 - 5 : 8 + 5 - 1, 8 - 6 : 8 + 6 - 1]
    weights = large.get_weights()
    weights[[w.shape for w in weights].index(table.shape)] = sliced
    small.set_weights(weights)

    assert run(large, random(2, 8, 8, 8)).shape == (2, 8, 8, 8)
    np.testing.assert_allclose(
        run(large, small_inputs), run(small, small_inputs), **TOLERANCE
    )


def test_runs_on_unknown_spatial_size():
    inputs = keras.Input((None, None, 8))
    outputs = LambdaLayer(scope=None, max_size=10, dim_k=4)(inputs)
    outputs = LambdaLayer(scope=3, dim_k=4, strides=2)(outputs)
    model = keras.Model(inputs, outputs)
    for size in (6, 9):
        images = random(2, size, size, 8)
        assert model.predict(images, verbose=0).shape == (
            2,
            (size + 1) // 2,
            (size + 1) // 2,
            8,
        )


def test_pool_size_two_downsamples_like_timm():
    inputs = random(2, 8, 8, 8)
    strided = built_layer(inputs, scope=3, dim_k=4, strides=2, pool_size=2)
    plain = LambdaLayer(scope=3, dim_k=4)
    plain.build(inputs.shape)
    plain.set_weights(strided.get_weights())
    full = run(plain, inputs)
    expected = full.reshape(2, 4, 2, 4, 2, 8).mean(axis=(2, 4))

    np.testing.assert_allclose(run(strided, inputs), expected, **TOLERANCE)


def test_strides_average_pool_the_output():
    inputs = random(2, 7, 7, 8)
    strided = built_layer(inputs, scope=3, dim_k=4, strides=2)
    plain = LambdaLayer(scope=3, dim_k=4)
    plain.build(inputs.shape)
    plain.set_weights(strided.get_weights())
    pooled = numpy_reference.average_pool(run(plain, inputs), pool_size=3, strides=2)

    outputs = run(strided, inputs)

    assert outputs.shape == (2, 4, 4, 8)
    assert strided.compute_output_shape(inputs.shape) == (2, 4, 4, 8)
    np.testing.assert_allclose(outputs, pooled, **TOLERANCE)


def test_shared_position_embeddings():
    inputs = keras.Input((6, 6, 8))
    embedding = RelativePositionEmbedding(dim_k=4, scope=None, max_size=6)
    table = embedding(inputs)
    first = LambdaLayer(scope=None, dim_k=4)
    second = LambdaLayer(scope=None, dim_k=4)
    outputs = second(
        first(inputs, position_embeddings=table), position_embeddings=table
    )
    model = keras.Model(inputs, outputs)

    tables = [w for w in model.weights if "table" in w.path]
    assert len(tables) == 1 and first.position_embedding is None
    images = random(2, 6, 6, 8)
    expected = numpy_reference.lambda_layer(
        second,
        numpy_reference.lambda_layer(first, images, table=embedding.table.numpy()),
        table=embedding.table.numpy(),
    )
    # Two stacked layers with unit-normal embeddings reach outputs of ~300:
    # float32 round-off is judged against that scale.
    np.testing.assert_allclose(
        model.predict(images, verbose=0),
        expected,
        rtol=1e-4,
        atol=1e-5 * np.abs(expected).max(),
    )


def small_model(**kwargs):
    inputs = keras.Input((6, 6, 8))
    x = LambdaLayer(dim_k=4, **kwargs)(inputs)
    outputs = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(scope=None),
        dict(scope=3, implementation="conv", dim_u=2),
        dict(scope=3, use_position_bias=True),
    ],
)
def test_gradients_reach_every_weight_and_training_reduces_loss(kwargs):
    model = small_model(**kwargs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    images = random(16, 6, 6, 8)
    targets = images.mean(axis=(1, 2, 3))[:, None] * 4.0
    initial = [w.numpy().copy() for w in model.trainable_weights]

    first = model.fit(images, targets, epochs=1, batch_size=16, verbose=0)
    changed = [
        w.path
        for w, old in zip(model.trainable_weights, initial)
        if not np.array_equal(w.numpy(), old)
    ]
    last = model.fit(images, targets, epochs=40, batch_size=16, verbose=0)

    # Adam moves every weight whose gradient is non-zero by about the
    # learning rate; a weight cut off from the loss keeps its value.
    assert changed == [w.path for w in model.trainable_weights]
    assert len(changed) >= 6  # projection, 2 x BN gamma/beta, embeddings, head
    assert last.history["loss"][-1] < 0.5 * first.history["loss"][0]


def test_keras_save_and_load_round_trip(tmp_path):
    inputs = keras.Input((6, 6, 8))
    table = RelativePositionEmbedding(dim_k=4, scope=3)(inputs)
    x = LambdaLayer(scope=None, dim_k=4, key_normalization="l2")(inputs)
    x = LambdaLayer(scope=3, dim_k=4, dim_u=2, implementation="conv", strides=2)(x)
    x = LambdaLayer(scope=3, dim_k=4, causal=True)(x)
    y = LambdaLayer(scope=3, dim_k=4)(inputs, position_embeddings=table)
    model = keras.Model(inputs, [x, y])
    images = random(2, 6, 6, 8)
    path = tmp_path / "model.keras"

    model.save(path)
    loaded = keras.saving.load_model(path)

    for expected, actual in zip(
        model.predict(images, verbose=0), loaded.predict(images, verbose=0)
    ):
        np.testing.assert_array_equal(actual, expected)
    layer = [layer for layer in loaded.layers if isinstance(layer, LambdaLayer)][1]
    assert (layer.dim_u, layer.implementation, layer.strides) == (2, "conv", 2)


@pytest.mark.parametrize("implementation", ["auto", "conv", *CONV_FORMULATIONS])
def test_config_keeps_the_implementation(implementation):
    layer = LambdaLayer(scope=3, dim_k=4, implementation=implementation)
    config = layer.get_config()

    assert config["implementation"] == implementation
    assert LambdaLayer.from_config(config).implementation == implementation


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize(
    "kwargs", [dict(scope=None), dict(scope=5, implementation="conv")]
)
def test_mixed_precision_stays_finite_on_large_inputs(policy, kwargs):
    inputs = random(2, 12, 12, 32, scale=100.0)
    reference = LambdaLayer(dim_k=16, heads=4, **kwargs)
    reference.build(inputs.shape)
    mixed = LambdaLayer(dim_k=16, heads=4, dtype=policy, **kwargs)
    mixed.build(inputs.shape)
    mixed.set_weights(reference.get_weights())

    outputs = ops.convert_to_numpy(ops.cast(mixed(inputs, training=True), "float32"))
    expected = ops.convert_to_numpy(reference(inputs, training=True))

    assert mixed.compute_dtype == policy.split("_")[1]
    assert np.all(np.isfinite(outputs))
    # bfloat16 keeps 8 bits of mantissa, float16 11.
    scale = np.abs(expected).max()
    assert np.abs(outputs - expected).max() < 0.1 * scale


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(filters=10, heads=4), "filters=10, heads=4"),
        (dict(scope=4), "scope=4"),
        (dict(scope=0), "scope=0"),
        (dict(scope=-3), "scope=-3"),
        (dict(scope=23, max_size=8), "scope=23"),
        (dict(dim_k=0), "dim_k=0"),
        (dict(heads=2.5), "heads=2.5"),
        (dict(dim_u=-1), "dim_u=-1"),
        (dict(implementation="fft"), "implementation='fft'"),
        (dict(implementation="conv", scope=None), "implementation='conv', scope=None"),
        (
            dict(implementation="conv2d", scope=None),
            "implementation='conv2d', scope=None",
        ),
        (dict(key_normalization="cosine"), "key_normalization='cosine'"),
        (dict(use_content=False, use_position=False), "use_position=False"),
        (dict(strides=3), "strides=3"),
        (dict(causal="yes"), "causal='yes'"),
        (dict(max_size=0), "max_size=0"),
        (dict(batch_norm_epsilon=0), "batch_norm_epsilon=0"),
        (dict(pool_size=0), "pool_size=0"),
        (
            dict(use_position_bias=True, use_position=False),
            "use_position_bias=True, use_position=False",
        ),
    ],
)
def test_constructor_errors_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        LambdaLayer(**kwargs)


def test_input_errors_name_the_value():
    with pytest.raises(ValueError, match=r"input_shape=\(2, 3, 4, 5, 8\)"):
        LambdaLayer()(random(2, 3, 4, 5, 8))
    with pytest.raises(ValueError, match=r"input_shape=\(2, 8\)"):
        LambdaLayer()(random(2, 8))
    with pytest.raises(ValueError, match=r"filters=6, heads=4"):
        LambdaLayer()(random(2, 5, 6))
    layer = LambdaLayer(scope=None, max_size=6, dim_k=4)
    with pytest.raises(ValueError, match=r"larger than the declared maximum.*\(7, 7\)"):
        layer(random(1, 7, 7, 8))
    layer(random(1, 6, 6, 8))
    with pytest.raises(ValueError, match=r"larger than the declared maximum.*\(7, 5\)"):
        layer(random(1, 7, 5, 8))
    with pytest.raises(ValueError, match=r"context_mask.shape=\(4, 4\)"):
        LambdaLayer(scope=3, dim_k=4)(random(1, 3, 3, 8), context_mask=np.ones((4, 4)))
    with pytest.raises(ValueError, match="max_size=None"):
        keras.Model(
            *(lambda x: (x, LambdaLayer(scope=None)(x)))(keras.Input((None, 8)))
        )
    shared = RelativePositionEmbedding(dim_k=4, scope=5)(keras.Input((6, 6, 8)))
    with pytest.raises(ValueError, match=r"position_embeddings.shape=\(5, 5, 4, 1\)"):
        LambdaLayer(scope=3, dim_k=4)(
            keras.Input((6, 6, 8)), position_embeddings=shared
        )


def test_get_config_round_trip():
    layer = LambdaLayer(
        filters=32,
        dim_k=8,
        heads=8,
        dim_u=2,
        scope=None,
        max_size=(10, 12),
        use_content=False,
        key_normalization="l2",
        implementation="einsum",
        causal=True,
        strides=2,
        use_batch_norm=False,
        name="lambda",
    )
    clone = LambdaLayer.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.max_size == (10, 12) and clone.causal and clone.heads == 8
