"""The lambda convolution's formulations (Eq. 3) and the table that picks one.

Each formulation, with the backend's generic gradients and with
lambda_keras' custom ones, against the numpy reference of the position
lambdas and their adjoint; the causal kernel in each; and the cost table
against the benchmark reports it was filled from. CI runs this module on
TensorFlow, JAX and PyTorch (tests/test_backends.py).
"""

import json
import pathlib

import keras
import numpy as np
import numpy_reference
import pytest
from backend_gradients import value_and_gradients
from keras import ops

from lambda_keras.ops import CONV_FORMULATION_TABLE
from lambda_keras.ops import CONV_FORMULATIONS
from lambda_keras.ops import CUSTOM_GRADIENT_TABLE
from lambda_keras.ops import DEFAULT_CONV_FORMULATION
from lambda_keras.ops import backend_platform
from lambda_keras.ops import conv_formulation
from lambda_keras.ops import lambda_convolution
from lambda_keras.ops import lambda_interaction
from lambda_keras.ops import position_method
from lambda_keras.ops import uses_custom_gradients
from lambda_keras.ops import validate_implementation
from lambda_keras.ops.lambda_interaction import _CUSTOM_GRADIENT_CONVOLUTIONS
from lambda_keras.ops.lambda_interaction import _convolve

RNG = np.random.default_rng(0)
TOLERANCE = {"rtol": 1e-5, "atol": 1e-4}
RESULTS = pathlib.Path(__file__).parents[2] / "benchmarks" / "results"
BACKENDS = ("tensorflow", "jax", "torch")


def random(*shape):
    return RNG.standard_normal(shape).astype("float32")


def convolution(formulation, gradients):
    """The formulation with the backend's ("generic") or our ("custom")
    gradients, whatever the cost table picks."""
    if gradients == "custom":
        return _CUSTOM_GRADIENT_CONVOLUTIONS[formulation]
    return lambda values, kernel: _convolve(values, kernel, formulation)


@pytest.mark.parametrize("gradients", ["generic", "custom"])
@pytest.mark.parametrize("formulation", CONV_FORMULATIONS)
@pytest.mark.parametrize(
    "spatial_shape, dim_u, scope",
    # Even sizes (odd ones: test_lambda_interaction.py), a scope wider than
    # the input, |u| = 1 and > 1.
    [((8,), 1, 5), ((4, 6), 2, 3), ((5, 3), 1, 5)],
)
def test_formulation_and_its_gradients_match_the_reference(
    spatial_shape, dim_u, scope, formulation, gradients
):
    batch, dim_k, dim_v = 2, 4, 3
    table = random(*(scope,) * len(spatial_shape), dim_k, dim_u)
    values = random(batch, *spatial_shape, dim_v, dim_u)
    upstream = random(batch, int(np.prod(spatial_shape)), dim_k, dim_v)
    convolve = convolution(formulation, gradients)

    weighted, (values_gradient, table_gradient) = value_and_gradients(
        lambda v, t: convolve(v, t) * ops.convert_to_tensor(upstream), values, table
    )

    lambdas, expected_values, expected_table = (
        numpy_reference.position_lambdas_and_adjoint(
            table, values.reshape(batch, -1, dim_v, dim_u), spatial_shape, upstream
        )
    )
    np.testing.assert_allclose(weighted, lambdas * upstream, **TOLERANCE)
    np.testing.assert_allclose(
        values_gradient, expected_values.reshape(values.shape), **TOLERANCE
    )
    np.testing.assert_allclose(table_gradient, expected_table, **TOLERANCE)


@pytest.mark.parametrize("formulation", CONV_FORMULATIONS)
@pytest.mark.parametrize("spatial_shape, dim_u", [((6,), 2), ((4, 4), 1)])
def test_causal_convolution_matches_the_reference(spatial_shape, dim_u, formulation):
    batch, heads, dim_k, dim_v, scope = 2, 2, 4, 3, 3
    length = int(np.prod(spatial_shape))
    queries = random(batch, length, heads, dim_k)
    values = random(batch, length, dim_v, dim_u)
    table = random(*(scope,) * len(spatial_shape), dim_k, dim_u)

    outputs = lambda_interaction(
        queries,
        None,
        values,
        table=table,
        spatial_shape=spatial_shape,
        causal=True,
        position_method="convolution",
        convolution_formulation=formulation,
    )

    expected = numpy_reference.lambda_outputs(
        queries,
        None,
        values,
        numpy_reference.relative_embeddings(table, spatial_shape),
        np.tril(np.ones((length, length))),
    )
    np.testing.assert_allclose(ops.convert_to_numpy(outputs), expected, **TOLERANCE)


def test_default_formulation_is_the_table_row_of_this_backend():
    backend = keras.backend.backend()
    platform = backend_platform(backend)
    expected = CONV_FORMULATION_TABLE.get((backend, platform), DEFAULT_CONV_FORMULATION)

    assert platform in ("cpu", "gpu", "tpu", "mps")
    assert conv_formulation() == expected
    values, table = random(1, 7, 2, 1), random(3, 4, 1)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(lambda_convolution(values, table)),
        ops.convert_to_numpy(lambda_convolution(values, table, expected)),
    )


def test_table_covers_every_backend_and_platform():
    rows = {
        (backend, platform) for backend in BACKENDS for platform in ("cpu", "gpu")
    } | {("tensorflow", "tpu"), ("jax", "tpu")}
    assert set(CONV_FORMULATION_TABLE) == rows
    assert set(CONV_FORMULATION_TABLE.values()) <= set(CONV_FORMULATIONS)
    assert DEFAULT_CONV_FORMULATION in CONV_FORMULATIONS
    # A backend or platform without a row: the default.
    assert conv_formulation("openvino", "cpu") == DEFAULT_CONV_FORMULATION
    assert conv_formulation("torch", "mps") == DEFAULT_CONV_FORMULATION
    assert not uses_custom_gradients("conv3d", "torch", "mps")
    for formulations in CUSTOM_GRADIENT_TABLE.values():
        assert set(formulations) <= set(CONV_FORMULATIONS)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cpu_rows_are_what_the_benchmark_measured(backend):
    report = json.loads(
        (RESULTS / f"lambda_conv_profile_{backend}.json").read_text(encoding="utf-8")
    )
    kept = {
        name
        for name, entry in report["summary"].items()
        if entry["gradients"] == "custom"
    }

    assert report["platform"] == "cpu"
    assert conv_formulation(backend, "cpu") == report["fastest"]
    assert set(CUSTOM_GRADIENT_TABLE.get((backend, "cpu"), ())) == kept


def test_formulations_are_implementations_of_the_convolution():
    for formulation in ("conv",) + CONV_FORMULATIONS:
        assert validate_implementation(formulation, 3) == formulation
        assert position_method((8, 8), 4, 16, 16, 1, 3, formulation) == "convolution"
        with pytest.raises(
            ValueError, match=f"implementation='{formulation}', scope=None"
        ):
            validate_implementation(formulation, None)


def test_unknown_formulation_names_the_argument():
    with pytest.raises(ValueError, match="Received: formulation='fft'"):
        lambda_convolution(random(1, 5, 2, 1), random(3, 4, 1), "fft")
