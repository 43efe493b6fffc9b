"""`export_saved_model`: TF Serving layout, signatures, reload parity."""

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from export_helpers import CLASS_NAMES
from export_helpers import keras_inputs
from export_helpers import small_model

from lambda_keras.applications import LambdaResNet
from lambda_keras.applications import preprocess_input
from lambda_keras.export import ServingEndpoints
from lambda_keras.export import export_saved_model
from lambda_keras.export import saved_model_version_dir
from lambda_keras.export.signatures import accepts_any_size

# Loads the SavedModel in a process where importing lambda_keras fails, runs
# the three signatures and saves their outputs.
FRESH_PROCESS = textwrap.dedent(
    """
    import sys

    class NoLambdaKeras:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "lambda_keras":
                raise ImportError("the SavedModel must not need lambda_keras")

    sys.meta_path.insert(0, NoLambdaKeras())
    import numpy as np
    import tensorflow as tf

    saved_model, inputs, output, *files = sys.argv[1:]
    loaded = tf.saved_model.load(saved_model)
    encoded = [open(path, "rb").read() for path in files]
    by_bytes = loaded.signatures["serving_default"](image_bytes=tf.constant(encoded))
    images = tf.constant(np.load(inputs))
    by_images = loaded.signatures["predict_images"](images=images)
    features = loaded.signatures["features"](images=images)["features"]
    def to_numpy(tensor):
        if tensor.dtype == tf.string:
            return np.char.decode(tensor.numpy().astype("S"), "utf-8")
        return tensor.numpy()

    results = {f"bytes_{k}": to_numpy(v) for k, v in by_bytes.items()}
    results.update({f"images_{k}": to_numpy(v) for k, v in by_images.items()})
    results["features"] = features.numpy()
    results["signatures"] = np.array(sorted(loaded.signatures))
    assert not any(name.split(".")[0] == "lambda_keras" for name in sys.modules)
    np.savez(output, **results)
    """
)


def run_fresh_process(saved_model, images, files, tmp_path):
    inputs, output = tmp_path / "inputs.npy", tmp_path / "outputs.npz"
    np.save(inputs, images)
    script = tmp_path / "load_saved_model.py"
    script.write_text(FRESH_PROCESS)
    result = subprocess.run(
        [sys.executable, str(script), str(saved_model), str(inputs), str(output)]
        + [str(path) for path in files],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(output) as data:
        return {key: data[key] for key in data.files}


def test_tf_serving_layout(tmp_path):
    model = small_model()
    base = tmp_path / "lambda_resnet"
    path = export_saved_model(model, base, 3)
    assert path == str(base / "3")
    assert (base / "3" / "saved_model.pb").is_file()
    assert (base / "3" / "variables" / "variables.index").is_file()
    # Each weight is stored once (float32), not also as a Keras variable.
    [data] = (base / "3" / "variables").glob("variables.data-*")
    assert 1.0 <= data.stat().st_size / (4 * model.count_params()) < 1.02
    assert sorted(os.listdir(base)) == ["3"]  # no staging folder left over
    export_saved_model(model, base, 12)
    # TF Serving serves the highest version; so does saved_model_version_dir.
    assert saved_model_version_dir(base) == str(base / "12")
    assert saved_model_version_dir(base / "3") == str(base / "3")
    with pytest.raises(FileExistsError, match="already exists.*Received: version=3"):
        export_saved_model(model, base, 3)
    export_saved_model(model, base, 3, overwrite=True)
    with pytest.raises(ValueError, match="Received: version=0"):
        export_saved_model(model, base, 0)
    with pytest.raises(FileNotFoundError, match="no saved_model.pb"):
        saved_model_version_dir(tmp_path)


@pytest.mark.slow
def test_reload_parity_in_a_fresh_process_without_lambda_keras(
    compact_export, image_files, encoded_images, tmp_path
):
    model, base = compact_export
    inputs = keras_inputs(encoded_images)
    expected = model.predict(inputs, verbose=0)
    embedder = keras.Model(model.input, model.get_layer("avg_pool").output)
    expected_features = embedder.predict(inputs, verbose=0)
    # The outputs differ between images, so the parity checks the inputs.
    assert np.abs(expected - expected[:1]).max() > 1e-3

    outputs = run_fresh_process(base / "1", inputs, image_files, tmp_path)

    assert list(outputs["signatures"]) == [
        "features",
        "predict_images",
        "serving_default",
    ]
    for prefix in ("bytes", "images"):
        difference = np.abs(outputs[f"{prefix}_probabilities"] - expected).max()
        print(f"SavedModel {prefix} vs Keras: max |difference| {difference:.2e}")
        assert difference <= 1e-5
        order = np.argsort(-expected, axis=1, kind="stable")
        np.testing.assert_array_equal(outputs[f"{prefix}_classes"], order)
        np.testing.assert_allclose(
            outputs[f"{prefix}_scores"],
            np.take_along_axis(expected, order, axis=1),
            atol=1e-5,
        )
        names = outputs[f"{prefix}_class_names"].tolist()
        assert names == [[CLASS_NAMES[i] for i in row] for row in order]
    scale = np.abs(expected_features).max()
    assert np.abs(outputs["features"] - expected_features).max() <= 1e-5 * scale


@pytest.mark.slow
def test_saved_model_cli_lists_the_signatures(compact_export):
    _, base = compact_export
    # The command TensorFlow installs beside the interpreter running the tests.
    command = Path(sys.executable).with_name("saved_model_cli")
    if not command.is_file():
        command = shutil.which("saved_model_cli")
    assert command, "saved_model_cli (installed with tensorflow) is missing"
    result = subprocess.run(
        [str(command), "show", "--dir", str(base / "1"), "--all"],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    signatures = {
        name: body
        for name, body in re.findall(
            r"signature_def\['(\w+)'\]:\n(.*?)Method name is", result.stdout, re.S
        )
    }
    assert {"serving_default", "predict_images", "features"} <= set(signatures)

    def tensors(body, kind):
        found = re.findall(
            kind + r"\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+shape: (\([-\d, ]*\))",
            body,
        )
        return {name: (dtype, shape) for name, dtype, shape in found}

    classification = {
        "probabilities": ("DT_FLOAT", "(-1, 3)"),
        "classes": ("DT_INT32", "(-1, 3)"),
        "scores": ("DT_FLOAT", "(-1, 3)"),
        "class_names": ("DT_STRING", "(-1, 3)"),
    }
    serving = signatures["serving_default"]
    assert tensors(serving, "inputs") == {"image_bytes": ("DT_STRING", "(-1)")}
    assert tensors(serving, "outputs") == classification
    # The compact model's position embeddings are local: any image size.
    images = {"images": ("DT_FLOAT", "(-1, -1, -1, 3)")}
    assert tensors(signatures["predict_images"], "inputs") == images
    assert tensors(signatures["predict_images"], "outputs") == classification
    assert tensors(signatures["features"], "inputs") == images
    assert tensors(signatures["features"], "outputs") == {
        "features": ("DT_FLOAT", "(-1, 1024)")
    }


def test_spatial_size_is_dynamic_with_local_position_embeddings(tmp_path):
    model = small_model(64)
    assert accepts_any_size(model)
    export_saved_model(model, tmp_path, 1)
    loaded = tf.saved_model.load(str(tmp_path / "1"))
    images = np.random.default_rng(0).uniform(0, 255, (2, 96, 80, 3))
    images = images.astype("float32")
    # The same weights in a model built for 96x80 inputs.
    reference = LambdaResNet(
        (1, 1, 1, 1),
        input_shape=(96, 80, 3),
        classes=3,
        width_multiplier=0.25,
        include_preprocessing=True,
    )
    reference.set_weights(model.get_weights())
    expected = reference.predict(images, verbose=0)
    outputs = loaded.signatures["predict_images"](images=images)
    assert np.abs(outputs["probabilities"].numpy() - expected).max() <= 1e-5
    for batch in (1, 5):
        outputs = loaded.signatures["features"](images=images[:1].repeat(batch, 0))
        assert outputs["features"].shape == (batch, 512)


def test_global_position_embeddings_fix_the_size(tmp_path):
    model = small_model(64, scope=None)
    assert not accepts_any_size(model)
    export_saved_model(model, tmp_path, 1)
    loaded = tf.saved_model.load(str(tmp_path / "1"))
    spec = loaded.signatures["predict_images"].structured_input_signature[1]
    assert spec["images"].shape.as_list() == [None, 64, 64, 3]
    # A tensor reaches the graph, as a TF Serving request does.
    images = tf.fill((1, 96, 96, 3), 128.0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[1,96,96,3\]"):
        loaded.signatures["predict_images"](images=images)
    good = np.full((1, 64, 64, 3), 128, "float32")
    expected = model.predict(good, verbose=0)
    got = loaded.signatures["predict_images"](images=good)["probabilities"]
    assert np.abs(got.numpy() - expected).max() <= 1e-5


def test_model_without_its_own_normalisation_is_normalised_by_the_signature(
    encoded_images,
):
    model = small_model(include_preprocessing=False, classifier_activation=None)
    endpoints = ServingEndpoints(model, class_names=CLASS_NAMES)
    assert not endpoints.normalizes and endpoints.applies_softmax
    serve = endpoints.functions()["serving_default"]
    outputs = serve(tf.constant(encoded_images))
    logits = model.predict(preprocess_input(keras_inputs(encoded_images)), verbose=0)
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    assert np.abs(outputs["probabilities"].numpy() - expected).max() <= 1e-5
    np.testing.assert_allclose(outputs["probabilities"].numpy().sum(1), 1, rtol=1e-6)


def test_top_k_is_capped_by_the_classes_and_configurable(encoded_images):
    model = small_model(classes=7)
    outputs = ServingEndpoints(model, top_k=3).functions()["serving_default"](
        tf.constant(encoded_images[:2])
    )
    assert outputs["classes"].shape == (2, 3)
    assert outputs["class_names"].numpy()[0, 0].decode().startswith("class_")
    outputs = ServingEndpoints(model, top_k=10).functions()["predict_images"](
        tf.zeros((1, 64, 64, 3))
    )
    assert outputs["classes"].shape == (1, 7)


def test_bad_models_and_arguments_are_rejected():
    with pytest.raises(ValueError, match="need a classifier"):
        ServingEndpoints(small_model(include_top=False, pooling="avg"))
    with pytest.raises(ValueError, match=r"Received: class_names=\['a', 'b'\]"):
        ServingEndpoints(small_model(), class_names=["a", "b"])
    with pytest.raises(ValueError, match="Received: input_size=80"):
        ServingEndpoints(small_model(scope=None), preprocessing={"input_size": 80})
    with pytest.raises(ValueError, match="Received: top_k=0"):
        ServingEndpoints(small_model(), top_k=0)
