"""Tests of the recipes (Appendix D) and of the optimizer they configure."""

import math

import keras
import numpy as np
import pytest

from lambda_keras.train.recipes import RECIPES
from lambda_keras.train.trainer import TrainConfig
from lambda_keras.train.trainer import make_optimizer
from lambda_keras.train.trainer import resolve_recipe


def test_paper90_is_appendix_d():
    recipe = RECIPES["paper90"]
    assert (recipe.epochs, recipe.momentum, recipe.weight_decay) == (90, 0.9, 1e-4)
    assert (recipe.base_learning_rate, recipe.warmup_epochs) == (0.1, 5)
    assert (recipe.ema_momentum, recipe.bn_momentum) == (0.9999, 0.9999)
    assert (recipe.label_smoothing, recipe.image_size) == (0.1, 224)
    assert recipe.architecture == "vanilla" and recipe.randaugment_magnitude == 0


def test_paper350_is_appendix_d():
    recipe = RECIPES["paper350"]
    assert (recipe.epochs, recipe.weight_decay, recipe.dropout_rate) == (350, 4e-5, 0.3)
    assert recipe.randaugment_magnitude == 15 and recipe.architecture == "hybrid"
    # Stochastic depth 0.2 beyond ResNet-200 comes from the named constructors.
    assert recipe.stochastic_depth_rate is None


def test_flags_override_the_recipe():
    config = TrainConfig(
        model="LambdaResNet26Cifar",
        dataset="x",
        model_dir="y",
        recipe="paper90",
        epochs=3,
        learning_rate=0.4,
        ema_momentum=0.0,
    )
    recipe = resolve_recipe(config)
    assert (recipe.epochs, recipe.base_learning_rate, recipe.ema_momentum) == (
        3,
        0.4,
        0.0,
    )
    assert recipe.weight_decay == 1e-4  # not overridden
    with pytest.raises(ValueError, match="Received: 'paper1'"):
        resolve_recipe(
            TrainConfig(model="m", dataset="d", model_dir="o", recipe="paper1")
        )


def _small_model():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, name="dense")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    return keras.Model(inputs, x)


def test_warmup_then_cosine_schedule():
    recipe = RECIPES["paper90"].override(epochs=10, warmup_epochs=2)
    optimizer = make_optimizer(
        recipe, batch_size=512, steps_per_epoch=100, model=_small_model()
    )
    schedule = optimizer._learning_rate
    peak = 0.1 * 512 / 256
    rate = lambda step: float(schedule(step))  # noqa: E731
    assert rate(0) == pytest.approx(0.0, abs=1e-7)
    assert rate(100) == pytest.approx(peak / 2, rel=1e-5)  # linear warm-up
    assert rate(200) == pytest.approx(peak, rel=1e-5)
    for step in (400, 600, 900):  # cosine from the peak to 0 over 800 steps
        progress = (step - 200) / 800
        expected = peak * 0.5 * (1 + math.cos(math.pi * progress))
        assert rate(step) == pytest.approx(expected, rel=1e-4, abs=1e-7)
    assert rate(1000) == pytest.approx(0.0, abs=1e-6)


def test_weight_decay_spares_batch_norm_and_biases():
    model = _small_model()
    recipe = RECIPES["paper90"].override(
        weight_decay=0.1, warmup_epochs=0, momentum=0.0, ema_momentum=0.0
    )
    optimizer = make_optimizer(recipe, batch_size=256, steps_per_epoch=10, model=model)
    variables = model.trainable_variables
    for variable in variables:
        variable.assign(np.ones(variable.shape, "float32"))
    # A zero gradient: only the weight decay moves the variables.
    optimizer.apply_gradients([(np.zeros(v.shape, "float32"), v) for v in variables])
    lr = 0.1
    for variable in variables:
        value = keras.ops.convert_to_numpy(variable)
        if variable.path.endswith("kernel"):
            np.testing.assert_allclose(value, 1 - lr * 0.1, rtol=1e-6)
        else:  # dense bias, bn gamma and beta
            np.testing.assert_array_equal(value, 1.0)
