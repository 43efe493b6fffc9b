"""lambda_keras.ops against the naive numpy reference of Eq. 1-5."""

import numpy as np
import numpy_reference
import pytest
from backend_gradients import value_and_gradients
from keras import ops

from lambda_keras.ops import CONV_FORMULATIONS
from lambda_keras.ops import causal_kernel_mask
from lambda_keras.ops import causal_mask
from lambda_keras.ops import content_lambda
from lambda_keras.ops import lambda_convolution
from lambda_keras.ops import lambda_interaction
from lambda_keras.ops import normalize_keys
from lambda_keras.ops import position_contraction_order
from lambda_keras.ops import position_lambdas
from lambda_keras.ops import relative_position_embeddings

RNG = np.random.default_rng(0)
TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def random(*shape):
    return RNG.standard_normal(shape).astype("float32")


def normalized_keys(batch, length, dim_k, dim_u):
    keys = random(batch, length, dim_k, dim_u)
    return np.stack([numpy_reference.normalize(k, "softmax") for k in keys])


def random_mask(length):
    mask = (RNG.random((length, length)) < 0.6).astype("float32")
    mask[np.arange(length), np.arange(length)] = 1.0
    return mask


@pytest.mark.parametrize("dim_v, order", [(5, "lambdas_first"), (40, "queries_first")])
@pytest.mark.parametrize("dim_u", [1, 3])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("parts", ["both", "content", "position"])
def test_lambda_interaction_matches_reference(dim_u, masked, parts, dim_v, order):
    batch, length, heads, dim_k = 2, 10, 3, 4
    queries = random(batch, length, heads, dim_k)
    keys = normalized_keys(batch, length, dim_k, dim_u)
    values = random(batch, length, dim_v, dim_u)
    embeddings = random(length, length, dim_k, dim_u)
    mask = random_mask(length) if masked else None
    keys = None if parts == "position" else keys
    embeddings = None if parts == "content" else embeddings
    assert position_contraction_order(heads, dim_k, dim_v, dim_u, length) == order

    outputs = lambda_interaction(queries, keys, values, embeddings, mask)

    expected = numpy_reference.lambda_outputs(queries, keys, values, embeddings, mask)
    assert tuple(outputs.shape) == (batch, length, heads, dim_v)
    np.testing.assert_allclose(ops.convert_to_numpy(outputs), expected, **TOLERANCE)


@pytest.mark.parametrize("normalization", ["softmax", "l2", "none"])
@pytest.mark.parametrize("dim_u", [1, 2])
def test_keys_normalised_over_visible_context(normalization, dim_u):
    batch, length, heads, dim_k, dim_v = 2, 9, 2, 4, 3
    queries = random(batch, length, heads, dim_k)
    raw_keys = 3.0 * random(batch, length, dim_k, dim_u)
    values = random(batch, length, dim_v, dim_u)
    mask = random_mask(length)

    outputs = lambda_interaction(
        queries, raw_keys, values, mask=mask, key_normalization=normalization
    )

    expected = numpy_reference.lambda_outputs(
        queries, raw_keys, values, mask=mask, normalization=normalization
    )
    np.testing.assert_allclose(ops.convert_to_numpy(outputs), expected, **TOLERANCE)


LOCAL_TABLES = [((7,), (5,)), ((4, 5), (3, 3))]
GLOBAL_TABLES = [((7,), (13,)), ((4, 5), (7, 9))]


@pytest.mark.parametrize(
    "method, spatial_shape, table_shape, context",
    [
        (method, *tables, context)
        for method in ("queries_first", "lambdas_first")
        for tables in LOCAL_TABLES + GLOBAL_TABLES
        for context in ("full", "masked", "causal")
    ]
    # The lambda convolution takes a local table and no general mask.
    + [
        ("convolution", *tables, context)
        for tables in LOCAL_TABLES
        for context in ("full", "causal")
    ],
)
@pytest.mark.parametrize("dim_u", [1, 2])
def test_lambda_interaction_from_a_table_matches_reference(
    method, spatial_shape, table_shape, context, dim_u
):
    batch, heads, dim_k, dim_v = 2, 2, 4, 3
    length = int(np.prod(spatial_shape))
    queries = random(batch, length, heads, dim_k)
    raw_keys = 2.0 * random(batch, length, dim_k, dim_u)
    values = random(batch, length, dim_v, dim_u)
    table = random(*table_shape, dim_k, dim_u)
    bias = random(dim_k)
    mask = random_mask(length) if context == "masked" else None

    outputs = lambda_interaction(
        queries,
        raw_keys,
        values,
        mask=mask,
        table=table,
        spatial_shape=spatial_shape,
        causal=context == "causal",
        key_normalization="softmax",
        position_bias=bias,
        position_method=method,
    )

    if context == "causal":
        mask = np.tril(np.ones((length, length)))
    expected = numpy_reference.lambda_outputs(
        queries,
        raw_keys,
        values,
        numpy_reference.relative_embeddings(table, spatial_shape),
        mask,
        normalization="softmax",
        position_bias=bias,
    )
    np.testing.assert_allclose(ops.convert_to_numpy(outputs), expected, **TOLERANCE)


@pytest.mark.parametrize("normalization", ["softmax", "l2"])
def test_unmasked_normalisation_is_over_context_positions(normalization):
    keys = random(2, 7, 4, 2)
    normalized, denominators = normalize_keys(keys, normalization)
    assert denominators is None
    expected = np.stack([numpy_reference.normalize(k, normalization) for k in keys])
    np.testing.assert_allclose(ops.convert_to_numpy(normalized), expected, **TOLERANCE)


def test_masked_softmax_survives_large_logits():
    keys = 500.0 * random(1, 12, 4, 1)
    numerators, denominators = normalize_keys(keys, "softmax", causal_mask(12))
    values = random(1, 12, 3, 1)
    lam = content_lambda(numerators, values, causal_mask(12), denominators)
    assert np.all(np.isfinite(ops.convert_to_numpy(lam)))


@pytest.mark.parametrize(
    "spatial_shape, table_shape",
    [((7,), (13,)), ((7,), (5,)), ((4, 5), (7, 9)), ((4, 5), (3, 3)), ((3, 6), (9, 9))],
)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("depth_first", [False, True])
def test_relative_position_embeddings_match_reference(
    spatial_shape, table_shape, masked, depth_first
):
    table = random(*table_shape, 4, 2)
    length = int(np.prod(spatial_shape))
    mask = random_mask(length) if masked else None

    embeddings = relative_position_embeddings(
        ops.convert_to_tensor(table), spatial_shape, mask, depth_first
    )

    expected = numpy_reference.relative_embeddings(table, spatial_shape)
    if masked:
        expected = expected * mask[:, :, None, None]
    if depth_first:
        expected = expected.transpose(2, 3, 0, 1)
    np.testing.assert_allclose(ops.convert_to_numpy(embeddings), expected, **TOLERANCE)


@pytest.mark.parametrize("formulation", CONV_FORMULATIONS)
@pytest.mark.parametrize("spatial_shape", [(11,), (6, 7)])
@pytest.mark.parametrize("dim_u", [1, 4])
@pytest.mark.parametrize("scope", [3, 5])
def test_lambda_convolution_equals_masked_einsum(
    spatial_shape, dim_u, scope, formulation
):
    batch, dim_k, dim_v = 2, 4, 3
    table = random(*(scope,) * len(spatial_shape), dim_k, dim_u)
    values = random(batch, *spatial_shape, dim_v, dim_u)
    length = int(np.prod(spatial_shape))

    convolved = lambda_convolution(values, table, formulation)

    embeddings = numpy_reference.relative_embeddings(table, spatial_shape)
    flat_values = values.reshape(batch, length, dim_v, dim_u)
    expected = np.einsum("nmku,bmvu->bnkv", embeddings, flat_values)
    np.testing.assert_allclose(ops.convert_to_numpy(convolved), expected, **TOLERANCE)
    einsum = position_lambdas(flat_values, embeddings.astype("float32"))
    np.testing.assert_allclose(ops.convert_to_numpy(einsum), expected, **TOLERANCE)


@pytest.mark.parametrize(
    "spatial_shape, table_shape", [((7,), (13,)), ((7,), (5,)), ((4, 5), (7, 9))]
)
@pytest.mark.parametrize("dim_u", [1, 2])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("source", ["table", "dense"])
def test_position_lambdas_match_reference(
    spatial_shape, table_shape, dim_u, masked, source
):
    batch, dim_k, dim_v = 2, 4, 3
    length = int(np.prod(spatial_shape))
    table = random(*table_shape, dim_k, dim_u)
    values = random(batch, length, dim_v, dim_u)
    mask = random_mask(length) if masked else None
    embeddings = numpy_reference.relative_embeddings(table, spatial_shape)

    if source == "table":
        lambdas = position_lambdas(
            values, mask=mask, table=table, spatial_shape=spatial_shape
        )
    else:
        lambdas = position_lambdas(values, embeddings.astype("float32"), mask)

    if masked:
        embeddings = embeddings * mask[:, :, None, None]
    expected = np.einsum("nmku,bmvu->bnkv", embeddings, values)
    np.testing.assert_allclose(ops.convert_to_numpy(lambdas), expected, **TOLERANCE)


@pytest.mark.parametrize("formulation", CONV_FORMULATIONS)
@pytest.mark.parametrize("spatial_shape", [(11,), (6, 7)])
@pytest.mark.parametrize("dim_u", [1, 3])
@pytest.mark.parametrize("scope", [3, 5])
def test_lambda_convolution_gradients_match_reference(
    spatial_shape, dim_u, scope, formulation
):
    batch, dim_k, dim_v = 2, 4, 3
    table = random(*(scope,) * len(spatial_shape), dim_k, dim_u)
    values = random(batch, *spatial_shape, dim_v, dim_u)
    upstream = random(batch, int(np.prod(spatial_shape)), dim_k, dim_v)

    _, (values_gradient, table_gradient) = value_and_gradients(
        lambda v, t: (
            lambda_convolution(v, t, formulation) * ops.convert_to_tensor(upstream)
        ),
        values,
        table,
    )

    _, expected_values, expected_table = numpy_reference.position_lambdas_and_adjoint(
        table, values.reshape(batch, -1, dim_v, dim_u), spatial_shape, upstream
    )
    np.testing.assert_allclose(
        values_gradient, expected_values.reshape(values.shape), **TOLERANCE
    )
    np.testing.assert_allclose(table_gradient, expected_table, rtol=1e-5, atol=1e-4)


def test_causal_masks():
    np.testing.assert_array_equal(
        ops.convert_to_numpy(causal_mask(4)), np.tril(np.ones((4, 4)))
    )
    np.testing.assert_array_equal(causal_kernel_mask(5, 1), [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(
        causal_kernel_mask(3, 2), [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    )


def test_errors_name_the_argument():
    values = random(1, 4, 2, 1)
    queries = random(1, 4, 1, 2)
    table = random(3, 2, 1)
    with pytest.raises(ValueError, match="keys=None, embeddings=None"):
        lambda_interaction(queries, None, values)
    with pytest.raises(ValueError, match="not both"):
        lambda_interaction(
            queries, None, values, random(4, 4, 2, 1), table=table, spatial_shape=(4,)
        )
    with pytest.raises(ValueError, match="position_method='fft'"):
        lambda_interaction(
            queries, None, values, random(4, 4, 2, 1), position_method="fft"
        )
    with pytest.raises(ValueError, match="mask is None: False"):
        lambda_interaction(
            queries,
            None,
            values,
            mask=np.ones((4, 4)),
            table=table,
            spatial_shape=(4,),
            position_method="convolution",
        )
    with pytest.raises(ValueError, match="spatial_shape=None"):
        lambda_interaction(queries, None, values, table=table)
    with pytest.raises(ValueError, match="normalization='cosine'"):
        normalize_keys(random(1, 4, 2, 1), "cosine")
    with pytest.raises(ValueError, match="key_denominators"):
        content_lambda(random(1, 4, 2, 1), values, key_denominators=random(1, 4, 2, 1))
