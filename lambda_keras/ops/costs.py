"""What the position term of the lambda interaction costs, and how to compute it.

`y^p_n = (sum_m E_nm V_m^T) q_n` (Eq. 4) has three methods, all equal:

- "queries_first": `w_nm = q_n E_nm` (b, n, h, m, u), then `sum_m w_nm V_m`;
- "lambdas_first": the position lambdas `sum_m E_nm V_m^T` (b, n, k, v), as
  the paper writes it, then applied to the queries;
- "convolution": the same lambdas by the lambda convolution of Eq. 3, for
  a local scope only.

`position_method` picks one from the sizes; `lambda_interaction` runs it.
"""

import math

IMPLEMENTATIONS = ("auto", "einsum", "conv")
POSITION_METHODS = ("queries_first", "lambdas_first", "convolution")

# `implementation="auto"` uses the lambda convolution once the einsum needs
# more than this many times its multiply-adds (`position_costs`): where
# their forward+backward times cross (the geometric mean of the crossings
# in `python -m benchmarks.implementation_crossover`). It is measured, not
# 1, because the two run their multiply-adds at different rates. The paper
# switches above 85^2 positions on TPUs (Appendix D).
CONV_COST_RATIO = 0.5


def validate_implementation(implementation, scope):
    """Checks a layer's `implementation` against its `scope`.

    Args:
        implementation: one of `IMPLEMENTATIONS`.
        scope: odd local scope r, or None for a global context.

    Returns:
        `implementation`.
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"`implementation` must be one of {IMPLEMENTATIONS}. "
            f"Received: implementation={implementation!r}"
        )
    if implementation == "conv" and scope is None:
        raise ValueError(
            "`implementation='conv'` (the lambda convolution) needs a "
            "local `scope`; use 'einsum' or 'auto' for a global context. "
            "Received: implementation='conv', scope=None"
        )
    return implementation


def position_contraction_order(heads, dim_k, dim_v, dim_u, context):
    """The einsum order of the position term: the smaller intermediate.

    Queries first holds `|h| |m| |u|` numbers per query against `|k| |v|`
    for the position lambdas, and then also needs fewer multiply-adds
    (`|h| (|k| + |v|) < |k| |v|` for the paper's settings): small feature
    maps such as the c4 and c5 stages of a LambdaResNet. Otherwise, and
    whenever a size is unknown, the lambdas come first, which keeps the
    memory of the position term at the paper's Theta(bnkv).

    Args:
        heads: |h|, queries per position.
        dim_k: |k|, query/key depth.
        dim_v: |v|, value depth.
        dim_u: |u|, intra-depth.
        context: |m|, context positions (an int, or None / a tensor when
            unknown).

    Returns:
        "queries_first" or "lambdas_first".
    """
    sizes = (heads, dim_k, dim_v, dim_u, context)
    if all(isinstance(size, int) for size in sizes):
        if heads * context * dim_u < dim_k * dim_v:
            return "queries_first"
    return "lambdas_first"


def position_costs(spatial_shape, heads, dim_k, dim_v, dim_u=1, scope=None):
    """Multiply-adds per example of the position term, by method.

    The einsum methods write the relative embeddings E (n m k u numbers,
    counted as multiply-adds) and contract them; the lambda convolution
    computes n k v u r^rank products. Every method then applies its
    lambdas (or weights) to the n h queries.

    Args:
        spatial_shape: (L,) or (H, W) of the input, ints.
        heads: |h|.
        dim_k: |k|.
        dim_v: |v|.
        dim_u: |u|.
        scope: odd local scope r, or None for a global context (no
            convolution).

    Returns:
        {"queries_first": ..., "lambdas_first": ...} and, with a `scope`,
        "convolution": ....
    """
    positions = math.prod(spatial_shape)
    embeddings = positions * positions * dim_k * dim_u
    applied = positions * heads * dim_k * dim_v
    costs = {
        "queries_first": embeddings
        + positions * heads * positions * dim_u * (dim_k + dim_v),
        "lambdas_first": embeddings
        + positions * positions * dim_k * dim_v * dim_u
        + applied,
    }
    if scope is not None:
        taps = scope ** len(spatial_shape)
        costs["convolution"] = positions * dim_k * dim_v * dim_u * taps + applied
    return costs


def position_method(
    spatial_shape, heads, dim_k, dim_v, dim_u=1, scope=None, implementation="auto"
):
    """How the lambda layer computes its position term.

    Args:
        spatial_shape: (L,) or (H, W); entries may be None or tensors when
            unknown.
        heads: |h|.
        dim_k: |k|.
        dim_v: |v|.
        dim_u: |u|.
        scope: odd local scope r, or None for a global context.
        implementation: "einsum" (the einsum in the order of
            `position_contraction_order`), "conv" (the lambda convolution;
            needs a `scope`) or "auto": the convolution for a local scope
            once the einsum needs more than `CONV_COST_RATIO` times its
            multiply-adds (`position_costs`), or when the size is unknown.

    Returns:
        One of `POSITION_METHODS`.
    """
    validate_implementation(implementation, scope)
    if scope is None:
        implementation = "einsum"
    if implementation == "conv":
        return "convolution"
    known = all(isinstance(size, int) for size in spatial_shape)
    context = math.prod(spatial_shape) if known else None
    order = position_contraction_order(heads, dim_k, dim_v, dim_u, context)
    if implementation == "einsum":
        return order
    if not known:
        return "convolution"
    costs = position_costs(spatial_shape, heads, dim_k, dim_v, dim_u, scope)
    if costs[order] > CONV_COST_RATIO * costs["convolution"]:
        return "convolution"
    return order
