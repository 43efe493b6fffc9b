"""Named pretrained weights through the constructors, served on 127.0.0.1.

A timm-format checkpoint of LambdaResNet26T (random weights) is served by a
local HTTP server and registered in a test manifest; the constructor
downloads it with its hash checked, caches it and converts it.
"""

import hashlib
import io
import json
import os
import re

import numpy as np
import pytest

from lambda_keras import applications
from lambda_keras import weights
from lambda_keras.applications.variants import TIMM_MODELS

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")


@pytest.fixture(scope="module")
def checkpoint():
    """(bytes of a .pth file, its state dict as numpy) for lambda_resnet26t."""
    torch.manual_seed(0)
    model = timm.create_model("lambda_resnet26t", pretrained=False)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue(), {k: v.numpy() for k, v in state.items()}


@pytest.fixture
def registry(server, checkpoint, tmp_path, monkeypatch, write_manifest):
    """Registers the served checkpoint; returns a function to change its hash."""
    body, _ = checkpoint
    url = server.serve("/lambda_resnet26t_test.pth", body)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))

    def register(sha256=None, file_url=url):
        sha256 = sha256 or hashlib.sha256(body).hexdigest()
        entry = json.loads(
            json.dumps(
                weights.find_checkpoint(
                    "lambda_resnet26t.c1_in1k", manifest=weights.load_manifest()
                )
            )
        )
        entry["files"] = [{"url": file_url, "sha256": sha256, "format": "pth"}]
        monkeypatch.setattr(weights, "DEFAULT_MANIFEST", write_manifest([entry]))
        return entry

    return register


def cache_files(tmp_path):
    root = tmp_path / "keras_home"
    return sorted(
        os.path.relpath(os.path.join(d, f), root)
        for d, _, files in os.walk(root)
        for f in files
    )


def test_named_weights_download_convert_and_cache(
    server, registry, checkpoint, tmp_path
):
    registry()
    _, state = checkpoint

    model = applications.LambdaResNet26T(weights="imagenet", input_shape=(64, 64, 3))
    requests = len(server.requests)
    features = applications.LambdaResNet26T(
        weights="lambda_resnet26t.c1_in1k", include_top=False, input_shape=(96, 96, 3)
    )

    assert requests == 1 and len(server.requests) == 1  # second load: cache only
    kernel = state["stem.conv1.conv.weight"].transpose(2, 3, 1, 0)
    for loaded in (model, features):
        np.testing.assert_array_equal(
            loaded.get_layer("stem_conv1").kernel.numpy(), kernel
        )
    table = state["stages.3.1.self_attn.conv_lambda.weight"][:, 0, :, :, 0]
    np.testing.assert_array_equal(
        model.get_layer("c5_block2_lambda").position_embedding.table.numpy()[..., 0],
        table.transpose(1, 2, 0),
    )
    np.testing.assert_array_equal(
        model.get_layer("predictions").kernel.numpy(), state["head.fc.weight"].T
    )
    # Only the hash-checked checkpoint is cached, no unchecked derivative.
    assert [os.path.splitext(name)[1] for name in cache_files(tmp_path)] == [".pth"]


def test_fine_tuning_head_keeps_its_own_size(registry, checkpoint):
    registry()
    # classes != 1000 with the top is refused; without the top it loads.
    with pytest.raises(ValueError, match="classes=10"):
        applications.LambdaResNet26T(weights="imagenet", classes=10)
    model = applications.LambdaResNet26T(
        weights="imagenet", include_top=False, pooling="avg", input_shape=(64, 64, 3)
    )
    assert model.output_shape == (None, 2048)


def test_hash_mismatch_fails_and_keeps_nothing(registry, tmp_path):
    registry(sha256="0" * 64)
    with pytest.raises(ValueError, match="does not match its sha256"):
        applications.LambdaResNet26T(weights="imagenet", input_shape=(64, 64, 3))
    assert not [f for f in cache_files(tmp_path) if f.endswith((".pth", ".npz"))]


def test_no_network_says_which_url_and_how_to_use_a_file(registry, tmp_path):
    closed = "http://127.0.0.1:9/lambda_resnet26t_test.pth"
    registry(file_url=closed)
    with pytest.raises(OSError, match=r"127\.0\.0\.1:9.*weights='/path/to/"):
        applications.LambdaResNet26T(weights="imagenet", input_shape=(64, 64, 3))
    assert not [f for f in cache_files(tmp_path) if f.endswith((".pth", ".npz"))]


TIMM_ARCHITECTURES = set(TIMM_MODELS)


def test_manifest_lists_the_three_timm_checkpoints():
    entries = [
        e for e in weights.load_manifest() if e["architecture"] in TIMM_ARCHITECTURES
    ]
    assert {e["architecture"] for e in entries} == TIMM_ARCHITECTURES
    for entry in entries:
        assert entry["alias"] == "imagenet" and entry["classes"] == 1000
        (record,) = entry["files"]
        assert record["url"].endswith(f"-{record['sha256_prefix']}.pth")


def test_readme_weights_example_runs_against_the_local_server(registry):
    registry()
    readme = os.path.dirname(__file__) + "/../../README.md"
    blocks = re.findall(r"```python\n(.*?)```", open(readme).read(), flags=re.S)
    (example,) = [block for block in blocks if block.startswith("# network:")]
    namespace = {}
    exec(compile(example, readme, "exec"), namespace)  # noqa: S102
    assert namespace["classifier"].output_shape == (None, 10)


def test_the_download_advice_works_a_timm_file_loads_directly(checkpoint, tmp_path):
    # The failure message above advises weights='/path/to/<file>.pth'.
    body, state = checkpoint
    path = tmp_path / "lambda_resnet26t_c_256-e5a5c857.pth"
    path.write_bytes(body)
    model = applications.LambdaResNet26T(weights=str(path), input_shape=(64, 64, 3))
    np.testing.assert_array_equal(
        model.get_layer("stem_conv1").kernel.numpy(),
        state["stem.conv1.conv.weight"].transpose(2, 3, 1, 0),
    )


def test_registered_weights_default_to_their_measured_input_size():
    entry = weights.find_checkpoint("lambda_resnet26_compact.imagenette")
    model = applications.LambdaResNet26Compact(weights="imagenette")
    assert model.input_shape == (None, *entry["input_size"], 3) == (None, 80, 80, 3)
    assert applications.LambdaResNet26Compact().input_shape == (None, 64, 64, 3)
