"""The private Keras and TensorFlow APIs lambda_keras uses, each with why.

Everything else in the package uses public API only. Each function here has
no public equivalent; each was checked against Keras 3.15.1 and TensorFlow
2.21. On an upgrade, run `tests/test_compat.py` and the tests of the callers
named below.
"""


def flatten_layers(model):
    """Every layer nested in `model`, its own sub-layers included.

    Keras has no public recursive traversal: `Model.layers` lists the top
    level only, and the batch normalisations inside a `LambdaLayer` are
    attributes of it. The trainer sets the momentum and synchronisation of
    every batch norm (`lambda_keras.train.trainer`).
    """
    return list(model._flatten_layers(include_self=False, recursive=True))


def save_weights_without_optimizer(model, path):
    """Writes `model`'s `.weights.h5` without its optimizer's variables.

    `Model.save_weights` also stores the optimizer (momentum and EMA slots,
    tripling the file); Keras' weights writer takes `objects_to_skip` only
    in its private `saving_lib`. Shipped and best weights need the model's
    alone (`lambda_keras.train.callbacks.save_model_weights`).
    """
    from keras.src.saving import saving_lib

    skip = [model.optimizer] if model.optimizer is not None else []
    saving_lib.save_weights_only(model, path, objects_to_skip=skip)


def patch_tf2onnx():
    """Applies Keras' own fixes to tf2onnx 1.17 for NumPy 2.

    tf2onnx still uses names NumPy 2 removed; `keras.export` patches them
    the same way before its ONNX export (`lambda_keras.export.converters`).
    """
    from keras.src.export.tf2onnx_lib import patch_tf2onnx as keras_patch

    keras_patch()


def freeze_concrete_function(function):
    """A concrete function with its variables and captures folded in.

    TensorFlow exports `convert_variables_to_constants_v2` only under
    `tensorflow.python`. Without it tf2onnx turns the constants captured by
    Keras' `Normalization` layer into extra graph inputs
    (`lambda_keras.export.converters`).
    """
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    return convert_variables_to_constants_v2(function)
