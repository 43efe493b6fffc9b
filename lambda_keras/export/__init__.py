"""Export for serving: SavedModel (TF Serving), TFLite and ONNX.

- `export_saved_model(model, export_dir, version)`: TF Serving's layout
  `export_dir/<version>/saved_model.pb` with the signatures
  `serving_default` (`image_bytes`: encoded JPEG/PNG strings),
  `predict_images` (float32 images in 0-255) and `features` (pooled
  features).
- `export_tflite`, `export_onnx`: the `predict_images` path as a `.tflite`
  or `.onnx` file.
- `resolve_metadata`: class names and preprocessing of registered weights
  (from `checkpoints/manifest.json`) or of a weights file.
- `predict_request`: the JSON body of a TF Serving REST `:predict` call.

The command line is `lambda-keras export` and `lambda-keras predict`.
"""

from lambda_keras.export.converters import export_onnx
from lambda_keras.export.converters import export_tflite
from lambda_keras.export.metadata import ServingMetadata
from lambda_keras.export.metadata import resolve_metadata
from lambda_keras.export.preprocessing import ServingPreprocessing
from lambda_keras.export.preprocessing import decode_images
from lambda_keras.export.rest import predict_request
from lambda_keras.export.saved_model import export_saved_model
from lambda_keras.export.saved_model import saved_model_version_dir
from lambda_keras.export.signatures import SIGNATURE_NAMES
from lambda_keras.export.signatures import ServingEndpoints

__all__ = [
    "SIGNATURE_NAMES",
    "ServingEndpoints",
    "ServingMetadata",
    "ServingPreprocessing",
    "decode_images",
    "export_onnx",
    "export_saved_model",
    "export_tflite",
    "predict_request",
    "resolve_metadata",
    "saved_model_version_dir",
]
