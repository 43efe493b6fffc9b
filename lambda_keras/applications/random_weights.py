"""Random weights whose outputs say something, for numerical parity checks.

A freshly initialised LambdaResNet zeroes every residual branch (gamma = 0
in each block's last BatchNorm) and gives near uniform probabilities, and
unscaled random weights give saturated ones: either makes a comparison of
two runtimes' outputs (an export against Keras) too easy to pass.
`spread_weights` gives a model random BatchNorm parameters and a classifier
scaled to the images it will be compared on. The export tests and
`benchmarks/export_sizes.py` use it.
"""

import keras
import numpy as np


def spread_weights(model, images, seed=0):
    """Spreads a model's random weights so that its outputs vary.

    In place: every BatchNorm `gamma` and `moving_variance` drawn from
    U(0.5, 1.5), every `beta` and `moving_mean` from N(0, 0.1); then, when
    the model has its "predictions" classifier (after the "avg_pool"
    layer), a random classifier whose logits have a standard deviation of 1
    and a mean of 0 over `images`.

    Args:
        model: a LambdaResNet (any Keras model with BatchNorm layers; the
            classifier is rescaled only with "avg_pool" and "predictions"
            layers).
        images: the model's inputs (batch, height, width, 3) the outputs
            will be compared on.
        seed: seed of the draws.

    Returns:
        The model.
    """
    rng = np.random.default_rng(seed)
    for variable in model.variables:
        name = variable.path.split("/")[-1]
        shape = tuple(variable.shape)
        if name in ("gamma", "moving_variance"):
            variable.assign(rng.uniform(0.5, 1.5, shape))
        elif name in ("beta", "moving_mean"):
            variable.assign(rng.normal(0.0, 0.1, shape))
    if "predictions" not in [layer.name for layer in model.layers]:
        return model
    embedder = keras.Model(model.input, model.get_layer("avg_pool").output)
    features = embedder.predict(images, verbose=0)
    classifier = model.get_layer("predictions")
    kernel = rng.normal(0.0, 1.0, tuple(classifier.kernel.shape))
    kernel /= max(((features - features.mean(0)) @ kernel).std(), 1e-6)
    classifier.kernel.assign(kernel)
    classifier.bias.assign(-features.mean(0) @ kernel)
    return model
