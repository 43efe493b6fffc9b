"""Stochastic depth (Huang et al., 2016) for residual branches."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="lambda_keras")
class StochasticDepth(keras.layers.Layer):
    """Drops a whole residual branch per example during training.

    In training, each example's branch is zeroed with probability `rate` and
    scaled by 1 / (1 - rate) otherwise, so the expectation is unchanged; in
    inference the branch passes through. Used by the deep LambdaResNets
    (Appendix D: drop probability 0.2 for models deeper than ResNet-200).

    Args:
        rate: drop probability in [0, 1).
        seed: optional seed of the random draws.
        **kwargs: base layer arguments.

    Input shape:
        (b, ...) residual branch.

    Output shape:
        Same as the input.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if (
            isinstance(rate, bool)
            or not isinstance(rate, (int, float))
            or not (0 <= rate < 1)
        ):
            raise ValueError(f"`rate` must be in [0, 1). Received: rate={rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        keep = 1.0 - self.rate
        shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        draws = keras.random.uniform(
            shape, seed=self.seed_generator, dtype=inputs.dtype
        )
        return inputs * ops.cast(draws < keep, inputs.dtype) / keep

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config
