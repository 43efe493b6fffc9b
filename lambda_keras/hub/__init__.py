"""keras-hub models of the LambdaResNets.

`LambdaResNetBackbone` (a `keras_hub.models.FeaturePyramidBackbone`, "P2"
... "P5"), `LambdaResNetImageClassifier`, its preprocessor and
`LambdaResNetImageConverter`. Every name of the weights registry
(`lambda_keras.weights.load_manifest`) is a preset of their `from_preset`;
`save_to_preset` writes keras-hub preset folders, which keras-hub's own
`from_preset` reads once this module is imported.

Needs keras-hub: `pip install "lambda_keras[hub]"`.
"""

from lambda_keras.extras import require

require("keras_hub", "lambda_keras.hub")

from lambda_keras.hub.backbone import LambdaResNetBackbone  # noqa: E402
from lambda_keras.hub.image_classifier import LambdaResNetImageClassifier  # noqa: E402
from lambda_keras.hub.image_classifier_preprocessor import (  # noqa: E402
    LambdaResNetImageClassifierPreprocessor,
)
from lambda_keras.hub.image_converter import LambdaResNetImageConverter  # noqa: E402

__all__ = [
    "LambdaResNetBackbone",
    "LambdaResNetImageClassifier",
    "LambdaResNetImageClassifierPreprocessor",
    "LambdaResNetImageConverter",
]
