"""TFLite and ONNX exports: interpreter and onnxruntime parity on real
photographs, for both lambda-layer implementations."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from export_helpers import PREPROCESSING
from export_helpers import keras_inputs
from export_helpers import small_model

from lambda_keras.export import export_onnx
from lambda_keras.export import export_tflite
from lambda_keras.ops import conv_formulation

IMPLEMENTATIONS = ("einsum", "conv")
# The TFLite op of each formulation of the lambda convolution.
TFLITE_OPS = {
    "conv3d": "CONV_3D",
    "conv2d": "CONV_2D",
    "depthwise": "DEPTHWISE_CONV_2D",
}


@pytest.fixture(scope="module", params=IMPLEMENTATIONS)
def reference(request, encoded_images):
    """A model (einsum or lambda-convolution position lambdas), the sample
    inputs and the Keras outputs on them."""
    model = small_model(implementation=request.param)
    images = keras_inputs(encoded_images)
    embedder = keras.Model(model.input, model.get_layer("avg_pool").output)
    expected = {
        "probabilities": model.predict(images, verbose=0),
        "features": embedder.predict(images, verbose=0),
    }
    return request.param, model, images, expected


def run_tflite(path, images):
    interpreter = tf.lite.Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner("serving_default")
    # The batch dimension is dynamic: one call for the whole batch.
    return runner(images=images), interpreter


def max_difference(outputs, expected, name):
    return float(np.abs(outputs[name] - expected[name]).max())


@pytest.mark.slow
def test_tflite_float32_parity(reference, tmp_path):
    implementation, model, images, expected = reference
    path = tmp_path / "model.tflite"
    size = export_tflite(model, path, preprocessing=PREPROCESSING)
    assert size == path.stat().st_size
    # float32 weights: about 4 bytes per parameter.
    assert 0.9 < size / (4 * model.count_params()) < 1.3
    outputs, interpreter = run_tflite(path, images)
    assert interpreter.get_signature_list() == {
        "serving_default": {
            "inputs": ["images"],
            "outputs": ["features", "probabilities"],
        }
    }
    difference = max_difference(outputs, expected, "probabilities")
    print(f"TFLite float32 ({implementation}): {size} bytes, {difference:.2e}")
    assert difference <= 1e-4
    scale = np.abs(expected["features"]).max()
    assert max_difference(outputs, expected, "features") <= 1e-4 * scale
    # Builtin ops only (the converter ran without SELECT_TF_OPS).
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert not any(op.startswith("Flex") for op in ops)
    if implementation == "conv":
        # The lambda convolution, in the formulation of TensorFlow's CPU row.
        formulation = conv_formulation("tensorflow", "cpu")
        assert TFLITE_OPS[formulation] in ops


@pytest.mark.slow
def test_tflite_dynamic_range_int8(reference, tmp_path):
    implementation, model, images, expected = reference
    float_size = export_tflite(model, tmp_path / "float.tflite")
    path = tmp_path / "int8.tflite"
    size = export_tflite(model, path, quantize="dynamic_range")
    # The convolution and dense kernels become int8; small tensors (under
    # 1024 values), BatchNorm and position tables stay float32.
    assert size < 0.5 * float_size
    outputs, _ = run_tflite(path, images)
    features = expected["features"]
    error = np.linalg.norm(outputs["features"] - features) / np.linalg.norm(features)
    difference = max_difference(outputs, expected, "probabilities")
    print(
        f"TFLite dynamic-range int8 ({implementation}): {size} bytes, features "
        f"relative error {error:.2e}, probabilities {difference:.2e}"
    )
    # int8 weights: close to Keras, but not within float32 rounding. (The
    # probabilities of these random models move more: their classifier
    # subtracts a large bias, which amplifies the features' error.)
    assert 1e-5 < error < 0.03
    np.testing.assert_allclose(outputs["probabilities"].sum(1), 1, rtol=1e-5)
    with pytest.raises(ValueError, match="Received: quantize='int4'"):
        export_tflite(model, path, quantize="int4")


@pytest.mark.slow
def test_onnx_parity(reference, tmp_path):
    import onnx
    import onnxruntime

    implementation, model, images, expected = reference
    path = tmp_path / "model.onnx"
    size = export_onnx(model, path, preprocessing=PREPROCESSING)
    assert size == path.stat().st_size
    proto = onnx.load(str(path))
    # Standard ONNX operators only (no custom or contrib domains).
    assert {node.domain for node in proto.graph.node} <= {"", "ai.onnx"}
    session = onnxruntime.InferenceSession(
        str(path), providers=["CPUExecutionProvider"]
    )
    [image_input] = session.get_inputs()
    assert (image_input.name, image_input.shape) == ("images", ["batch", 64, 64, 3])
    names = [output.name for output in session.get_outputs()]
    assert names == ["probabilities", "features"]
    for batch in (1, len(images)):
        values = session.run(None, {"images": images[:batch]})
        outputs = dict(zip(names, values))
        subset = {name: value[:batch] for name, value in expected.items()}
        difference = max_difference(outputs, subset, "probabilities")
        assert difference <= 1e-4
        scale = np.abs(expected["features"]).max()
        assert max_difference(outputs, subset, "features") <= 1e-4 * scale
    print(f"ONNX ({implementation}): {size} bytes, {difference:.2e}")
