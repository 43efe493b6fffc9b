"""A quick training run shared by the training tests: 32 px, 2 epochs of 2
steps, the paper350 recipe (RandAugment, dropout, label smoothing, EMA) with
a short EMA."""

from lambda_keras.__main__ import main

MODEL = "LambdaResNet26Cifar"
QUICK = [
    "--model", MODEL, "--image-size", "32", "--batch-size", "6", "--epochs", "2",
    "--steps-per-epoch", "2", "--ema-momentum", "0.5", "--verbose", "0",
]  # fmt: skip


def train_quick(dataset, model_dir, *extra):
    """Runs `lambda-keras train` on `dataset`; returns the exit code."""
    return main(
        ["train", "--dataset", str(dataset), "--model-dir", str(model_dir)]
        + QUICK
        + list(extra)
    )


# A stand-in for the named constructors, for the tests of the trainer's files
# and flags (a LambdaResNet's build and first steps take most of a quick
# run's minute on two cores): the same keyword arguments, the same
# `avg_pool` and `predictions` layers.
TINY_MODEL = "TinyTestNet"
TINY = [
    "--model", TINY_MODEL, "--image-size", "32", "--batch-size", "6",
    "--epochs", "2", "--steps-per-epoch", "1", "--recipe", "paper90",
    "--ema-momentum", "0.5", "--verbose", "0",
]  # fmt: skip


def tiny_test_net(
    include_top=True,
    weights=None,
    input_shape=None,
    classes=3,
    include_preprocessing=False,
    name="tiny_test_net",
    **options,
):
    """A convolution, a batch norm and the classifier."""
    import keras

    inputs = keras.Input(input_shape or (32, 32, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, name="conv")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name=name)
    if weights is not None:
        model.load_weights(weights)
    return model


tiny_test_net.default_size = 32


def register_tiny_model():
    """Adds `TINY_MODEL` to the constructors `--model` accepts, for good (in
    a child process; tests use the `tiny_model` fixture)."""
    from lambda_keras.applications import MODELS

    MODELS[TINY_MODEL] = tiny_test_net


def train_tiny(dataset, model_dir, *extra):
    """Runs `lambda-keras train` with the tiny model; returns the exit code."""
    return main(
        ["train", "--dataset", str(dataset), "--model-dir", str(model_dir)]
        + TINY
        + list(extra)
    )
