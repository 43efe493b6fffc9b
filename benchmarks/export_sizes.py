"""Exported sizes and parity of the SavedModel, TFLite and ONNX exports.

    python benchmarks/export_sizes.py

For LambdaResNet26Compact (10 classes at 80 px, the configuration of our
Imagenette checkpoint) and LambdaResNet26T (1000 classes at 256 px, timm's
ImageNet configuration), with random weights whose BatchNorm statistics are
spread and whose classifier is scaled to logits of standard deviation 1 on
the sample photographs (`lambda_keras.applications.random_weights`, so that
the probabilities are neither uniform nor saturated), exports the
SavedModel, TFLite (float32 and dynamic-range int8) and ONNX models and
reports their sizes and the largest difference of their probabilities from
the Keras model's on the three sample photographs (SavedModel:
`serving_default` on the JPEG bytes and `predict_images`, reloaded with
`tf.saved_model.load`). Writes benchmarks/results/export.json.
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from lambda_keras.applications import MODELS  # noqa: E402
from lambda_keras.applications.random_weights import spread_weights  # noqa: E402
from lambda_keras.export import ServingPreprocessing  # noqa: E402
from lambda_keras.export import decode_images  # noqa: E402
from lambda_keras.export import export_onnx  # noqa: E402
from lambda_keras.export import export_saved_model  # noqa: E402
from lambda_keras.export import export_tflite  # noqa: E402
from lambda_keras.preprocessing import sample_images  # noqa: E402

CONFIGURATIONS = (
    ("LambdaResNet26Compact", 10, ServingPreprocessing(80, 0.875, "bilinear")),
    ("LambdaResNet26T", 1000, ServingPreprocessing(256, 0.94, "bicubic")),
)
OUTPUT = Path(__file__).parent / "results" / "export.json"


def folder_size(path):
    return sum(file.stat().st_size for file in Path(path).rglob("*") if file.is_file())


def measure(name, classes, preprocessing, folder):
    size = preprocessing.input_size
    keras.utils.set_random_seed(0)
    model = MODELS[name](
        weights=None,
        classes=classes,
        include_preprocessing=True,
        input_shape=(size, size, 3),
    )
    encoded = [path.read_bytes() for path in sample_images()]
    images = decode_images(tf.constant(encoded), preprocessing).numpy()
    spread_weights(model, images)
    expected = model.predict(images, verbose=0)
    row = {
        "model": name,
        "classes": classes,
        "input_size": size,
        "parameters": model.count_params(),
        "keras_top1_probabilities": expected.max(1).round(4).tolist(),
    }

    def difference(probabilities):
        return float(np.abs(np.asarray(probabilities) - expected).max())

    start = time.perf_counter()
    path = export_saved_model(model, folder / name, 1, preprocessing=preprocessing)
    row["saved_model_seconds"] = round(time.perf_counter() - start, 1)
    row["saved_model_bytes"] = folder_size(path)
    loaded = tf.saved_model.load(path)
    by_bytes = loaded.signatures["serving_default"](image_bytes=tf.constant(encoded))
    by_images = loaded.signatures["predict_images"](images=tf.constant(images))
    row["saved_model_bytes_max_difference"] = difference(by_bytes["probabilities"])
    row["saved_model_images_max_difference"] = difference(by_images["probabilities"])

    for label, quantize in (("tflite_float32", None), ("tflite_int8", "dynamic_range")):
        tflite = folder / f"{name}_{label}.tflite"
        start = time.perf_counter()
        row[f"{label}_bytes"] = export_tflite(
            model, tflite, quantize=quantize, preprocessing=preprocessing
        )
        row[f"{label}_seconds"] = round(time.perf_counter() - start, 1)
        runner = tf.lite.Interpreter(str(tflite)).get_signature_runner()
        row[f"{label}_max_difference"] = difference(
            runner(images=images)["probabilities"]
        )

    import onnxruntime

    onnx_path = folder / f"{name}.onnx"
    start = time.perf_counter()
    row["onnx_bytes"] = export_onnx(model, onnx_path, preprocessing=preprocessing)
    row["onnx_seconds"] = round(time.perf_counter() - start, 1)
    session = onnxruntime.InferenceSession(
        str(onnx_path), providers=["CPUExecutionProvider"]
    )
    probabilities = session.run(["probabilities"], {"images": images})[0]
    row["onnx_max_difference"] = difference(probabilities)
    return row


def main():
    names = sys.argv[1:] or [name for name, _, _ in CONFIGURATIONS]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, classes, preprocessing in CONFIGURATIONS:
            if name in names:
                rows.append(measure(name, classes, preprocessing, Path(folder)))
                print(json.dumps(rows[-1]), flush=True)
    print()
    print(
        "| model | SavedModel | max diff (bytes / images) | TFLite float32 | "
        "max diff | TFLite int8 | max diff | ONNX | max diff |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['model']} ({row['classes']} classes, {row['input_size']} px) "
            f"| {row['saved_model_bytes'] / 1e6:.1f} MB "
            f"| {row['saved_model_bytes_max_difference']:.1e} / "
            f"{row['saved_model_images_max_difference']:.1e} "
            f"| {row['tflite_float32_bytes'] / 1e6:.1f} MB "
            f"| {row['tflite_float32_max_difference']:.1e} "
            f"| {row['tflite_int8_bytes'] / 1e6:.1f} MB "
            f"| {row['tflite_int8_max_difference']:.1e} "
            f"| {row['onnx_bytes'] / 1e6:.1f} MB | {row['onnx_max_difference']:.1e} |"
        )
    OUTPUT.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
