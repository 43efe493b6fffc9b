"""spread_weights: random BatchNorm parameters and a classifier scaled to the
images."""

import keras
import numpy as np

from lambda_keras.applications import LambdaResNet
from lambda_keras.applications.random_weights import spread_weights


def _model(**kwargs):
    keras.utils.set_random_seed(0)
    options = dict(input_shape=(32, 32, 3), classes=4, width_multiplier=0.25)
    return LambdaResNet((1, 1, 1, 1), **{**options, **kwargs})


def test_logits_have_unit_spread_over_the_images():
    model = _model(classifier_activation=None)
    images = np.random.default_rng(1).normal(size=(6, 32, 32, 3)).astype("float32")
    before = model.predict(images, verbose=0)

    assert spread_weights(model, images, seed=3) is model

    logits = model.predict(images, verbose=0)
    centred = logits - logits.mean(0)
    np.testing.assert_allclose(centred.std(), 1.0, rtol=1e-3)
    np.testing.assert_allclose(logits.mean(0).mean(), 0.0, atol=1e-3)
    assert np.abs(logits - before).max() > 0.1
    for variable in model.variables:
        name = variable.path.split("/")[-1]
        values = keras.ops.convert_to_numpy(variable)
        if name in ("gamma", "moving_variance"):
            assert 0.5 <= values.min() and values.max() <= 1.5 and values.std() > 0.1
        elif name in ("beta", "moving_mean"):
            assert 0.05 < values.std() < 0.2


def test_a_model_without_classifier_gets_only_batch_norm_parameters():
    model = _model(include_top=False, pooling="avg")
    gammas = [v for v in model.variables if v.path.endswith("gamma")]
    assert min(float(keras.ops.min(v)) for v in gammas) == 0.0  # zero-init blocks
    spread_weights(model, np.zeros((1, 32, 32, 3), "float32"))
    assert min(float(keras.ops.min(v)) for v in gammas) >= 0.5
