"""Each private Keras/TensorFlow API in `lambda_keras._compat` still works.

These fail first when a Keras or TensorFlow upgrade moves one of them.
"""

import h5py
import keras
import numpy as np
import tensorflow as tf

from lambda_keras import _compat
from lambda_keras.layers import LambdaLayer


def test_flatten_layers_reaches_the_batch_norms_inside_a_lambda_layer():
    inputs = keras.Input((8, 8, 16))
    outputs = LambdaLayer(filters=16, dim_k=4, heads=2, scope=3)(inputs)
    model = keras.Model(inputs, outputs)
    assert not any(
        isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers
    )
    norms = [
        layer
        for layer in _compat.flatten_layers(model)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert len(norms) == 2  # after the queries and after the values


def test_save_weights_without_optimizer(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(momentum=0.9), loss="mse")
    model.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=0)
    path = str(tmp_path / "model.weights.h5")
    _compat.save_weights_without_optimizer(model, path)
    with h5py.File(path) as f:
        assert "optimizer" not in f and "layers" in f
    fresh = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    fresh.load_weights(path)
    np.testing.assert_array_equal(fresh.get_weights()[0], model.get_weights()[0])


def test_patch_tf2onnx_runs():
    _compat.patch_tf2onnx()
    _compat.patch_tf2onnx()  # idempotent, as Keras calls it before each export


def test_freeze_concrete_function_folds_the_variables_in():
    variable = tf.Variable([2.0, 3.0])
    function = tf.function(lambda x: x * variable).get_concrete_function(
        tf.TensorSpec((2,), tf.float32)
    )
    frozen = _compat.freeze_concrete_function(function)
    assert function.captured_inputs and not frozen.captured_inputs
    np.testing.assert_array_equal(frozen(tf.constant([1.0, 1.0]))[0], [2.0, 3.0])
