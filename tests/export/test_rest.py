"""The REST example: the README's JSON, decoded as TF Serving decodes it,
runs the SavedModel's signature; so does `predict_request`'s."""

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from export_helpers import CLASS_NAMES
from export_helpers import PREPROCESSING
from export_helpers import small_model

from lambda_keras.export import export_saved_model
from lambda_keras.export import predict_request
from lambda_keras.preprocessing import sample_images

README = Path(__file__).parents[2] / "README.md"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    base = tmp_path_factory.mktemp("rest")
    export_saved_model(
        small_model(), base, 1, class_names=CLASS_NAMES, preprocessing=PREPROCESSING
    )
    return tf.saved_model.load(str(base / "1"))


def tf_serving_predict(loaded, body):
    """What TF Serving's REST `:predict` does with a row-format ("instances")
    body: each instance maps input names to values (or is the value itself
    when the signature has one input); `{"b64": ...}` objects are base64
    decoded into bytes; the values of each input are stacked into a batch and
    converted to the signature's dtype. The response has one object per
    instance, strings as UTF-8 text."""
    request = json.loads(body)
    signature = loaded.signatures[request.get("signature_name", "serving_default")]
    specs = signature.structured_input_signature[1]

    def decode(value):
        if isinstance(value, dict) and set(value) == {"b64"}:
            return base64.b64decode(value["b64"], validate=True)
        if isinstance(value, list):
            return [decode(item) for item in value]
        return value

    instances = request["instances"]
    if len(specs) == 1 and not all(
        isinstance(item, dict) and set(item) <= set(specs) for item in instances
    ):
        instances = [{next(iter(specs)): item} for item in instances]
    inputs = {
        name: tf.constant([decode(item[name]) for item in instances], spec.dtype)
        for name, spec in specs.items()
    }
    outputs = signature(**inputs)

    def to_json(value):
        if isinstance(value, bytes):
            return value.decode("utf-8")
        if isinstance(value, list):
            return [to_json(item) for item in value]
        return value

    rows = {name: tensor.numpy().tolist() for name, tensor in outputs.items()}
    predictions = [
        {name: to_json(values[index]) for name, values in rows.items()}
        for index in range(len(instances))
    ]
    return json.dumps({"predictions": predictions})


def readme_request():
    """The README's request JSON (the block after the curl command)."""
    section = README.read_text().split("## Export and serve", 1)[1]
    section = section.split("\n## ", 1)[0]
    blocks = re.findall(r"```json\n(.*?)```", section, flags=re.S)
    requests = [block for block in blocks if '"instances"' in block]
    assert len(requests) == 1
    return requests[0]


def test_the_readme_request_runs_the_serving_signature(loaded):
    request = json.loads(readme_request())
    assert request["signature_name"] == "serving_default"
    [instance] = request["instances"]
    assert list(instance) == ["image_bytes"] and list(instance["image_bytes"]) == [
        "b64"
    ]
    # The README shows a placeholder; a client puts the file's base64 there.
    tench = sample_images()[2]
    instance["image_bytes"]["b64"] = base64.b64encode(tench.read_bytes()).decode()
    response = json.loads(tf_serving_predict(loaded, json.dumps(request)))

    expected = loaded.signatures["serving_default"](
        image_bytes=tf.constant([tench.read_bytes()])
    )
    [prediction] = response["predictions"]
    assert set(prediction) == {"probabilities", "classes", "scores", "class_names"}
    np.testing.assert_array_equal(
        prediction["probabilities"], expected["probabilities"].numpy()[0]
    )
    assert prediction["class_names"] == [
        CLASS_NAMES[index] for index in prediction["classes"]
    ]
    assert prediction["classes"] == expected["classes"].numpy()[0].tolist()


def test_predict_request_builds_the_same_json(loaded, image_files):
    body = predict_request(image_files)
    assert body["signature_name"] == "serving_default"
    assert len(body["instances"]) == len(image_files)
    assert base64.b64decode(body["instances"][3]["image_bytes"]["b64"]) == (
        image_files[3].read_bytes()
    )
    response = json.loads(tf_serving_predict(loaded, json.dumps(body)))
    expected = loaded.signatures["serving_default"](
        image_bytes=tf.constant([path.read_bytes() for path in image_files])
    )
    probabilities = [row["probabilities"] for row in response["predictions"]]
    np.testing.assert_array_equal(probabilities, expected["probabilities"].numpy())
    # The one-input shorthand: instances that are the b64 objects themselves.
    shorthand = {"instances": [item["image_bytes"] for item in body["instances"]]}
    assert json.loads(tf_serving_predict(loaded, json.dumps(shorthand))) == response
    with pytest.raises(ValueError, match="Received: images element of type int"):
        predict_request([1])


def test_a_bad_image_in_a_request_is_an_invalid_argument(loaded):
    body = predict_request([b"\x89PNG\r\n\x1a\n"])
    with pytest.raises(tf.errors.InvalidArgumentError, match="without its IHDR"):
        tf_serving_predict(loaded, json.dumps(body))
