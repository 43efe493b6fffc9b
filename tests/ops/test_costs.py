"""lambda_keras.ops.costs: the price of each position method and the choice."""

import json
import math
import pathlib

import pytest

from lambda_keras.ops import CONV_COST_RATIO
from lambda_keras.ops import position_contraction_order
from lambda_keras.ops import position_costs
from lambda_keras.ops import position_method
from lambda_keras.ops import validate_implementation

RESULTS = pathlib.Path(__file__).parents[2] / "benchmarks" / "results"


def multiply_adds(subscripts, sizes):
    """Multiply-adds of a naive einsum loop: the product of all index sizes."""
    indices = set(subscripts.replace(",", "").replace("->", ""))
    return math.prod(sizes[index] for index in indices)


@pytest.mark.parametrize(
    "spatial_shape, scope, heads, dim_k, dim_v, dim_u",
    [((14, 14), 23, 4, 16, 64, 1), ((56, 56), 9, 4, 16, 16, 1), ((9,), 5, 2, 8, 6, 3)],
)
def test_position_costs_count_the_contractions_of_eq_4(
    spatial_shape, scope, heads, dim_k, dim_v, dim_u
):
    positions = math.prod(spatial_shape)
    sizes = {
        "n": positions,
        "m": positions,
        "h": heads,
        "k": dim_k,
        "v": dim_v,
        "u": dim_u,
        "t": scope ** len(spatial_shape),  # the taps of the lambda convolution
    }
    write_embeddings = positions * positions * dim_k * dim_u
    apply_lambdas = multiply_adds("nhk,nkv->nhv", sizes)

    costs = position_costs(spatial_shape, heads, dim_k, dim_v, dim_u, scope)

    assert costs == {
        # w_nm = q_n E_nm, then y_n = sum_m w_nm V_m.
        "queries_first": write_embeddings
        + multiply_adds("nhk,nmku->nhmu", sizes)
        + multiply_adds("nhmu,mvu->nhv", sizes),
        # lambda_n = sum_m E_nm V_m^T, then y_n = lambda_n q_n.
        "lambdas_first": write_embeddings
        + multiply_adds("nmku,mvu->nkv", sizes)
        + apply_lambdas,
        # lambda_n = sum_t R_t V_(n+t)^T over the r^rank taps of the scope.
        "convolution": multiply_adds("tku,ntvu->nkv", sizes) + apply_lambdas,
    }
    assert "convolution" not in position_costs(spatial_shape, heads, dim_k, dim_v)


def test_position_contraction_order_takes_the_smaller_intermediate():
    # c4 of a LambdaResNet50: h m u = 4 * 196 < k v = 16 * 64.
    assert position_contraction_order(4, 16, 64, 1, 196) == "queries_first"
    # 64x64 global context: h m u = 4 * 4096 > k v = 16 * 16.
    assert position_contraction_order(4, 16, 16, 1, 4096) == "lambdas_first"
    # Unknown context size: the paper's order.
    assert position_contraction_order(4, 16, 64, 1, None) == "lambdas_first"


def test_auto_method_uses_the_measured_crossover():
    def method(spatial_shape, dim_v, scope, implementation="auto"):
        return position_method(spatial_shape, 4, 16, dim_v, 1, scope, implementation)

    # The c4 and c5 stages of a LambdaResNet50 (scope 23 covers most of the
    # map): the einsum, queries first. A 56x56 map with scope 23 or 9: the
    # convolution.
    assert method((14, 14), 64, 23) == "queries_first"
    assert method((7, 7), 128, 23) == "queries_first"
    assert method((56, 56), 16, 23) == "convolution"
    assert method((56, 56), 16, 9) == "convolution"
    # The ratio is the one benchmarks/results/implementation_crossover.json
    # measured, to one decimal. There, scope 9, |v| = 16, the einsum needs
    # 2.50 times the convolution's multiply-adds at 14x14 and 5.05 times at
    # 20x20, either side of it.
    report = json.loads((RESULTS / "implementation_crossover.json").read_text())
    assert CONV_COST_RATIO == round(report["conv_cost_ratio"], 1)
    assert method((14, 14), 16, 9) == "lambdas_first"
    assert method((20, 20), 16, 9) == "convolution"
    # A global context never uses the convolution.
    assert method((90, 90), 2, None) == "lambdas_first"
    assert method((None, None), 2, None) == "lambdas_first"
    # An unknown size: the convolution, which holds nothing quadratic.
    assert method((None, None), 2, 7) == "convolution"
    # Explicit implementations.
    assert method((56, 56), 16, 23, "einsum") == "lambdas_first"
    assert method((14, 14), 64, 23, "einsum") == "queries_first"
    assert method((7, 7), 128, 23, "conv") == "convolution"


@pytest.mark.parametrize("scope", [5, 9, 23])
@pytest.mark.parametrize("dim_v", [16, 64])
def test_auto_method_switches_to_the_convolution_once(scope, dim_v):
    # The einsum's cost grows as n^2, the convolution's as n: once the
    # convolution is cheaper it stays so on every larger map.
    methods = [
        position_method((size, size), 4, 16, dim_v, 1, scope) for size in range(2, 65)
    ]
    uses_convolution = [m == "convolution" for m in methods]
    assert uses_convolution[-1]
    first = uses_convolution.index(True)
    assert all(uses_convolution[first:])


def test_errors_name_the_argument():
    assert validate_implementation("auto", None) == "auto"
    with pytest.raises(ValueError, match="implementation='fft'"):
        validate_implementation("fft", 3)
    with pytest.raises(ValueError, match="implementation='conv', scope=None"):
        position_method((8, 8), 4, 16, 16, scope=None, implementation="conv")
