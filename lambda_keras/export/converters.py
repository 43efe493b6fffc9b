"""TFLite and ONNX exports of the `predict_images` path.

Both convert the numeric core of the signatures
(`ServingEndpoints.outputs`): `images` float32 (batch, size, size, 3), RGB
in 0-255, to `probabilities` (batch, classes) and `features` (batch, d),
at the preprocessing's fixed size with a dynamic batch. Decoding and
resizing stay with the caller (TFLite and ONNX runtimes decode images their
own way); the class names are written beside the model by the CLI
(`labels.txt`).

The function is frozen first (variables and captured constants folded into
the graph by `_compat.freeze_concrete_function`): `tf2onnx` otherwise turns
the captured mean and variance of Keras' `Normalization` layer into extra
graph inputs, and the TFLite converter keeps Keras variables as resource
variables (`READ_VARIABLE`). Both converters accept every op of the
LambdaResNets with their builtin op sets (no `SELECT_TF_OPS`, no custom ONNX
ops), for the einsum and the lambda-convolution implementations.
"""

import os
import tempfile

import keras
import tensorflow as tf

from lambda_keras._compat import freeze_concrete_function
from lambda_keras._compat import patch_tf2onnx
from lambda_keras.export.outputs import check_can_write
from lambda_keras.export.outputs import write_replacing
from lambda_keras.export.signatures import ServingEndpoints
from lambda_keras.extras import require

TFLITE_QUANTIZATIONS = (None, "dynamic_range")
DEFAULT_ONNX_OPSET = 17
INPUT_NAME = "images"
OUTPUT_NAMES = ("probabilities", "features")


def numeric_function(model, batch_size=None, **endpoint_options):
    """The `images -> {probabilities, features}` tf.function, fixed size.

    Args:
        model: a classifier (see `ServingEndpoints`).
        batch_size: fixed batch size, or None for a dynamic one.
        **endpoint_options: `class_names`, `preprocessing` (its input size
            fixes the spatial size) ... of `ServingEndpoints`.

    Returns:
        `(endpoints, function)`: the `ServingEndpoints` and a `tf.function`
        with its input signature, returning a dict.
    """
    endpoints = ServingEndpoints(model, dynamic_size=False, **endpoint_options)
    size = endpoints.preprocessing.input_size
    spec = tf.TensorSpec((batch_size, size, size, 3), tf.float32, name=INPUT_NAME)
    function = tf.function(endpoints.outputs, input_signature=[spec], autograph=False)
    return endpoints, function


def export_tflite(model, path, *, quantize=None, preprocessing=None, overwrite=False):
    """Writes a TFLite model of the `predict_images` path.

    The model's signature `serving_default` takes `images` (batch, size,
    size, 3) float32 (batch 1 until the interpreter resizes it) and returns
    `probabilities` and `features`.

    Args:
        model: a classifier (see `ServingEndpoints`).
        path: the `.tflite` file to write.
        quantize: None (float32) or "dynamic_range" (int8 weights, float
            activations: `tf.lite.Optimize.DEFAULT` without a
            representative dataset).
        preprocessing: as for `export_saved_model`; its `input_size` is the
            model's input size.
        overwrite: replace an existing `path`.

    Returns:
        The size of the file in bytes.

    Raises:
        FileExistsError: `path` exists and `overwrite` is false.
    """
    if quantize not in TFLITE_QUANTIZATIONS:
        raise ValueError(
            f"`quantize` must be one of {TFLITE_QUANTIZATIONS}. "
            f"Received: quantize={quantize!r}"
        )
    check_can_write(path, overwrite, f"path={str(path)!r}")
    _, function = numeric_function(model, preprocessing=preprocessing)
    # As Keras' own TFLite export: through a SavedModel, whose loader
    # freezes the Keras variables and keeps the output names.
    with tempfile.TemporaryDirectory() as saved_model:
        archive = keras.export.ExportArchive()
        archive.add_endpoint("serving_default", function)
        archive.write_out(saved_model, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize == "dynamic_range":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        content = converter.convert()

    def write(staged):
        with open(staged, "wb") as file:
            file.write(content)

    write_replacing(path, write)
    return len(content)


def export_onnx(
    model, path, *, opset=DEFAULT_ONNX_OPSET, preprocessing=None, overwrite=False
):
    """Writes an ONNX model of the `predict_images` path (via tf2onnx).

    The graph's input is `images` (batch, size, size, 3) float32 with a
    dynamic `batch`; its outputs `probabilities` and `features`.

    Args:
        model: a classifier (see `ServingEndpoints`).
        path: the `.onnx` file to write.
        opset: ONNX opset.
        preprocessing: as for `export_saved_model`.
        overwrite: replace an existing `path`.

    Returns:
        The size of the file in bytes.

    Raises:
        FileExistsError: `path` exists and `overwrite` is false.
    """
    onnx = require("onnx", "ONNX export")
    tf2onnx = require("tf2onnx", "ONNX export")
    check_can_write(path, overwrite, f"path={str(path)!r}")

    patch_tf2onnx()
    _, function = numeric_function(model, preprocessing=preprocessing)
    as_tuple = tf.function(
        lambda images: tuple(function(images)[name] for name in OUTPUT_NAMES),
        input_signature=function.input_signature,
        autograph=False,
    )
    # Frozen: tf2onnx would make extra graph inputs of the constants that
    # Keras' Normalization layer captures.
    frozen = freeze_concrete_function(as_tuple.get_concrete_function())
    input_name = frozen.inputs[0].name
    output_names = [tensor.name for tensor in frozen.outputs]
    proto, _ = tf2onnx.convert.from_graph_def(
        frozen.graph.as_graph_def(),
        input_names=[input_name],
        output_names=output_names,
        opset=opset,
    )
    _rename(
        proto.graph, {input_name: INPUT_NAME, **dict(zip(output_names, OUTPUT_NAMES))}
    )
    for value in list(proto.graph.input) + list(proto.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.checker.check_model(proto)
    write_replacing(path, lambda staged: onnx.save(proto, staged))
    return os.path.getsize(path)


def _rename(graph, renames):
    """Renames tensors (graph inputs, outputs and node connections)."""
    for value in list(graph.input) + list(graph.output):
        value.name = renames.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
