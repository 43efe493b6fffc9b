"""LambdaResNet applications in the style of `keras.applications`."""

from lambda_keras.applications.compact_lambda_resnet import LambdaResNet26Cifar
from lambda_keras.applications.compact_lambda_resnet import LambdaResNet26Compact
from lambda_keras.applications.imagenet import decode_predictions
from lambda_keras.applications.imagenet import preprocess_input
from lambda_keras.applications.lambda_resnet import LambdaResNet
from lambda_keras.applications.lambda_resnet import LambdaResNet50
from lambda_keras.applications.lambda_resnet import LambdaResNet101
from lambda_keras.applications.lambda_resnet import LambdaResNet152
from lambda_keras.applications.lambda_resnet import LambdaResNet200
from lambda_keras.applications.lambda_resnet import LambdaResNet270
from lambda_keras.applications.lambda_resnet import LambdaResNet350
from lambda_keras.applications.lambda_resnet import LambdaResNet420
from lambda_keras.applications.timm_lambda_resnet import LambdaResNet26RPT256
from lambda_keras.applications.timm_lambda_resnet import LambdaResNet26T
from lambda_keras.applications.timm_lambda_resnet import LambdaResNet50TS

# Every named constructor, by name (the --model of `lambda-keras train`).
MODELS = {
    constructor.__name__: constructor
    for constructor in (
        LambdaResNet50,
        LambdaResNet101,
        LambdaResNet152,
        LambdaResNet200,
        LambdaResNet270,
        LambdaResNet350,
        LambdaResNet420,
        LambdaResNet26T,
        LambdaResNet50TS,
        LambdaResNet26RPT256,
        LambdaResNet26Compact,
        LambdaResNet26Cifar,
    )
}

__all__ = [
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
    "MODELS",
    "decode_predictions",
    "preprocess_input",
]
