"""LambdaResNetBackbone: a keras-hub FeaturePyramidBackbone, checked as
keras-hub's `run_vision_backbone_test` checks its own backbones."""

import json

import keras
import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

import tensorflow as tf  # noqa: E402

from lambda_keras.applications import LambdaResNet26Compact  # noqa: E402
from lambda_keras.hub import LambdaResNetBackbone  # noqa: E402

IMAGES = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype("float32")
CHANNELS = {"P2": 128, "P3": 256, "P4": 512, "P5": 1024}


@pytest.fixture(scope="module")
def backbone():
    return LambdaResNetBackbone("LambdaResNet26Compact")


def _config_json(instance):
    return json.dumps(instance.get_config(), sort_keys=True)


def test_pyramid_outputs_p2_to_p5_at_strides_4_to_32(backbone):
    assert isinstance(backbone, keras_hub.models.FeaturePyramidBackbone)
    features = keras.Model(backbone.input, backbone.pyramid_outputs)(IMAGES)
    assert sorted(features) == ["P2", "P3", "P4", "P5"]
    for level, channels in CHANNELS.items():
        side = 64 // 2 ** int(level[1])
        assert tuple(features[level].shape) == (2, side, side, channels)
    assert tuple(backbone(IMAGES).shape) == (2, 2, 2, 1024)
    # keras-hub's convention: the default name is the class's.
    assert backbone.name.startswith("lambda_res_net_backbone")


def test_the_layers_are_those_of_the_applications_model(backbone):
    model = LambdaResNet26Compact(include_top=False, input_shape=(None, None, 3))

    def layers(m):
        return [
            (layer.name, [tuple(w.shape) for w in layer.weights])
            for layer in m.layers
            if not isinstance(layer, keras.layers.InputLayer)
        ]

    assert layers(backbone) == layers(model)


def test_any_input_size_with_local_scope(backbone):
    assert backbone.image_shape == (None, None, 3)
    for height, width in ((64, 64), (96, 96), (64, 128)):
        output = backbone(np.zeros((1, height, width, 3), "float32"))
        assert tuple(output.shape) == (1, height // 32, width // 32, 1024)


def test_global_scope_fixes_the_input_size():
    backbone = LambdaResNetBackbone(
        "LambdaResNet26RPT256", default_size=64, width_multiplier=0.25
    )
    assert backbone.image_shape == (64, 64, 3)
    assert backbone.input_shape == (None, 64, 64, 3)


def test_overrides_and_serialization_round_trip():
    backbone = LambdaResNetBackbone(
        "LambdaResNet26Compact", image_shape=(64, 64, 3), depths=(1, 1, 1, 1), scope=7
    )
    config = backbone.get_config()
    assert config["variant"] == "LambdaResNet26Compact"
    assert (config["scope"], config["depths"]) == (7, (1, 1, 1, 1))
    assert backbone.get_layer("c5_block1_lambda").scope == 7
    assert sorted(backbone.pyramid_outputs) == ["P2", "P3", "P4", "P5"]

    revived = LambdaResNetBackbone.from_config(json.loads(json.dumps(config)))
    assert _config_json(revived) == _config_json(backbone)
    assert set(dir(revived)) == set(dir(backbone))
    serialized = json.dumps(keras.saving.serialize_keras_object(backbone))
    deserialized = keras.saving.deserialize_keras_object(json.loads(serialized))
    assert type(deserialized) is LambdaResNetBackbone
    assert _config_json(deserialized) == _config_json(backbone)


def test_unknown_variant():
    with pytest.raises(ValueError, match="LambdaResNet26Compact"):
        LambdaResNetBackbone("LambdaResNet27")


def test_mixed_precision_forward_is_finite():
    backbone = LambdaResNetBackbone("LambdaResNet26Compact", dtype="mixed_float16")
    assert keras.config.dtype_policy().name == "float32"  # left as it was
    outputs = keras.Model(backbone.input, backbone.pyramid_outputs)(IMAGES)
    for output in outputs.values():
        assert keras.backend.standardize_dtype(output.dtype) == "float16"
        assert np.isfinite(keras.ops.convert_to_numpy(output)).all()
    assert {w.dtype for w in backbone.weights} == {"float32"}
    revived = LambdaResNetBackbone.from_config(backbone.get_config())
    for model in (backbone, revived):
        for layer in model.layers:
            if not isinstance(layer, keras.layers.InputLayer):
                assert layer.dtype_policy.name == "mixed_float16", layer.name


def test_predict_on_arrays_and_datasets(backbone):
    expected = backbone.predict(IMAGES, verbose=0)
    dataset = tf.data.Dataset.from_tensor_slices(IMAGES).batch(1)
    np.testing.assert_allclose(
        backbone.predict(dataset, verbose=0), expected, atol=1e-5
    )


def test_keras_file_round_trip(backbone, tmp_path):
    path = tmp_path / "backbone.keras"
    backbone.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is LambdaResNetBackbone
    assert sorted(restored.pyramid_outputs) == sorted(backbone.pyramid_outputs)
    np.testing.assert_allclose(restored(IMAGES), backbone(IMAGES), atol=1e-6)


def test_preset_folder_round_trip(backbone, tmp_path):
    backbone.save_to_preset(tmp_path)
    restored = keras_hub.models.Backbone.from_preset(str(tmp_path))
    assert type(restored) is LambdaResNetBackbone
    np.testing.assert_allclose(restored(IMAGES), backbone(IMAGES), atol=1e-6)


def test_registry_name_without_weights_needs_no_network():
    backbone = LambdaResNetBackbone.from_preset(
        "lambda_resnet26t.c1_in1k", load_weights=False
    )
    assert backbone.variant == "LambdaResNet26T"
    assert backbone.image_shape == (None, None, 3)
    assert tuple(backbone(IMAGES[:1]).shape) == (1, 2, 2, 2048)


def test_registry_weights_are_the_applications_weights():
    backbone = LambdaResNetBackbone.from_preset("lambda_resnet26_compact.imagenette")
    model = LambdaResNet26Compact(
        include_top=False, weights="imagenette", input_shape=(None, None, 3)
    )
    np.testing.assert_allclose(backbone(IMAGES), model(IMAGES), atol=1e-5)


def test_unknown_preset_lists_the_registry_names():
    with pytest.raises(ValueError, match="lambda_resnet26_compact.imagenette"):
        LambdaResNetBackbone.from_preset("clowntown")
