"""Gradients on whichever Keras backend the tests run under."""

import keras
from keras import ops


def value_and_gradients(function, *inputs):
    """function(*inputs) and the gradients of sum(function(*inputs))."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(x) for x in inputs]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            outputs = function(*tensors)
            loss = tf.reduce_sum(outputs)
        gradients = tape.gradient(loss, tensors)
    elif backend == "jax":
        import jax

        outputs = function(*inputs)
        gradients = jax.grad(
            lambda *x: function(*x).sum(), argnums=tuple(range(len(inputs)))
        )(*inputs)
    else:
        import torch

        tensors = [torch.tensor(x, requires_grad=True) for x in inputs]
        outputs = function(*tensors)
        outputs.sum().backward()
        gradients = [t.grad for t in tensors]
    return ops.convert_to_numpy(outputs), [ops.convert_to_numpy(g) for g in gradients]
