"""LambdaResNet applications in the style of `keras.applications`.

The named constructors (`LambdaResNet50`, `LambdaResNet26T`, ...) are made
from the rows of `variants.VARIANTS`; `MODELS` maps each name to its
constructor.
"""

from lambda_keras.applications.imagenet import decode_predictions
from lambda_keras.applications.imagenet import preprocess_input
from lambda_keras.applications.lambda_resnet import LambdaResNet
from lambda_keras.applications.variants import MODELS

globals().update(MODELS)

__all__ = [
    "LambdaResNet",
    *MODELS,
    "MODELS",
    "decode_predictions",
    "preprocess_input",
]
