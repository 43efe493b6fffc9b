"""lambda_keras: LambdaNetworks (Bello, ICLR 2021) for Keras 3."""

from lambda_keras import applications
from lambda_keras import layers
from lambda_keras import ops
from lambda_keras.applications import LambdaResNet
from lambda_keras.applications import LambdaResNet26Cifar
from lambda_keras.applications import LambdaResNet26Compact
from lambda_keras.applications import LambdaResNet26RPT256
from lambda_keras.applications import LambdaResNet26T
from lambda_keras.applications import LambdaResNet50
from lambda_keras.applications import LambdaResNet50TS
from lambda_keras.applications import LambdaResNet101
from lambda_keras.applications import LambdaResNet152
from lambda_keras.applications import LambdaResNet200
from lambda_keras.applications import LambdaResNet270
from lambda_keras.applications import LambdaResNet350
from lambda_keras.applications import LambdaResNet420
from lambda_keras.layers import LambdaLayer
from lambda_keras.layers import RelativePositionEmbedding

__version__ = "0.1.0"

__all__ = [
    "LambdaLayer",
    "LambdaResNet",
    "LambdaResNet50",
    "LambdaResNet101",
    "LambdaResNet152",
    "LambdaResNet200",
    "LambdaResNet270",
    "LambdaResNet350",
    "LambdaResNet420",
    "LambdaResNet26T",
    "LambdaResNet50TS",
    "LambdaResNet26RPT256",
    "LambdaResNet26Compact",
    "LambdaResNet26Cifar",
    "RelativePositionEmbedding",
    "applications",
    "layers",
    "ops",
]
