"""Keras layers of lambda_keras."""

from lambda_keras.layers.lambda_layer import LambdaLayer
from lambda_keras.layers.padded_max_pooling import PaddedMaxPooling2D
from lambda_keras.layers.relative_position_embedding import RelativePositionEmbedding
from lambda_keras.layers.stochastic_depth import StochasticDepth

__all__ = [
    "LambdaLayer",
    "PaddedMaxPooling2D",
    "RelativePositionEmbedding",
    "StochasticDepth",
]
