"""lambda_keras: LambdaNetworks (Bello, ICLR 2021) for Keras 3."""

from lambda_keras import layers
from lambda_keras import ops
from lambda_keras.layers import LambdaLayer
from lambda_keras.layers import RelativePositionEmbedding

__version__ = "0.1.0"

__all__ = ["LambdaLayer", "RelativePositionEmbedding", "layers", "ops"]
