"""Naive numpy reference of the lambda layer, written from the paper.

Loops over queries and context positions as Eq. 1-2 (and Eq. 5 for masked
contexts) read, in float64, independently of lambda_keras' einsum code.
"""

import itertools

import numpy as np


def relative_embeddings(table, spatial_shape):
    """E[n, m] = table[offset(m - n) + centre], zero outside the table."""
    rank = len(spatial_shape)
    extents = table.shape[:rank]
    grid = list(itertools.product(*(range(size) for size in spatial_shape)))
    embeddings = np.zeros((len(grid), len(grid)) + table.shape[rank:])
    for n, query in enumerate(grid):
        for m, context in enumerate(grid):
            index = tuple(
                c - q + (t - 1) // 2 for q, c, t in zip(query, context, extents)
            )
            if all(0 <= i < t for i, t in zip(index, extents)):
                embeddings[n, m] = table[index]
    return embeddings


def relative_embeddings_adjoint(embedding_gradients, table_shape, spatial_shape):
    """Gradient of a table from the gradient of its embeddings E (n, m, ...).

    `relative_embeddings` copies table[offset(m - n) + centre] into E[n, m],
    so each table entry receives the sum of the gradients of its copies.
    """
    rank = len(spatial_shape)
    extents = table_shape[:rank]
    grid = list(itertools.product(*(range(size) for size in spatial_shape)))
    gradient = np.zeros(table_shape)
    for n, query in enumerate(grid):
        for m, context in enumerate(grid):
            index = tuple(
                c - q + (t - 1) // 2 for q, c, t in zip(query, context, extents)
            )
            if all(0 <= i < t for i, t in zip(index, extents)):
                gradient[index] += embedding_gradients[n, m]
    return gradient


def position_lambdas_and_adjoint(table, values, spatial_shape, upstream):
    """Position lambdas of a relative table and their vector-Jacobian product.

    lambda[b, n, k, v] = sum_{m, u} E[n, m, k, u] V[b, m, v, u] (Eq. 4),
    with E from `relative_embeddings`, so with the upstream gradient
    W[b, n, k, v] the values receive sum_{n, k} E[n, m, k, u] W[b, n, k, v]
    and each E[n, m] receives sum_{b, v} W[b, n, k, v] V[b, m, v, u],
    summed into the table by `relative_embeddings_adjoint`.

    Args:
        table: (*T, k, u).
        values: (b, m, v, u).
        spatial_shape: (L,) or (H, W) with L or H * W = m.
        upstream: (b, n, k, v).

    Returns:
        (lambdas (b, n, k, v), values gradient (b, m, v, u), table gradient
        (*T, k, u)).
    """
    embeddings = relative_embeddings(table, spatial_shape)
    lambdas = np.einsum("nmku,bmvu->bnkv", embeddings, values)
    values_gradient = np.einsum("nmku,bnkv->bmvu", embeddings, upstream)
    embedding_gradients = np.einsum("bnkv,bmvu->nmku", upstream, values)
    table_gradient = relative_embeddings_adjoint(
        embedding_gradients, table.shape, spatial_shape
    )
    return lambdas, values_gradient, table_gradient


def normalize(keys, normalization):
    """Normalises (m, k, u) keys over the context positions m."""
    if normalization == "softmax":
        shifted = np.exp(keys - keys.max(axis=0, keepdims=True))
        return shifted / shifted.sum(axis=0, keepdims=True)
    if normalization == "l2":
        return keys / np.sqrt((keys**2).sum(axis=0, keepdims=True))
    return keys


def lambda_outputs(
    queries,
    keys,
    values,
    embeddings=None,
    mask=None,
    normalization=None,
    position_bias=None,
):
    """y[b, n, h] = (lambda^c_n + lambda^p_n) q[b, n, h].

    Args:
        queries: (b, n, h, k).
        keys: (b, m, k, u) or None (no content lambda). Normalised keys when
            `normalization` is None; otherwise raw keys, normalised for each
            query over its visible context C_n.
        values: (b, m, v, u).
        embeddings: (n, m, k, u) or None (no position lambdas).
        mask: (n, m) of 0/1 or None (every position visible).
        normalization: None, "softmax", "l2" or "none".
        position_bias: optional (k,) bias added to every position lambda.

    Returns:
        (b, n, h, v) float64.
    """
    queries, values = np.float64(queries), np.float64(values)
    batch, length, heads, _ = queries.shape
    context = values.shape[1]
    outputs = np.zeros((batch, length, heads, values.shape[2]))
    for b in range(batch):
        for n in range(length):
            visible = [m for m in range(context) if mask is None or mask[n][m] == 1]
            lam = np.zeros((queries.shape[3], values.shape[2]))
            if keys is not None:
                visible_keys = np.float64(keys[b, visible])
                if normalization is not None:
                    visible_keys = normalize(visible_keys, normalization)
                for i, m in enumerate(visible):
                    # mu^c_m = K_m V_m^T, summed over the intra-depth u
                    lam += visible_keys[i] @ values[b, m].T
            if embeddings is not None:
                for m in visible:
                    # mu^p_nm = E_nm V_m^T
                    lam += np.float64(embeddings[n, m]) @ values[b, m].T
            if position_bias is not None:
                lam += np.float64(position_bias)[:, None]
            for h in range(heads):
                outputs[b, n, h] = lam.T @ queries[b, n, h]
    return outputs


def average_pool(x, pool_size, strides):
    """(b, *S, c) average pool with "same" padding, over the window's inputs.

    Output position o averages the inputs at o * strides - pad + [0,
    pool_size) that lie inside the input, with pad = (total padding) // 2.
    """
    spatial = x.shape[1:-1]
    outputs = [-(-size // strides) for size in spatial]
    pads = [
        max((out - 1) * strides + pool_size - size, 0) // 2
        for out, size in zip(outputs, spatial)
    ]
    pooled = np.zeros((x.shape[0], *outputs, x.shape[-1]))
    for position in itertools.product(*(range(out) for out in outputs)):
        window = tuple(
            slice(max(o * strides - pad, 0), min(o * strides - pad + pool_size, size))
            for o, pad, size in zip(position, pads, spatial)
        )
        pooled[(slice(None), *position)] = np.float64(x[(slice(None), *window)]).mean(
            axis=tuple(range(1, len(spatial) + 1))
        )
    return pooled


def batch_norm(x, norm):
    """Inference-mode batch normalisation with a Keras layer's weights."""
    gamma, beta, mean, variance = (np.float64(w.numpy()) for w in norm.weights)
    return (x - mean) / np.sqrt(variance + norm.epsilon) * gamma + beta


def lambda_layer(layer, inputs, context_mask=None, table=None):
    """Reference forward pass of a built `LambdaLayer` in inference mode.

    Pulls the layer's weights out (projection, batch-norm statistics,
    position table) and recomputes its output from the equations.
    """
    inputs = np.float64(inputs)
    batch, spatial_shape = inputs.shape[0], inputs.shape[1:-1]
    length = int(np.prod(spatial_shape))
    heads, dim_k, dim_u, dim_v = layer.heads, layer.dim_k, layer.dim_u, layer.dim_v
    kernel = np.float64(layer.qkv_projection.kernel.numpy())
    projected = inputs.reshape(batch, length, -1) @ kernel
    query_channels, key_channels = heads * dim_k, dim_k * dim_u
    queries = projected[..., :query_channels]
    keys = projected[..., query_channels : query_channels + key_channels]
    values = projected[..., query_channels + key_channels :]
    if layer.use_batch_norm:
        queries = batch_norm(queries, layer.query_norm)
        values = batch_norm(values, layer.value_norm)
    queries = queries.reshape(batch, length, heads, dim_k)
    keys = keys.reshape(batch, length, dim_k, dim_u)
    values = values.reshape(batch, length, dim_v, dim_u)

    mask = None
    if layer.causal:
        mask = np.tril(np.ones((length, length)))
    if context_mask is not None:
        mask = context_mask if mask is None else mask * context_mask
    embeddings = None
    if layer.use_position:
        if table is None:
            table = layer.position_embedding.table.numpy()
        embeddings = relative_embeddings(np.float64(table), spatial_shape)
    outputs = lambda_outputs(
        queries,
        keys if layer.use_content else None,
        values,
        embeddings,
        mask,
        normalization=layer.key_normalization,
        position_bias=(
            layer.position_bias.numpy() if layer.use_position_bias else None
        ),
    )
    return outputs.reshape(inputs.shape[:-1] + (heads * dim_v,))
