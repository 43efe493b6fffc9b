"""Tests for the pretrained-weights registry and its hash-checked download.

No network: files are served by a local HTTP server on 127.0.0.1.
"""

import hashlib
import os
import socket

import pytest

from lambda_keras import weights
from lambda_keras.preprocessing import IMAGENET_MEAN
from lambda_keras.preprocessing import IMAGENET_STD

PAYLOAD = bytes(range(256)) * 300  # 76,800 bytes, several read blocks
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
OTHER_SHA256 = hashlib.sha256(b"something else").hexdigest()


@pytest.fixture(autouse=True)
def _no_retry_delay(monkeypatch):
    # Failed downloads are retried; the tests need not wait in between.
    monkeypatch.setattr(weights, "RETRY_DELAYS_S", (0, 0))


def _cache_files(cache_dir):
    return sorted(
        os.path.relpath(os.path.join(root, name), cache_dir)
        for root, _, names in os.walk(cache_dir)
        for name in names
    )


def _file(url, sha256=PAYLOAD_SHA256, **kwargs):
    return {"url": url, "sha256": sha256, "format": "safetensors", **kwargs}


# --- Manifest -----------------------------------------------------------------


def _entry(name="lambda_resnet26t.c1_in1k", architecture="LambdaResNet26T", **kw):
    entry = {
        "name": name,
        "architecture": architecture,
        "alias": "imagenet",
        "dataset": "ImageNet-1k",
        "classes": 1000,
        "input_size": [256, 256],
        "preprocessing": {
            "resize": "bicubic",
            "crop_fraction": 0.94,
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
        },
        "metrics": {"top1": 79.1, "top5": 94.6, "measured_by": "test"},
        "files": [_file("https://example.invalid/model.safetensors")],
        "license": "apache-2.0",
        "provenance": "test entry",
    }
    entry.update(kw)
    return entry


def test_repo_manifest_loads():
    assert weights.DEFAULT_MANIFEST.name == "manifest.json"
    assert weights.DEFAULT_MANIFEST.parent.name == "checkpoints"
    assert weights.DEFAULT_MANIFEST.is_file()
    assert isinstance(weights.load_manifest(), list)
    assert weights.load_manifest() == weights.load_manifest(weights.DEFAULT_MANIFEST)


def test_missing_default_manifest_is_an_empty_registry(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "DEFAULT_MANIFEST", tmp_path / "absent.json")
    assert weights.load_manifest() == []
    with pytest.raises(FileNotFoundError):
        weights.load_manifest(tmp_path / "absent.json")


def test_load_good_manifest(tmp_path, write_manifest):
    entries = [_entry(), _entry("lambda_resnet50ts.a1h_in1k", "LambdaResNet50TS")]
    path = write_manifest(entries)
    assert weights.load_manifest(path) == entries
    assert weights.load_manifest(str(path)) == entries


@pytest.mark.parametrize("key", weights.REQUIRED_KEYS)
def test_missing_key_names_entry_and_key(tmp_path, key, write_manifest):
    entry = _entry()
    del entry[key]
    path = write_manifest([_entry("ok.first", "A"), entry])
    label = "#1" if key == "name" else "'lambda_resnet26t.c1_in1k'"
    with pytest.raises(ValueError, match=f"{label}.*missing the required key '{key}'"):
        weights.load_manifest(path)


def test_duplicate_name(tmp_path, write_manifest):
    path = write_manifest([_entry(), _entry(alias=None)])
    with pytest.raises(ValueError, match="Duplicate checkpoint name 'lambda_resnet26t"):
        weights.load_manifest(path)


def test_duplicate_alias_within_architecture(tmp_path, write_manifest):
    path = write_manifest([_entry(), _entry("other.in1k")])
    with pytest.raises(ValueError, match="Duplicate alias 'imagenet'"):
        weights.load_manifest(path)
    # The same alias for another architecture is fine.
    path = write_manifest([_entry(), _entry("other.in1k", "Other")])
    assert len(weights.load_manifest(path)) == 2


@pytest.mark.parametrize(
    "files, match",
    [
        ([], "non-empty list"),
        ([{"sha256": PAYLOAD_SHA256, "format": "pth"}], "either a 'url' or a 'path'"),
        ([dict(_file("u"), path="w.weights.h5")], "either a 'url' or a 'path'"),
        (
            [{"path": "../w.h5", "sha256": PAYLOAD_SHA256, "format": "pth"}],
            "relative to the manifest's folder",
        ),
        (
            [{"path": "/abs/w.h5", "sha256": PAYLOAD_SHA256, "format": "pth"}],
            "relative to the manifest's folder",
        ),
        (
            [{"path": "w.h5", "sha256": None, "sha256_prefix": "abcdef12"}],
            "required key 'format'",
        ),
        (
            [
                {
                    "path": "w.h5",
                    "sha256": None,
                    "sha256_prefix": "abcdef12",
                    "format": "pth",
                }
            ],
            "full 'sha256'",
        ),
        ([_file("u", sha256="abc")], "not 64 hex digits"),
        ([_file("u", format="onnx")], "unknown 'format'"),
        ([_file("u", sha256=None)], "neither 'sha256' nor 'sha256_prefix'"),
        ([_file("u", sha256=None, sha256_prefix="abc")], "8 to 64 hex digits"),
        ([_file("u", sha256_prefix=OTHER_SHA256[:10])], "disagrees"),
    ],
)
def test_malformed_file_record(tmp_path, files, match, write_manifest):
    path = write_manifest([_entry(files=files)])
    with pytest.raises(ValueError, match=match):
        weights.load_manifest(path)


@pytest.mark.parametrize(
    "text, match",
    [
        ("{", "not valid JSON"),
        ('{"format_version": 2, "checkpoints": []}', "format_version=2"),
        ('{"format_version": 1}', "'checkpoints' list"),
    ],
)
def test_malformed_manifest(tmp_path, text, match):
    path = tmp_path / "manifest.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        weights.load_manifest(path)


# --- find_checkpoint ----------------------------------------------------------


@pytest.fixture
def manifest(tmp_path, write_manifest):
    entries = [
        _entry(),
        _entry("lambda_resnet26t.extra", alias=None),
        _entry("lambda_resnet50ts.a1h_in1k", "LambdaResNet50TS"),
    ]
    return weights.load_manifest(write_manifest(entries))


def test_find_by_name_and_alias(manifest):
    name = "lambda_resnet26t.c1_in1k"
    assert weights.find_checkpoint(name, manifest=manifest)["name"] == name
    found = weights.find_checkpoint(name, "LambdaResNet26T", manifest=manifest)
    assert found["name"] == name
    found = weights.find_checkpoint("imagenet", "LambdaResNet26T", manifest=manifest)
    assert found["name"] == name
    found = weights.find_checkpoint("imagenet", "LambdaResNet50TS", manifest=manifest)
    assert found["name"] == "lambda_resnet50ts.a1h_in1k"


def test_find_accepts_a_manifest_path(tmp_path, write_manifest):
    path = write_manifest([_entry()])
    entry = weights.find_checkpoint("imagenet", "LambdaResNet26T", manifest=path)
    assert entry["name"] == "lambda_resnet26t.c1_in1k"


def test_alias_needs_the_architecture(manifest):
    with pytest.raises(ValueError, match="Received: weights='imagenet'$"):
        weights.find_checkpoint("imagenet", manifest=manifest)


def test_unknown_name_lists_known_names(manifest):
    with pytest.raises(ValueError) as info:
        weights.find_checkpoint("imagenet21k", "LambdaResNet26T", manifest=manifest)
    message = str(info.value)
    assert message.endswith("Received: weights='imagenet21k'")
    assert (
        "available for 'LambdaResNet26T': ['imagenet', "
        "'lambda_resnet26t.c1_in1k', 'lambda_resnet26t.extra']" in message
    )
    assert "lambda_resnet50ts" not in message


def test_unknown_name_with_none_known(manifest):
    with pytest.raises(ValueError) as info:
        weights.find_checkpoint("imagenet", "LambdaResNet50", manifest=manifest)
    message = str(info.value)
    assert "available for 'LambdaResNet50': none yet" in message
    assert message.endswith("Received: weights='imagenet'")
    with pytest.raises(ValueError, match="none yet.*Received: weights='imagenet'"):
        weights.find_checkpoint("imagenet", "LambdaResNet50", manifest=[])


def test_name_for_another_architecture(manifest):
    with pytest.raises(ValueError, match="for the architecture 'LambdaResNet26T'"):
        weights.find_checkpoint(
            "lambda_resnet26t.c1_in1k", "LambdaResNet50TS", manifest=manifest
        )


# --- download -----------------------------------------------------------------


def test_sha256_of(tmp_path):
    path = tmp_path / "payload.bin"
    path.write_bytes(PAYLOAD)
    assert weights.sha256_of(path) == PAYLOAD_SHA256
    assert weights.sha256_of(path, chunk_size=7) == PAYLOAD_SHA256


def test_download_with_full_hash_then_cached(server, tmp_path):
    url = server.serve("/model.safetensors", PAYLOAD)
    path = weights.download(_file(url), cache_dir=str(tmp_path))
    with open(path, "rb") as f:
        assert f.read() == PAYLOAD
    assert os.path.dirname(path) == str(tmp_path / "lambda_keras")
    assert os.path.basename(path) == f"model-{PAYLOAD_SHA256[:8]}.safetensors"
    assert server.requests == ["/model.safetensors"]

    again = weights.download(_file(url), cache_dir=str(tmp_path))
    assert again == path
    assert server.requests == ["/model.safetensors"]  # no second request


def test_upper_case_hash_and_cache_subdir(server, tmp_path):
    url = server.serve("/model.pth", PAYLOAD)
    entry_file = _file(url, sha256=PAYLOAD_SHA256.upper(), format="pth")
    path = weights.download(entry_file, cache_subdir="sub", cache_dir=str(tmp_path))
    assert path == str(tmp_path / "sub" / f"model-{PAYLOAD_SHA256[:8]}.pth")
    assert weights.download(entry_file, cache_subdir="sub", cache_dir=str(tmp_path))
    assert len(server.requests) == 1


def test_corrupted_cache_is_downloaded_again(server, tmp_path):
    url = server.serve("/model.safetensors", PAYLOAD)
    path = weights.download(_file(url), cache_dir=str(tmp_path))
    with open(path, "wb") as f:
        f.write(b"corrupted")
    assert weights.download(_file(url), cache_dir=str(tmp_path)) == path
    with open(path, "rb") as f:
        assert f.read() == PAYLOAD
    assert len(server.requests) == 2


def test_wrong_hash_names_url_and_hashes_and_deletes(server, tmp_path):
    url = server.serve("/model.safetensors", PAYLOAD)
    entry_file = _file(url, sha256=OTHER_SHA256, size=123)
    with pytest.raises(ValueError) as info:
        weights.download(entry_file, cache_dir=str(tmp_path))
    message = str(info.value)
    assert url in message
    assert f"expected {OTHER_SHA256}" in message
    assert f"got {PAYLOAD_SHA256}" in message
    assert f"{len(PAYLOAD)} bytes, expected 123 bytes" in message
    assert "weights='/path/to/file'" in message
    assert _cache_files(tmp_path) == []


def test_truncated_file_fails_and_is_deleted(server, tmp_path):
    # A server that sends a truncated file with a consistent Content-Length.
    url = server.serve("/model.safetensors", PAYLOAD[:1000])
    with pytest.raises(ValueError) as info:
        weights.download(_file(url, size=len(PAYLOAD)), cache_dir=str(tmp_path))
    message = str(info.value)
    assert f"got {hashlib.sha256(PAYLOAD[:1000]).hexdigest()}" in message
    assert f"(1000 bytes, expected {len(PAYLOAD)} bytes)" in message
    assert _cache_files(tmp_path) == []


def test_connection_closed_early_fails_and_leaves_nothing(server, tmp_path):
    # Content-Length announces the whole file, the connection closes early.
    url = server.serve("/model.safetensors", PAYLOAD[:1000], length=len(PAYLOAD))
    with pytest.raises(weights.WeightsDownloadError) as info:
        weights.download(_file(url), cache_dir=str(tmp_path))
    message = str(info.value)
    assert url in message
    assert "incomplete" in message
    assert "weights='/path/to/" in message
    assert PAYLOAD_SHA256 in message
    assert _cache_files(tmp_path) == []


def test_sha256_prefix_only(server, tmp_path):
    url = server.serve("/model.safetensors", PAYLOAD)
    entry_file = _file(url, sha256=None, sha256_prefix=PAYLOAD_SHA256[:10])
    path = weights.download(entry_file, cache_dir=str(tmp_path))
    with open(path, "rb") as f:
        assert f.read() == PAYLOAD
    assert weights.download(entry_file, cache_dir=str(tmp_path)) == path
    assert len(server.requests) == 1  # the cached copy was checked, not fetched


def test_sha256_prefix_mismatch_deletes(server, tmp_path):
    url = server.serve("/model.safetensors", PAYLOAD)
    entry_file = _file(url, sha256=None, sha256_prefix=OTHER_SHA256[:12].upper())
    with pytest.raises(ValueError) as info:
        weights.download(entry_file, cache_dir=str(tmp_path))
    message = str(info.value)
    assert url in message
    assert f"a hash starting with {OTHER_SHA256[:12]}" in message
    assert f"got {PAYLOAD_SHA256}" in message
    assert _cache_files(tmp_path) == []


def test_sha256_prefix_corrupted_cache_is_downloaded_again(server, tmp_path):
    url = server.serve("/model.safetensors", PAYLOAD)
    entry_file = _file(url, sha256=None, sha256_prefix=PAYLOAD_SHA256[:8])
    path = weights.download(entry_file, cache_dir=str(tmp_path))
    with open(path, "wb") as f:
        f.write(b"corrupted")
    assert weights.download(entry_file, cache_dir=str(tmp_path)) == path
    with open(path, "rb") as f:
        assert f.read() == PAYLOAD
    assert len(server.requests) == 2


def test_connection_refused(server, tmp_path):
    # A socket bound to a port but not listening: connections are refused,
    # and no other process can take the port during the test.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/model.safetensors"
        with pytest.raises(weights.WeightsDownloadError) as info:
            weights.download(_file(url), cache_dir=str(tmp_path))
    assert isinstance(info.value, OSError)
    message = str(info.value)
    assert url in message
    assert "refused" in message.lower()
    assert "weights='/path/to/model.safetensors'" in message
    assert _cache_files(tmp_path) == []


def test_http_error(server, tmp_path):
    url = server.url("/missing.safetensors")
    with pytest.raises(weights.WeightsDownloadError) as info:
        weights.download(_file(url), cache_dir=str(tmp_path))
    message = str(info.value)
    assert url in message
    assert "HTTP error 404" in message
    assert "weights=" in message
    assert _cache_files(tmp_path) == []


def test_default_cache_dir_is_keras_home(server, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    url = server.serve("/model.safetensors", PAYLOAD)
    path = weights.download(_file(url))
    expected = tmp_path / "home" / "lambda_keras"
    assert path == str(expected / f"model-{PAYLOAD_SHA256[:8]}.safetensors")


def test_file_origin(tmp_path):
    source = tmp_path / "source" / "model.safetensors"
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    cache = tmp_path / "cache"
    path = weights.download(_file(source.as_uri()), cache_dir=str(cache))
    with open(path, "rb") as f:
        assert f.read() == PAYLOAD
    assert path.startswith(str(cache))

    missing = (tmp_path / "source" / "absent.safetensors").as_uri()
    with pytest.raises(weights.WeightsDownloadError, match="weights="):
        weights.download(_file(missing), cache_dir=str(cache))
    assert _cache_files(cache) == [os.path.relpath(path, cache)]


def test_download_needs_url_and_hash(tmp_path):
    with pytest.raises(ValueError, match="required key 'url'"):
        weights.download({"sha256": PAYLOAD_SHA256}, cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match="every file needs a hash"):
        weights.download({"url": "http://127.0.0.1:9/x"}, cache_dir=str(tmp_path))


# --- Files shipped beside the manifest ----------------------------------------


def _shipped_manifest(tmp_path, write_manifest, payload=PAYLOAD):
    (tmp_path / "imagenette").mkdir()
    (tmp_path / "imagenette" / "w.weights.h5").write_bytes(payload)
    record = {
        "path": "imagenette/w.weights.h5",
        "sha256": PAYLOAD_SHA256,
        "format": "keras_weights_h5",
    }
    return write_manifest([_entry(files=[record])])


def test_shipped_file_resolves_beside_the_manifest(tmp_path, write_manifest):
    (entry,) = weights.load_manifest(_shipped_manifest(tmp_path, write_manifest))
    path = weights.shipped_file(entry["files"][0])
    assert path == str(tmp_path / "imagenette" / "w.weights.h5")


def test_shipped_file_with_another_hash_is_rejected(tmp_path, write_manifest):
    manifest = _shipped_manifest(tmp_path, write_manifest, PAYLOAD[::-1])
    (entry,) = weights.load_manifest(manifest)
    with pytest.raises(ValueError, match="corrupted or was changed"):
        weights.shipped_file(entry["files"][0])


def test_missing_shipped_file(tmp_path, write_manifest):
    (entry,) = weights.load_manifest(_shipped_manifest(tmp_path, write_manifest))
    os.remove(tmp_path / "imagenette" / "w.weights.h5")
    with pytest.raises(FileNotFoundError, match="path='imagenette/w.weights.h5'"):
        weights.shipped_file(entry["files"][0])


# --- The user's own registries -----------------------------------------------


def test_user_registry_from_the_environment_adds_its_names(
    tmp_path, write_manifest, monkeypatch
):
    write_manifest([_entry("team.finetuned", alias="ours")])
    monkeypatch.setenv(weights.REGISTRY_VARIABLE, str(tmp_path))  # the folder
    assert weights.registries() == [
        weights.DEFAULT_MANIFEST,
        tmp_path / "manifest.json",
    ]
    names = [entry["name"] for entry in weights.load_manifest()]
    assert "lambda_resnet26_compact.imagenette" in names  # the package's
    assert names[-1] == "team.finetuned"
    entry = weights.find_checkpoint("ours", architecture="LambdaResNet26T")
    assert entry["name"] == "team.finetuned"


def test_add_registry_checks_the_manifest_at_once(
    tmp_path, write_manifest, monkeypatch
):
    monkeypatch.setattr(weights, "_added_registries", [])
    with pytest.raises(FileNotFoundError, match="path=.*nowhere"):
        weights.add_registry(tmp_path / "nowhere")
    path = write_manifest([_entry("team.finetuned", alias=None)])
    weights.add_registry(path)
    weights.add_registry(tmp_path)  # the same manifest, once
    assert weights.registries()[1:] == [path]
    assert weights.find_checkpoint("team.finetuned")["architecture"] == (
        "LambdaResNet26T"
    )


def test_a_user_registry_cannot_shadow_a_registered_name(
    tmp_path, write_manifest, monkeypatch
):
    write_manifest([_entry("lambda_resnet26t.c1_in1k", alias=None)])
    monkeypatch.setenv(weights.REGISTRY_VARIABLE, str(tmp_path / "manifest.json"))
    with pytest.raises(ValueError, match="already registered by .*checkpoints"):
        weights.load_manifest()


def test_a_missing_registry_in_the_environment_names_the_variable(
    tmp_path, monkeypatch
):
    monkeypatch.setenv(weights.REGISTRY_VARIABLE, str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="LAMBDA_KERAS_REGISTRY=.*absent"):
        weights.load_manifest()
