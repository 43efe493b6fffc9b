"""Relative position embeddings and masks for structured contexts.

A relative table R of shape (T_1[, T_2], k, u) holds one embedding per
relative offset. With c_i = (T_i - 1) // 2, the embedding for query position
n and context position m is `R[m - n + c]` (Sec. 3.2: E_nm = R_r(n,m)).
A global table has T_i = 2 * max_size_i - 1, so it covers every offset of an
input up to `max_size`; a local table has T_i = scope and offsets outside it
get a zero embedding.
"""

import numpy as np
from keras import ops


def relative_position_embeddings(table, spatial_shape):
    """Expands a relative table into position embeddings E (n, m, k, u).

    Args:
        table: (T,  k, u) for sequences or (T_h, T_w, k, u) for images,
            with odd T.
        spatial_shape: the input's spatial shape, (L,) or (H, W); entries
            may be Python ints or scalar tensors.

    Returns:
        (n, m, k, u) with n = m = L or H * W, E_nm = table[m - n + c] when
        the offset is inside the table and 0 otherwise.
    """
    rank = len(spatial_shape)
    embeddings = table
    inside = []
    for axis, size in enumerate(spatial_shape):
        extent = table.shape[axis]
        centre = (extent - 1) // 2
        positions = ops.arange(size)
        offsets = positions[None, :] - positions[:, None] + centre
        # Each take turns one table axis into a (query, context) pair of axes.
        embeddings = ops.take(
            embeddings, ops.clip(offsets, 0, extent - 1), axis=2 * axis
        )
        if isinstance(size, int) and extent >= 2 * size - 1:
            inside.append(None)  # every offset lies inside the table
        else:
            valid = ops.logical_and(offsets >= 0, offsets < extent)
            inside.append(ops.cast(valid, table.dtype))
    if rank == 2:
        # (H_n, H_m, W_n, W_m, k, u) -> (H_n, W_n, H_m, W_m, k, u)
        embeddings = ops.transpose(embeddings, (0, 2, 1, 3, 4, 5))
    length = int(np.prod(spatial_shape)) if _all_ints(spatial_shape) else -1
    key_depth, intra_depth = table.shape[-2], table.shape[-1]
    embeddings = ops.reshape(embeddings, (length, length, key_depth, intra_depth))
    if all(valid is None for valid in inside):
        return embeddings
    if rank == 1:
        validity = inside[0]
    else:
        rows, cols = (
            ops.ones((size, size), table.dtype) if valid is None else valid
            for valid, size in zip(inside, spatial_shape)
        )
        validity = ops.reshape(
            rows[:, None, :, None] * cols[None, :, None, :], (length, length)
        )
    return embeddings * validity[:, :, None, None]


def causal_mask(length):
    """(n, n) mask of 0/1 with mask[n, m] = 1 when m <= n.

    For images, n and m are raster-order positions of the flattened input.
    """
    positions = ops.arange(length)
    return ops.cast(positions[None, :] <= positions[:, None], "float32")


def causal_kernel_mask(scope, rank):
    """Mask of the lambda-convolution taps that look at positions <= n.

    Args:
        scope: odd kernel size r.
        rank: 1 for sequences, 2 for images (raster order).

    Returns:
        A float32 numpy array of shape (r,) or (r, r) with 1 for the taps at
        or before the centre in raster order and 0 after it.
    """
    taps = np.arange(scope**rank).reshape((scope,) * rank)
    return (taps <= taps.size // 2).astype("float32")


def _all_ints(shape):
    return all(isinstance(size, int) for size in shape)
