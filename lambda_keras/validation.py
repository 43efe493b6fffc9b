"""Argument checks shared by lambda_keras layers and models.

Each raises a ValueError naming the argument and the value received.
"""


def positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"`{name}` must be a positive integer. Received: {name}={value!r}"
        )
    return value


def validate_scope(scope):
    """Checks that `scope` is None (global context) or a positive odd int."""
    if scope is None:
        return None
    if isinstance(scope, bool) or not isinstance(scope, int) or scope <= 0:
        raise ValueError(
            "`scope` must be None (global context) or a positive odd "
            f"integer. Received: scope={scope!r}"
        )
    if scope % 2 == 0:
        raise ValueError(
            "`scope` must be odd so that the local context is centred on "
            f"the query. Received: scope={scope}"
        )
    return scope


def validate_max_size(max_size, scope):
    """Normalises `max_size` to None or a tuple of positive ints.

    Also rejects a local `scope` wider than any offset an input of
    `max_size` can have (2 * max_size - 1).
    """
    if max_size is None:
        return None
    sizes = (max_size,) if isinstance(max_size, int) else tuple(max_size)
    if (
        not sizes
        or len(sizes) > 2
        or any(
            isinstance(size, bool) or not isinstance(size, int) or size <= 0
            for size in sizes
        )
    ):
        raise ValueError(
            "`max_size` must be a positive integer or a tuple of 1 or 2 "
            f"positive integers. Received: max_size={max_size!r}"
        )
    if scope is not None and scope > 2 * max(sizes) - 1:
        raise ValueError(
            "`scope` is larger than allowed: an input of at most "
            f"`max_size`={max_size} has offsets up to {max(sizes) - 1}, so "
            f"scope may be at most {2 * max(sizes) - 1}. Received: "
            f"scope={scope}"
        )
    return sizes


def spatial_sizes(max_size, spatial_rank):
    """Expands a validated `max_size` tuple to one size per spatial axis."""
    if len(max_size) == spatial_rank:
        return max_size
    if len(max_size) == 1:
        return max_size * spatial_rank
    raise ValueError(
        f"`max_size` has {len(max_size)} entries but the input has "
        f"{spatial_rank} spatial dimension(s). Received: max_size={max_size}"
    )
