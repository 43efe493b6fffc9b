"""Argument checks shared by lambda_keras layers and models.

Each raises a ValueError naming the argument and the value received.
"""

import math

import keras


def positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"`{name}` must be a positive integer. Received: {name}={value!r}"
        )
    return value


def initializer(name, value):
    """`keras.initializers.get(value)`, its error naming the argument `name`."""
    try:
        return keras.initializers.get(value)
    except (ValueError, TypeError):
        raise ValueError(
            f"`{name}` must be a Keras initializer, its name or its config. "
            f"Received: {name}={value!r}"
        ) from None


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


def image_input_shape(input_shape, default_size, min_size, require_static):
    """The (height, width, channels) input shape of an image model.

    The checks of `keras.applications` for models without its weights:
    channels-last images, each side at least `min_size`.

    Args:
        input_shape: None (the default square, RGB) or (height, width,
            channels); height and width may be None unless
            `require_static`.
        default_size: side of the default shape.
        min_size: smallest side allowed.
        require_static: whether height and width must be known (a
            classifier on top).

    Returns:
        The shape, a tuple.
    """
    if input_shape is None:
        if isinstance(default_size, bool) or not (
            isinstance(default_size, int) and default_size >= min_size
        ):
            raise ValueError(
                f"`default_size` must be an integer of at least {min_size}. "
                f"Received: default_size={default_size!r}"
            )
        return (default_size, default_size, 3)
    shape = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else None
    sides_ok = shape is not None and all(
        side is None
        or (isinstance(side, int) and not isinstance(side, bool) and side >= min_size)
        for side in shape[:2]
    )
    if shape is None or len(shape) != 3 or not sides_ok or shape[2] is None:
        raise ValueError(
            "`input_shape` must be (height, width, channels), the image at "
            f"least {min_size}x{min_size}. Received: input_shape={input_shape!r}"
        )
    positive_int("input_shape[2]", shape[2])
    if require_static and None in shape:
        raise ValueError(
            "With `include_top=True`, `input_shape` must give the height and "
            f"width. Received: input_shape={input_shape!r}"
        )
    return shape


def validate_activation(name, value):
    """Checks that `value` is a Keras activation (or its name) or None."""
    try:
        keras.activations.get(value)
    except (ValueError, TypeError):
        raise ValueError(
            f"`{name}` must be a Keras activation, its name, or None. "
            f"Received: {name}={value!r}"
        ) from None
    return value


def fraction(name, value, include_one=False):
    """Checks that `value` is a number in [0, 1) (or [0, 1])."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (number and 0 <= value and (value <= 1 if include_one else value < 1)):
        interval = "[0, 1]" if include_one else "[0, 1)"
        raise ValueError(
            f"`{name}` must be a number in {interval}. Received: {name}={value!r}"
        )
    return value


def non_negative_number(name, value):
    """Checks that `value` is a finite number >= 0."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (number and 0 <= value < math.inf):
        raise ValueError(
            f"`{name}` must be a finite number >= 0. Received: {name}={value!r}"
        )
    return value


def image_model_head(include_top, classes, pooling, classifier_activation, weights):
    """Checks the arguments of an image model's top before it is built.

    `classes` and `classifier_activation` matter with `include_top`,
    `pooling` without it; a value no model accepts is rejected either way.

    Returns:
        `classes`.
    """
    if pooling not in (None, "avg", "max"):
        raise ValueError(
            f"`pooling` must be None, 'avg' or 'max'. Received: pooling={pooling!r}"
        )
    validate_activation("classifier_activation", classifier_activation)
    if include_top:
        positive_int("classes", classes)
        classifier_activation_for(classifier_activation, weights)
    return classes


def preprocessing_channels(include_preprocessing, input_shape):
    """Checks that a model that normalises RGB inputs gets 3 channels.

    As `keras.applications` requires 3 channels for its ImageNet models,
    the per-channel ImageNet mean and standard deviation only apply to RGB.
    """
    if include_preprocessing and tuple(input_shape)[-1] != 3:
        raise ValueError(
            "`include_preprocessing=True` normalises RGB images with the "
            "ImageNet mean and standard deviation of each of their 3 channels; "
            "give `input_shape` (height, width, 3), or preprocess other "
            f"images yourself. Received: input_shape={tuple(input_shape)}"
        )


def classifier_activation_for(classifier_activation, weights):
    """Checks the classifier's activation against pretrained weights.

    Pretrained classifiers were trained with a softmax: with `weights` only
    "softmax" or None (logits) are allowed, as in `keras.applications`.
    """
    if weights is not None and classifier_activation not in ("softmax", None):
        raise ValueError(
            "With pretrained `weights`, `classifier_activation` must be "
            "'softmax' or None. Received: "
            f"classifier_activation={classifier_activation!r}"
        )
    return classifier_activation
