"""Relative position embeddings and masks for structured contexts.

A relative table R of shape (T_1[, T_2], k, u) holds one embedding per
relative offset. With c_i = (T_i - 1) // 2, the embedding for query position
n and context position m is `R[m - n + c]` (Sec. 3.2: E_nm = R_r(n,m)).
A global table has T_i = 2 * max_size_i - 1, so it covers every offset of an
input up to `max_size`; a local table has T_i = scope and offsets outside it
get a zero embedding.
"""

import math

import numpy as np
from keras import ops


def relative_position_embeddings(table, spatial_shape, mask=None, depth_first=False):
    """Expands a relative table into position embeddings E.

    One gather from the flattened table with a row of zeros appended for
    offsets outside it and for pairs hidden by `mask`: E is written once,
    with no transpose or mask pass.

    Args:
        table: (T, k, u) for sequences or (T_h, T_w, k, u) for images,
            with odd T.
        spatial_shape: the input's spatial shape, (L,) or (H, W); entries
            may be Python ints or scalar tensors.
        mask: optional (n, m) tensor of 0/1; hidden pairs get a zero
            embedding.
        depth_first: if True, return E as (k, u, n, m), the layout in which
            a contraction over context positions m reads it in place.

    Returns:
        (n, m, k, u), or (k, u, n, m) with `depth_first`, with n = m = L or
        H * W and E_nm = table[m - n + c] when the offset is inside the
        table (and the pair visible) and 0 otherwise.
    """
    table = ops.convert_to_tensor(table)
    rank = len(table.shape) - 2
    extents, depths = tuple(table.shape[:rank]), tuple(table.shape[rank:])
    index = relative_index(spatial_shape, extents, mask)
    if not depth_first:
        rows = ops.concatenate(
            [ops.reshape(table, (-1,) + depths), ops.zeros((1,) + depths, table.dtype)]
        )
        return ops.take(rows, index, axis=0)
    # (*T, k, u) -> (k u, T + 1): one column per table row, and zeros.
    channels = math.prod(depths)
    columns = ops.transpose(ops.reshape(table, (-1, channels)))
    columns = ops.concatenate([columns, ops.zeros((channels, 1), table.dtype)], axis=1)
    length = math.prod(spatial_shape)
    return ops.reshape(ops.take(columns, index, axis=1), depths + (length, length))


def relative_index(spatial_shape, extents, mask=None):
    """Row of the flattened relative table for every (query, context) pair.

    Args:
        spatial_shape: (L,) or (H, W).
        extents: the table's spatial extents (T,) or (T_h, T_w).
        mask: optional (n, m) tensor of 0/1; masked pairs are sent outside.

    Returns:
        (n, m) integer tensor: the row `m - n + c` of the table flattened
        to (prod(extents), ...), or prod(extents) (a row of zeros appended
        by the caller) when the offset is outside the table or masked.
    """
    outside = math.prod(extents)
    index, valid = None, None
    for axis, (size, extent) in enumerate(zip(spatial_shape, extents)):
        positions = ops.arange(size)
        offsets = positions[None, :] - positions[:, None] + (extent - 1) // 2
        inside = ops.logical_and(offsets >= 0, offsets < extent)
        stride = math.prod(extents[axis + 1 :])
        axis_index = ops.clip(offsets, 0, extent - 1) * stride
        if axis == 1:  # (H_n, H_m) and (W_n, W_m) -> (H_n, W_n, H_m, W_m)
            index = index[:, None, :, None] + axis_index[None, :, None, :]
            valid = ops.logical_and(valid[:, None, :, None], inside[None, :, None, :])
        else:
            index, valid = axis_index, inside
    length = math.prod(spatial_shape)
    index = ops.reshape(index, (length, length))
    valid = ops.reshape(valid, (length, length))
    if mask is not None:
        valid = ops.logical_and(valid, ops.convert_to_tensor(mask) > 0)
    return ops.where(valid, index, outside)


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
