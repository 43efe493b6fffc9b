"""Functional core of the lambda layer (Bello, ICLR 2021, Eq. 1-5).

Every function here is written with `keras.ops` only, so it runs on the
TensorFlow, JAX and PyTorch backends. Shapes use the paper's index names:

- `b`: batch, `n`: query positions, `m`: context positions,
- `h`: queries per position (heads), `k`: query/key depth,
- `v`: value depth, `u`: intra-depth.
"""

import math

from keras import ops

from lambda_keras.ops.costs import CONV_FORMULATIONS
from lambda_keras.ops.costs import POSITION_METHODS
from lambda_keras.ops.costs import conv_formulation
from lambda_keras.ops.costs import position_contraction_order
from lambda_keras.ops.costs import uses_custom_gradients
from lambda_keras.ops.costs import validate_formulation
from lambda_keras.ops.relative_positions import causal_kernel_mask
from lambda_keras.ops.relative_positions import causal_mask
from lambda_keras.ops.relative_positions import relative_position_embeddings

KEY_NORMALIZATIONS = ("softmax", "l2", "none")

# Smallest denominator used when keys are normalised over a masked context;
# it only matters for a query whose visible context is empty or underflows.
_TINY = 1e-30
_L2_EPSILON = 1e-12


def normalize_keys(keys, normalization="softmax", mask=None):
    """Normalises keys over context positions (Table 10 of the paper).

    Without a mask the keys are normalised over all context positions `m`.
    With a mask, each query `n` normalises over its own visible context
    `C_n = {m : mask[n, m] = 1}` (Appendix B). That normalisation depends on
    `n`, so it is returned as a numerator and a per-query denominator that
    `content_lambda` divides by.

    Args:
        keys: (b, m, k, u) unnormalised keys.
        normalization: "softmax" (default), "l2" or "none".
        mask: optional (n, m) tensor of 0/1.

    Returns:
        A tuple `(keys, denominators)`. Without a mask (or with
        normalization "none") `keys` are normalised and `denominators` is
        None. With a mask, `keys` are (b, m, k, u) numerators and
        `denominators` is (b, n, k, u).
    """
    if normalization not in KEY_NORMALIZATIONS:
        raise ValueError(
            f"`normalization` must be one of {KEY_NORMALIZATIONS}. "
            f"Received: normalization={normalization!r}"
        )
    keys = ops.convert_to_tensor(keys)
    if normalization == "none":
        return keys, None
    if normalization == "softmax":
        if mask is None:
            return ops.softmax(keys, axis=1), None
        # exp(K - max_m K) / sum_{m in C_n} exp(K - max_m K): the shift
        # cancels in the ratio and keeps exp() from overflowing. `initial`
        # (a no-op on finite keys) makes the max of an empty batch defined;
        # without it the TensorFlow and PyTorch backends raise.
        shift = ops.stop_gradient(
            ops.max(keys, axis=1, keepdims=True, initial=-float("inf"))
        )
        numerators = ops.exp(keys - shift)
    else:
        if mask is None:
            norm = ops.sqrt(ops.sum(ops.square(keys), axis=1, keepdims=True))
            return keys / ops.maximum(norm, _L2_EPSILON), None
        numerators = keys
    mask = ops.cast(mask, keys.dtype)
    if normalization == "softmax":
        denominators = ops.einsum("nm,bmku->bnku", mask, numerators)
        denominators = ops.maximum(denominators, _TINY)
    else:
        squares = ops.einsum("nm,bmku->bnku", mask, ops.square(numerators))
        denominators = ops.maximum(ops.sqrt(squares), _L2_EPSILON)
    return numerators, denominators


def content_lambda(keys, values, mask=None, key_denominators=None):
    """Content lambda: the sum over context positions of K_m V_m^T.

    Eq. 4 (`einsum(K_bmku, V_bmvu) -> bkv`) without a mask; Eq. 5
    (`einsum(P_nm, einsum(K_bmku, V_bmvu)) -> bnkv`) with one.

    Args:
        keys: (b, m, k, u) normalised keys, or numerators when
            `key_denominators` is given.
        values: (b, m, v, u).
        mask: optional (n, m) tensor of 0/1; `mask[n, m] = 1` when context
            position m is visible from query position n.
        key_denominators: optional (b, n, k, u) per-query key normalisers
            from `normalize_keys`; requires `mask`.

    Returns:
        (b, k, v) without a mask, (b, n, k, v) with one.
    """
    keys, values = ops.convert_to_tensor(keys), ops.convert_to_tensor(values)
    if mask is None:
        if key_denominators is not None:
            raise ValueError("`key_denominators` requires a `mask`.")
        return ops.einsum("bmku,bmvu->bkv", keys, values)
    mask = ops.cast(mask, keys.dtype)
    if key_denominators is None:
        contributions = ops.einsum("bmku,bmvu->bmkv", keys, values)
        return ops.einsum("nm,bmkv->bnkv", mask, contributions)
    contributions = ops.einsum("bmku,bmvu->bmkvu", keys, values)
    numerators = ops.einsum("nm,bmkvu->bnkvu", mask, contributions)
    return ops.sum(numerators / ops.expand_dims(key_denominators, 3), axis=-1)


def position_lambdas(
    values, embeddings=None, mask=None, *, table=None, spatial_shape=None
):
    """Position lambdas: `einsum(E_nmku * P_nm, V_bmvu) -> bnkv` (Eq. 4-5).

    The embeddings are contracted depth first, (k, u, n, m), the layout the
    contraction over context positions reads in place. From a relative
    `table` they are gathered straight into it, the mask folded into the
    gather: E (k n m numbers, 1 GiB for a 64x64 global context) is written
    once and never transposed or masked in a copy. Dense `embeddings` are
    masked and transposed into it.

    Args:
        values: (b, m, v, u).
        embeddings: (n, m, k, u) position embeddings E; or None with
            `table`.
        mask: optional (n, m) tensor of 0/1.
        table: relative embeddings (T, k, u) or (T_h, T_w, k, u), odd T,
            instead of `embeddings`: E_nm = table[m - n + c] (see
            `relative_position_embeddings`).
        spatial_shape: (L,) or (H, W) with L or H * W = m; with `table`.

    Returns:
        (b, n, k, v).
    """
    _check_position_input(embeddings, table, spatial_shape)
    values = ops.convert_to_tensor(values)
    embeddings = _visible_embeddings(
        embeddings, table, spatial_shape, mask, depth_first=True
    )
    if embeddings.shape[1] == 1:
        return ops.einsum("knm,bmv->bnkv", embeddings[:, 0], values[..., 0])
    return ops.einsum("kunm,bmvu->bnkv", embeddings, values)


def _check_position_input(embeddings, table, spatial_shape):
    """Dense `embeddings` or a `table` with its `spatial_shape`, not both."""
    if embeddings is not None and table is not None:
        raise ValueError(
            "Give the position embeddings either dense (`embeddings`) or "
            "as a relative `table`, not both."
        )
    if table is not None and spatial_shape is None:
        raise ValueError(
            "A relative `table` needs the `spatial_shape` it is expanded "
            "for. Received: spatial_shape=None"
        )


def _visible_embeddings(embeddings, table, spatial_shape, mask, depth_first):
    """E with the pairs hidden by `mask` zeroed.

    Returns:
        (n, m, k, u), or (k, u, n, m) with `depth_first`.
    """
    if table is not None:
        return relative_position_embeddings(table, spatial_shape, mask, depth_first)
    embeddings = ops.convert_to_tensor(embeddings)
    if mask is not None:
        embeddings = embeddings * ops.cast(mask, embeddings.dtype)[:, :, None, None]
    if depth_first:
        return ops.transpose(embeddings, (2, 3, 0, 1))
    return embeddings


def _queries_first_outputs(queries, embeddings, values):
    """`sum_m (q_n E_nm) V_m`: (b, n, h, k), (n, m, k, u), (b, m, v, u)."""
    if embeddings.shape[-1] == 1:
        weights = ops.einsum("bnhk,nmk->bnhm", queries, embeddings[..., 0])
        return ops.einsum("bnhm,bmv->bnhv", weights, values[..., 0])
    weights = ops.einsum("bnhk,nmku->bnhmu", queries, embeddings)
    return ops.einsum("bnhmu,bmvu->bnhv", weights, values)


def _convolution_outputs(queries, table, values, spatial_shape, causal, formulation):
    """The position outputs by the lambda convolution of a local table."""
    if causal:
        rank = len(table.shape) - 2
        kernel_mask = causal_kernel_mask(table.shape[0], rank)
        table = table * ops.cast(kernel_mask, table.dtype)[..., None, None]
    shape = ops.shape(values)
    grid = ops.reshape(values, (shape[0],) + tuple(spatial_shape) + tuple(shape[2:]))
    return apply_lambda(queries, lambda_convolution(grid, table, formulation))


def lambda_convolution(values, kernel, formulation=None):
    """Local position lambdas by the lambda convolution (Eq. 3).

    `lambda[b, s, k, v] = sum_{d, u} kernel[c + d, k, u] values[b, s + d, v, u]`
    over the offsets d of the local scope, zero outside the input: equal
    to masking the position embeddings outside the scope. Three
    formulations compute it, with the same result and the same kernel:

    - "conv3d": the value depth `v` as an extra spatial axis with a 1-tap
      kernel and `u` as the channels, a (r[, r], 1) convolution of u
      channels into k (a Conv3D for images);
    - "conv2d": the value depth folded into the batch, a (r[, r])
      convolution of the (b v, *S, u) values into k channels (a Conv2D
      for images, a Conv1D for sequences);
    - "depthwise": a depthwise (r[, r]) convolution of the v u channels
      with channel multiplier k, summed over u.

    Each formulation runs with the gradients that measured faster for it
    on this backend and platform (`lambda_keras.ops.CUSTOM_GRADIENT_TABLE`):
    the custom ones of `_lambda_convolution_gradients` (two convolutions
    of the forward's size) or the backend's own.

    Args:
        values: (b, L, v, u) for sequences or (b, H, W, v, u) for images.
        kernel: relative position embeddings (r, k, u) or (r, r, k, u) with
            odd r; `kernel[c + d]` (c = r // 2) weighs the context element
            at offset d from the query.
        formulation: one of `CONV_FORMULATIONS`, or None for the one the
            cost table names for this backend and platform
            (`lambda_keras.ops.conv_formulation`).

    Returns:
        (b, n, k, v) with n = L or H * W.
    """
    formulation = validate_formulation(
        conv_formulation() if formulation is None else formulation
    )
    values, kernel = ops.convert_to_tensor(values), ops.convert_to_tensor(kernel)
    if uses_custom_gradients(formulation):
        return _CUSTOM_GRADIENT_CONVOLUTIONS[formulation](values, kernel)
    return _convolve(values, kernel, formulation)


def _convolve(values, kernel, formulation):
    """(b, *S, v, u) values, (*r, k, u) kernel -> (b, n, k, v) lambdas.

    The lambda convolution by `formulation`, with the backend's gradients.
    """
    rank = len(kernel.shape) - 2
    shape = ops.shape(values)
    batch, spatial, value_depth = shape[0], tuple(shape[1:-2]), shape[-2]
    positions = math.prod(spatial)
    key_depth, intra_depth = kernel.shape[-2:]
    # Every reshape gives every size: a -1 is ambiguous for an empty batch
    # (JAX, PyTorch).
    # (*r, k, u) -> (*r, u, k): spatial taps, in, out.
    taps = ops.transpose(kernel, tuple(range(rank)) + (rank + 1, rank))
    if formulation == "conv3d":
        # A 1-tap v axis, (*r, 1, u, k): (b, *S, v, u) -> (b, *S, v, k).
        lambdas = ops.conv(values, ops.expand_dims(taps, rank), padding="same")
        lambdas = ops.reshape(lambdas, (batch, positions, value_depth, key_depth))
        return ops.transpose(lambdas, (0, 1, 3, 2))
    if formulation == "conv2d":
        # (b, *S, v, u) -> (b, v, *S, u) -> (b v, *S, u)
        folded = ops.transpose(
            values, (0, rank + 1) + tuple(range(1, rank + 1)) + (rank + 2,)
        )
        folded = ops.reshape(folded, (batch * value_depth,) + spatial + (intra_depth,))
        lambdas = ops.conv(folded, taps, padding="same")  # (b v, *S, k)
        lambdas = ops.reshape(lambdas, (batch, value_depth, positions, key_depth))
        return ops.transpose(lambdas, (0, 2, 3, 1))
    # depthwise: channels (v, u), each with the k outputs of its u column
    # of the kernel: (*r, u, k) tiled to (*r, v u, k).
    channels = ops.reshape(values, (batch,) + spatial + (value_depth * intra_depth,))
    depthwise_kernel = ops.reshape(
        ops.tile(ops.expand_dims(taps, rank), (1,) * rank + (value_depth, 1, 1)),
        (kernel.shape[0],) * rank + (-1, key_depth),
    )
    lambdas = ops.depthwise_conv(channels, depthwise_kernel, padding="same")
    # (b, *S, v u k) -> (b, n, v, u, k), summed over u.
    lambdas = ops.reshape(
        lambdas, (batch, positions, value_depth, intra_depth, key_depth)
    )
    lambdas = ops.sum(lambdas, axis=3)
    return ops.transpose(lambdas, (0, 1, 3, 2))


def _custom_gradient_convolution(formulation):
    """`_convolve` by `formulation`, with `_lambda_convolution_gradients`."""

    @ops.custom_gradient
    def convolution(values, kernel):
        def gradients(*args, upstream=None):
            # TensorFlow and JAX pass the upstream gradient positionally,
            # PyTorch as a keyword after the inputs.
            if upstream is None:
                (upstream,) = args
            return _lambda_convolution_gradients(values, kernel, upstream)

        return _convolve(values, kernel, formulation), gradients

    return convolution


def _lambda_convolution_gradients(values, kernel, upstream):
    """Gradients of the lambda convolution w.r.t. its values and kernel.

    With G = upstream (b, n, k, v), seen as (b, *S, k, v), and c = r // 2:

    - values: dV[s, v, u] = sum_{d, k} kernel[c + d, k, u] G[s - d, k, v], a
      depthwise convolution of the k v channels of G with the flipped
      kernel, summed over k;
    - kernel: dR[c + d, k, u] = sum_{b, s, v} G[b, s, k, v] V[b, s + d, v, u],
      a "valid" convolution of the zero-padded values, with the b v pairs
      as channels and u as the batch, by G as the (*S, b v, k) kernel.

    Both are convolutions of the forward's size; the backends' generic
    gradient of a convolution with respect to a one-channel input is
    several times slower on CPUs (`python -m benchmarks.lambda_conv_profile`).

    Returns:
        (values gradient (b, *S, v, u), kernel gradient (*r, k, u)).
    """
    rank = len(kernel.shape) - 2
    shape = ops.shape(values)
    batch, spatial, value_depth, intra_depth = (
        shape[0],
        tuple(shape[1:-2]),
        shape[-2],
        shape[-1],
    )
    key_depth = ops.shape(kernel)[-2]
    scope = kernel.shape[0]
    centre = scope // 2
    spatial_axes = tuple(range(1, rank + 1))

    flipped = kernel
    for axis in range(rank):
        flipped = ops.flip(flipped, axis)
    # (*r, k, u) -> (*r, k, v, u) -> (*r, k v, u): channel (k, v) of G
    # weighed by flipped[..., k, :].
    depthwise_kernel = ops.reshape(
        ops.tile(
            ops.expand_dims(flipped, rank + 1), (1,) * (rank + 1) + (value_depth, 1)
        ),
        (scope,) * rank + (key_depth * value_depth, intra_depth),
    )
    channels = ops.reshape(upstream, (batch,) + spatial + (key_depth * value_depth,))
    values_gradient = ops.depthwise_conv(
        channels, depthwise_kernel, strides=1, padding="same"
    )
    values_gradient = ops.sum(
        ops.reshape(
            values_gradient,
            (batch,) + spatial + (key_depth, value_depth, intra_depth),
        ),
        axis=rank + 1,
    )

    if isinstance(batch, int) and batch == 0:
        # An empty batch adds nothing to the kernel's gradient; the
        # convolution below would have no input channels, which the
        # backends reject.
        return values_gradient, ops.zeros_like(kernel)
    padded = ops.pad(values, ((0, 0),) + ((centre, centre),) * rank + ((0, 0), (0, 0)))
    # (b, *S', v, u) -> (u, *S', b, v) -> (u, *S', b v)
    padded = ops.transpose(padded, (rank + 2,) + spatial_axes + (0, rank + 1))
    padded = ops.reshape(
        padded, (intra_depth,) + tuple(ops.shape(padded)[1 : rank + 1]) + (-1,)
    )
    # (b, n, k, v) -> (n, b, v, k) -> (*S, b v, k)
    upstream_kernel = ops.reshape(
        ops.transpose(upstream, (1, 0, 3, 2)), spatial + (-1, key_depth)
    )
    kernel_gradient = ops.conv(padded, upstream_kernel, strides=1, padding="valid")
    # (u, *r, k) -> (*r, k, u)
    kernel_gradient = ops.transpose(kernel_gradient, spatial_axes + (rank + 1, 0))
    return values_gradient, kernel_gradient


_CUSTOM_GRADIENT_CONVOLUTIONS = {
    formulation: _custom_gradient_convolution(formulation)
    for formulation in CONV_FORMULATIONS
}


def apply_lambda(queries, lambdas):
    """Applies lambdas to their queries (Eq. 2, multi-query form of Eq. 4).

    Args:
        queries: (b, n, h, k).
        lambdas: (b, k, v) shared by all positions, or (b, n, k, v).

    Returns:
        (b, n, h, v).
    """
    if len(lambdas.shape) == 3:
        return ops.einsum("bnhk,bkv->bnhv", queries, lambdas)
    return ops.einsum("bnhk,bnkv->bnhv", queries, lambdas)


def add_lambdas(first, second):
    """Sums a content lambda (b, k, v) or (b, n, k, v) with position lambdas."""
    if len(first.shape) < len(second.shape):
        first = ops.expand_dims(first, 1)
    elif len(second.shape) < len(first.shape):
        second = ops.expand_dims(second, 1)
    return first + second


def lambda_interaction(
    queries,
    keys,
    values,
    embeddings=None,
    mask=None,
    *,
    table=None,
    spatial_shape=None,
    causal=False,
    key_normalization="none",
    position_bias=None,
    position_method=None,
    convolution_formulation=None,
):
    """The multi-query lambda interaction of Eq. 4 (Eq. 5 with a mask).

    Computes `y_n = (lambda^c_n + lambda^p_n) q^h_n` for every head h, the
    keys normalised over each query's visible context C_n (Appendix B). The
    position term is computed by `position_method`; every method gives the
    same result.

    Args:
        queries: (b, n, h, k).
        keys: (b, m, k, u); or None for a position-only interaction.
        values: (b, m, v, u).
        embeddings: (n, m, k, u) position embeddings E; or None.
        mask: optional (n, m) tensor of 0/1; query n only sees context
            positions m with `mask[n, m] = 1`.
        table: relative embeddings (T, k, u) or (T_h, T_w, k, u), odd T,
            instead of `embeddings`: E_nm = table[m - n + c] (see
            `relative_position_embeddings`). E is gathered in the layout
            the method reads; the lambda convolution uses the table as its
            kernel. Give neither `embeddings` nor `table` for a
            content-only interaction.
        spatial_shape: (L,) or (H, W) with L or H * W = m; with `table`.
        causal: if True, query n also only sees context positions m <= n
            (raster order for images), as if `mask` were multiplied by
            `causal_mask(n)`.
        key_normalization: how `keys` are normalised over the visible
            context: "softmax", "l2" or "none" (the default: keys used as
            given). See `normalize_keys`.
        position_bias: optional (k,) bias added to every position lambda.
        position_method: one of `POSITION_METHODS` (see
            `lambda_keras.ops.position_method`): "queries_first",
            "lambdas_first", or "convolution" (needs a local `table` and no
            `mask`; `causal` masks its kernel). Defaults to the einsum in
            the order of `position_contraction_order`.
        convolution_formulation: with `position_method="convolution"`, one
            of `CONV_FORMULATIONS`, or None for the cost table's
            (`lambda_keras.ops.conv_formulation`); see `lambda_convolution`.

    Returns:
        (b, n, h, v).
    """
    if keys is None and embeddings is None and table is None:
        raise ValueError(
            "At least one of `keys` (content lambda) and `embeddings` or "
            "`table` (position lambdas) must be given. Received: keys=None, "
            "embeddings=None, table=None"
        )
    _check_position_input(embeddings, table, spatial_shape)
    queries, values = ops.convert_to_tensor(queries), ops.convert_to_tensor(values)
    positional = embeddings is not None or table is not None
    if positional and position_method is None:
        heads, dim_k = queries.shape[2:]
        context, dim_v, dim_u = values.shape[1:]
        position_method = position_contraction_order(
            heads, dim_k, dim_v, dim_u, context
        )
    if positional and position_method not in POSITION_METHODS:
        raise ValueError(
            f"`position_method` must be one of {POSITION_METHODS}. "
            f"Received: position_method={position_method!r}"
        )
    if (
        positional
        and position_method == "convolution"
        and (table is None or mask is not None)
    ):
        raise ValueError(
            "`position_method='convolution'` needs a local `table` and no "
            "`mask` (use `causal` for a causal context). Received: "
            f"table is None: {table is None}, mask is None: {mask is None}"
        )
    if causal:
        visible = causal_mask(ops.shape(queries)[1])
        mask = visible if mask is None else visible * ops.cast(mask, visible.dtype)

    outputs = None
    if keys is not None:
        keys, denominators = normalize_keys(keys, key_normalization, mask)
        lambdas = content_lambda(keys, values, mask, denominators)
        outputs = apply_lambda(queries, lambdas)
    if positional:
        if position_method == "convolution":
            position_outputs = _convolution_outputs(
                queries,
                ops.convert_to_tensor(table),
                values,
                spatial_shape,
                causal,
                convolution_formulation,
            )
        elif position_method == "lambdas_first":
            lambdas = position_lambdas(
                values, embeddings, mask, table=table, spatial_shape=spatial_shape
            )
            position_outputs = apply_lambda(queries, lambdas)
        else:
            position_outputs = _queries_first_outputs(
                queries,
                _visible_embeddings(
                    embeddings, table, spatial_shape, mask, depth_first=False
                ),
                values,
            )
        outputs = position_outputs if outputs is None else outputs + position_outputs
    if position_bias is not None:
        # A bias b_k on every position lambda adds (q . b) to each value.
        bias = ops.cast(position_bias, queries.dtype)
        outputs = outputs + ops.einsum("bnhk,k->bnh", queries, bias)[..., None]
    return outputs
