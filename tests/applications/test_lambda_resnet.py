"""LambdaResNet constructors, in the manner of Keras' applications_test.py."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import lambda_keras
from lambda_keras import applications
from lambda_keras.layers import LambdaLayer
from lambda_keras.layers import StochasticDepth
from lambda_keras.preprocessing import load_image
from lambda_keras.preprocessing import sample_images

# Appendix D: blocks per stage and lambda layers in c4 of each hybrid model.
PAPER_MODELS = {
    50: ((3, 4, 6, 3), 1),
    101: ((3, 4, 23, 3), 3),
    152: ((3, 8, 36, 3), 6),
    200: ((3, 24, 36, 3), 6),
    270: ((4, 29, 53, 4), 6),
    350: ((4, 36, 72, 4), 6),
    420: ((4, 44, 87, 4), 8),
}
CONSTRUCTORS = {
    depth: getattr(applications, f"LambdaResNet{depth}") for depth in PAPER_MODELS
}
DEEP = (200, 270, 350, 420)


def lambda_layers_per_stage(model):
    counts = [0, 0, 0, 0]
    for layer in model.layers:
        if isinstance(layer, LambdaLayer):
            counts[int(layer.name[1]) - 2] += 1
    return counts


@pytest.mark.parametrize(
    "depth",
    [pytest.param(d, marks=pytest.mark.slow) if d in DEEP else d for d in CONSTRUCTORS],
)
def test_every_constructor_builds_the_paper_architecture(depth):
    model = CONSTRUCTORS[depth](
        include_top=False, input_shape=(64, 64, 3), pooling="avg"
    )

    assert model.output_shape == (None, 2048)
    assert model.name == f"lambda_resnet{depth}"
    blocks, c4 = PAPER_MODELS[depth]
    assert lambda_layers_per_stage(model) == [0, 0, c4, blocks[3]]
    assert getattr(lambda_keras, f"LambdaResNet{depth}") is CONSTRUCTORS[depth]
    drops = [layer.rate for layer in model.layers if isinstance(layer, StochasticDepth)]
    if depth > 200:
        assert len(drops) == sum(blocks) - 1 and max(drops) < 0.2 < max(drops) + 0.01
    else:
        assert drops == []


@pytest.mark.parametrize(
    "depth",
    [pytest.param(d, marks=pytest.mark.slow) if d in DEEP else d for d in CONSTRUCTORS],
)
@pytest.mark.parametrize(
    "kwargs, shape",
    [
        (dict(include_top=True, classes=10), (None, 10)),
        (dict(include_top=False, pooling=None), (None, 2, 2, 2048)),
        (dict(include_top=False, pooling="max"), (None, 2048)),
    ],
)
def test_output_shapes_with_and_without_top(depth, kwargs, shape):
    model = CONSTRUCTORS[depth](input_shape=(64, 64, 3), **kwargs)
    assert model.output_shape == shape


def test_with_top_classifies_a_real_image():
    model = applications.LambdaResNet50(input_shape=(64, 64, 3), classes=10)
    image = load_image(sample_images()[0], 64)[None]
    probabilities = model.predict(applications.preprocess_input(image), verbose=0)
    assert probabilities.shape == (1, 10)
    np.testing.assert_allclose(probabilities.sum(), 1.0, rtol=1e-5)
    assert model.get_layer("top_dropout").rate == 0.3


def test_default_input_size_and_classifier():
    model = applications.LambdaResNet152()
    assert model.input_shape == (None, 256, 256, 3)
    assert model.output_shape == (None, 1000)
    assert model.get_layer("predictions").activation.__name__ == "softmax"


def test_classifier_activation_none_gives_logits():
    model = applications.LambdaResNet50(
        input_shape=(64, 64, 3), classes=5, classifier_activation=None
    )
    logits = model.predict(np.random.rand(2, 64, 64, 3).astype("float32"), verbose=0)
    assert not np.allclose(logits.sum(axis=1), 1.0)
    assert model.get_layer("predictions").activation.__name__ == "linear"


def test_custom_input_tensor():
    inputs = keras.Input((96, 80, 3))
    features = keras.layers.Rescaling(1.0 / 255)(inputs)
    model = applications.LambdaResNet50(
        include_top=False, input_tensor=features, pooling="max"
    )
    assert model.inputs[0] is inputs
    assert model.output_shape == (None, 2048)


def test_one_channel_input_without_top():
    model = applications.LambdaResNet50(include_top=False, input_shape=(64, 64, 1))
    features = model.predict(np.random.rand(1, 64, 64, 1).astype("float32"), verbose=0)
    assert features.shape == (1, 2, 2, 2048)


def test_variable_spatial_size_with_local_scope():
    model = applications.LambdaResNet50(
        include_top=False, input_shape=(None, None, 3), pooling="avg"
    )
    for size in (64, 96):
        images = np.random.rand(1, size, size, 3).astype("float32")
        assert model.predict(images, verbose=0).shape == (1, 2048)


def test_include_preprocessing_equals_preprocess_input(tmp_path):
    with_preprocessing = applications.LambdaResNet50(
        input_shape=(64, 64, 3), classes=4, include_preprocessing=True
    )
    plain = applications.LambdaResNet50(input_shape=(64, 64, 3), classes=4)
    plain.set_weights(with_preprocessing.get_weights())
    images = 255.0 * np.random.rand(2, 64, 64, 3).astype("float32")

    np.testing.assert_allclose(
        with_preprocessing.predict(images, verbose=0),
        plain.predict(applications.preprocess_input(images), verbose=0),
        rtol=1e-4,
        atol=1e-6,
    )


def test_vanilla_architecture_and_placements():
    model = applications.LambdaResNet(
        (3, 4, 6, 3),
        architecture="vanilla",
        placement="C,L,C,3",
        include_top=False,
        input_shape=(64, 64, 3),
    )
    assert lambda_layers_per_stage(model) == [0, 4, 0, 3]
    assert model.get_layer("stem_conv").kernel_size == (7, 7)
    assert not [layer for layer in model.layers if layer.name.endswith("_se_excite")]
    assert not [layer for layer in model.layers if "dropout" in layer.name]


def test_hybrid_puts_se_in_stages_without_lambda_layers():
    model = applications.LambdaResNet101(include_top=False, input_shape=(64, 64, 3))
    se_stages = {
        layer.name[:2] for layer in model.layers if layer.name.endswith("_se_excite")
    }
    assert se_stages == {"c2", "c3"}
    lambda_blocks = [
        layer.name for layer in model.layers if isinstance(layer, LambdaLayer)
    ]
    # 3 lambda layers uniformly spaced over the 23 blocks of c4, ending at its end
    assert lambda_blocks[:3] == [
        "c4_block8_lambda",
        "c4_block15_lambda",
        "c4_block23_lambda",
    ]
    assert [
        layer.name for layer in model.layers if layer.name.startswith("stem_conv")
    ] == ["stem_conv1", "stem_conv2", "stem_conv3", "stem_conv4"]
    bn3 = model.get_layer("c3_block1_bn3")
    assert np.all(bn3.gamma.numpy() == 0)


def test_lambda_knobs_reach_the_layers():
    model = applications.LambdaResNet50(
        include_top=False,
        input_shape=(64, 64, 3),
        dim_k=8,
        heads=8,
        dim_u=2,
        scope=7,
        use_content=False,
        implementation="conv",
    )
    layer = model.get_layer("c5_block1_lambda")
    assert (layer.dim_k, layer.heads, layer.dim_u, layer.scope) == (8, 8, 2, 7)
    assert not layer.use_content and layer.implementation == "conv"
    assert layer.strides == 2


def test_shared_embeddings_use_one_table():
    model = applications.LambdaResNet50(
        include_top=False, input_shape=(64, 64, 3), shared_embeddings=True, scope=None
    )
    tables = [w for w in model.weights if "table" in w.path]
    assert len(tables) == 1 and tables[0].shape == (7, 7, 16, 1)
    features = model.predict(np.random.rand(1, 64, 64, 3).astype("float32"), verbose=0)
    assert np.all(np.isfinite(features))


def test_weights_from_a_file(tmp_path):
    model = applications.LambdaResNet50(input_shape=(64, 64, 3), classes=3)
    path = str(tmp_path / "lambda_resnet50.weights.h5")
    model.save_weights(path)
    loaded = applications.LambdaResNet50(
        input_shape=(64, 64, 3), classes=3, weights=path
    )
    images = np.random.rand(1, 64, 64, 3).astype("float32")
    np.testing.assert_array_equal(
        loaded.predict(images, verbose=0), model.predict(images, verbose=0)
    )


def test_keras_round_trip(tmp_path):
    model = applications.LambdaResNet50(
        input_shape=(64, 64, 3), classes=3, stochastic_depth_rate=0.1
    )
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    images = np.random.rand(2, 64, 64, 3).astype("float32")
    np.testing.assert_array_equal(
        loaded.predict(images, verbose=0), model.predict(images, verbose=0)
    )


def test_one_training_step_under_mixed_bfloat16():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = applications.LambdaResNet50(input_shape=(64, 64, 3), classes=4)
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        history = model.fit(
            np.random.rand(4, 64, 64, 3).astype("float32"),
            np.array([0, 1, 2, 3]),
            epochs=1,
            verbose=0,
        )
    finally:
        keras.config.set_dtype_policy("float32")
    assert model.get_layer("c5_block1_lambda").compute_dtype == "bfloat16"
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(weights="imagenet"), "weights='imagenet'"),
        (
            dict(weights="/no/such/file.weights.h5"),
            "weights='/no/such/file.weights.h5'",
        ),
        (dict(input_shape=(16, 16, 3), include_top=False), "at least 32x32"),
        (dict(placement="C,C,L"), "placement='C,C,L'"),
        (dict(placement="C,C,7,L"), "placement='C,C,7,L'"),
        (dict(placement=("C", "C", "X", "L")), "placement=\\('C', 'C', 'X', 'L'\\)"),
        (dict(architecture="resnext"), "architecture='resnext'"),
        (dict(include_top=False, pooling="mean"), "pooling='mean'"),
        (dict(heads=3), "heads=3"),
        (dict(width_multiplier=0), "width_multiplier=0"),
        (dict(width_multiplier="half"), "width_multiplier='half'"),
        (dict(stem="patchify"), "stem='patchify'"),
    ],
)
def test_invalid_arguments_raise_clear_errors(kwargs, message):
    kwargs.setdefault("input_shape", (64, 64, 3))
    with pytest.raises(ValueError, match=message):
        applications.LambdaResNet50(**kwargs)


def test_invalid_depths():
    with pytest.raises(ValueError, match=r"depths=\(3, 4, 6\)"):
        applications.LambdaResNet((3, 4, 6))


def test_classes_with_named_weights():
    with pytest.raises(ValueError, match="classes=10"):
        applications.LambdaResNet26T(weights="imagenet", classes=10)


def test_unknown_weights_list_the_known_ones():
    with pytest.raises(ValueError, match=r"lambda_resnet26t.c1_in1k.*weights='in22k'"):
        applications.LambdaResNet26T(weights="in22k")
    with pytest.raises(ValueError, match="none yet"):
        applications.LambdaResNet50(weights="imagenet")


@pytest.mark.slow
def test_jax_backend_runs_lambda_resnet50():
    script = (
        "import numpy as np, keras;"
        "from lambda_keras.applications import LambdaResNet50;"
        "m = LambdaResNet50(input_shape=(64, 64, 3), classes=7);"
        "p = m.predict(np.random.rand(2, 64, 64, 3).astype('float32'), verbose=0);"
        "assert keras.backend.backend() == 'jax';"
        "assert p.shape == (2, 7) and np.allclose(p.sum(1), 1, atol=1e-4); print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3"),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), (
        result.stderr[-3000:]
    )
