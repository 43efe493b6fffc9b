"""lambda_keras: LambdaNetworks (Bello, ICLR 2021) for Keras 3."""

from lambda_keras import applications
from lambda_keras import layers
from lambda_keras import ops
from lambda_keras.applications import MODELS
from lambda_keras.applications import LambdaResNet
from lambda_keras.layers import LambdaLayer
from lambda_keras.layers import RelativePositionEmbedding

globals().update(MODELS)

__version__ = "0.1.0"

__all__ = [
    "LambdaLayer",
    "LambdaResNet",
    *MODELS,
    "RelativePositionEmbedding",
    "applications",
    "layers",
    "ops",
]
