"""LambdaResNet constructors under hostile arguments: each one a ValueError
naming the argument and the value, raised before any layer is built; and
an empty batch through a model."""

import re

import keras
import numpy as np
import pytest

from lambda_keras import applications

# The smallest network the builder makes: 32 px, one block per stage.
TINY = dict(
    depths=(1, 1, 1, 1),
    input_shape=(32, 32, 3),
    classes=3,
    stem="small_image",
    width_multiplier=0.125,
    scope=3,
    placement="C,C,L,L",
)


def tiny_model(**kwargs):
    arguments = dict(TINY, **kwargs)
    return applications.LambdaResNet(arguments.pop("depths"), **arguments)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        # Preprocessing normalises RGB (as keras.applications' ImageNet
        # models, it needs 3 channels).
        (
            dict(include_preprocessing=True, input_shape=(64, 64, 1)),
            "3 channels",
        ),
        (dict(include_preprocessing=True, input_shape=(64, 64, 4)), "3 channels"),
        (dict(classes=0), "classes=0"),
        (dict(classes=-5), "classes=-5"),
        (dict(classes=2.5), "classes=2.5"),
        (dict(classes="10"), "classes='10'"),
        (dict(classes=True), "classes=True"),
        (dict(classes=None), "classes=None"),
        (dict(input_shape=(0, 64, 3)), r"input_shape=\(0, 64, 3\)"),
        (dict(input_shape=(-64, 64, 3)), r"input_shape=\(-64, 64, 3\)"),
        (dict(input_shape=(64, 64, 0)), r"input_shape\[2\]=0"),
        (dict(input_shape=(64, 64, -3)), r"input_shape\[2\]=-3"),
        (dict(input_shape=(64, 64, None)), r"input_shape=\(64, 64, None\)"),
        (dict(input_shape=(None, 64, 3)), r"input_shape=\(None, 64, 3\)"),
        (dict(input_shape=(64.0, 64, 3)), r"input_shape=\(64.0, 64, 3\)"),
        (dict(input_shape=(64, 64)), r"input_shape=\(64, 64\)"),
        (dict(input_shape="64"), "input_shape='64'"),
        (dict(pooling="mean", include_top=False), "pooling='mean'"),
        (dict(pooling="mean"), "pooling='mean'"),
        (dict(pooling=3, include_top=False), "pooling=3"),
        (dict(classifier_activation="bogus"), "classifier_activation='bogus'"),
        (dict(classifier_activation=3), "classifier_activation=3"),
        (dict(weights=3), "weights=3"),
        (dict(weights=["imagenet"]), r"weights=\['imagenet'\]"),
        (dict(dropout_rate=1.0), "dropout_rate=1.0"),
        (dict(dropout_rate=-0.1), "dropout_rate=-0.1"),
        (dict(dropout_rate="high"), "dropout_rate='high'"),
        (dict(stochastic_depth_rate=1.5), "stochastic_depth_rate=1.5"),
        (dict(stochastic_depth_rate=-0.5), "stochastic_depth_rate=-0.5"),
        (dict(se_ratio=-1), "se_ratio=-1"),
        (dict(se_ratio="quarter"), "se_ratio='quarter'"),
        (dict(activation="bogus"), "activation='bogus'"),
        (dict(input_shape=None, default_size=0), "default_size=0"),
        (dict(dim_k=0), "dim_k=0"),
        (dict(heads=0), "heads=0"),
        (dict(scope=4), "scope=4"),
        (dict(implementation="fast"), "implementation='fast'"),
    ],
)
def test_hostile_argument_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_model(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(classes=0), "Received: classes=0"),
        (dict(include_top=False, pooling="sum"), "Received: pooling='sum'"),
        (dict(classifier_activation="softmaxx"), "classifier_activation='softmaxx'"),
        (dict(dropout_rate=2), "Received: dropout_rate=2"),
        (
            dict(include_preprocessing=True, input_shape=(64, 64, 1)),
            "Received: input_shape=(64, 64, 1)",
        ),
    ],
)
def test_named_constructors_check_before_building(kwargs, message, monkeypatch):
    # A check made after the network is built would build LambdaResNet50's
    # first layer; make any layer construction fail loudly instead.
    def no_building(*args, **kwargs):
        raise AssertionError("a layer was built before the arguments were checked")

    monkeypatch.setattr(applications.lambda_resnet, "_BlockFactory", no_building)
    with pytest.raises(ValueError, match=re.escape(message)):
        applications.LambdaResNet50(**kwargs)


def test_include_preprocessing_names_an_input_tensor_of_one_channel():
    grey = keras.Input((64, 64, 1))
    with pytest.raises(ValueError, match=re.escape("input_shape=(64, 64, 1)")):
        tiny_model(input_tensor=grey, input_shape=None, include_preprocessing=True)


def test_one_channel_without_preprocessing_and_classes_without_top_still_work():
    model = tiny_model(include_top=False, input_shape=(32, 32, 1), classes=0)

    assert model.output_shape == (None, 2, 2, 256)


def test_stochastic_depth_rate_of_one_is_allowed():
    # The last block drops its branch with probability (n - 1) / n < 1.
    model = tiny_model(stochastic_depth_rate=1.0)

    assert model.output_shape == (None, 3)


def test_empty_batch_through_a_model():
    model = tiny_model()
    empty = np.zeros((0, 32, 32, 3), "float32")

    assert tuple(model(empty, training=False).shape) == (0, 3)
    # predict_on_batch runs the compiled function (a graph on TensorFlow).
    assert model.predict_on_batch(empty).shape == (0, 3)
