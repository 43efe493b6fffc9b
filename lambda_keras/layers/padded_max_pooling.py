"""Max pooling with explicit, symmetric -inf padding."""

import keras
from keras import ops

from lambda_keras.validation import positive_int


@keras.saving.register_keras_serializable(package="lambda_keras")
class PaddedMaxPooling2D(keras.layers.Layer):
    """2-D max pooling after padding every side with -inf.

    Matches PyTorch's `nn.MaxPool2d(pool_size, strides, padding)`, which
    pads symmetrically and never lets the padding win the max, unlike
    `keras.layers.MaxPooling2D(padding="same")`, which pads only the bottom
    and right when the total padding is odd. Needed to load PyTorch weights
    exactly, also after activations with negative outputs such as SiLU.

    Args:
        pool_size: window size.
        strides: stride.
        padding: rows and columns of -inf added on every side.
        **kwargs: base layer arguments.

    Input shape:
        (b, H, W, c).

    Output shape:
        (b, (H + 2 * padding - pool_size) // strides + 1, ..., c).
    """

    def __init__(self, pool_size=3, strides=2, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = positive_int("pool_size", pool_size)
        self.strides = positive_int("strides", strides)
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(
                "`padding` must be a non-negative integer. "
                f"Received: padding={padding!r}"
            )
        self.padding = padding

    def call(self, inputs):
        pad = self.padding
        padded = ops.pad(
            inputs,
            ((0, 0), (pad, pad), (pad, pad), (0, 0)),
            constant_values=float("-inf"),
        )
        return ops.max_pool(
            padded, self.pool_size, strides=self.strides, padding="valid"
        )

    def compute_output_shape(self, inputs_shape):
        def pooled(size):
            if size is None:
                return None
            return (size + 2 * self.padding - self.pool_size) // self.strides + 1

        batch, height, width, channels = inputs_shape
        return (batch, pooled(height), pooled(width), channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "pool_size": self.pool_size,
                "strides": self.strides,
                "padding": self.padding,
            }
        )
        return config
