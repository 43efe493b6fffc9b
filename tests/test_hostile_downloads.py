"""Downloads from hostile or failing servers, and what is cached beside them.

No network: the servers run on 127.0.0.1 (the `server` fixture of
conftest.py, and here a raw socket server that never answers).
"""

import hashlib
import io
import os
import socket
import threading
import time

import keras
import numpy as np
import pytest

from lambda_keras import weights
from lambda_keras.applications import LambdaResNet26T

PAYLOAD = bytes(range(256)) * 64
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


def file_record(url, body=PAYLOAD, file_format="safetensors"):
    sha256 = hashlib.sha256(body).hexdigest()
    return {"url": url, "sha256": sha256, "format": file_format}


def cache_files(cache_dir):
    return sorted(
        os.path.relpath(os.path.join(root, name), cache_dir)
        for root, _, names in os.walk(cache_dir)
        for name in names
    )


@pytest.fixture(autouse=True)
def no_retry_delay(monkeypatch):
    monkeypatch.setattr(weights, "RETRY_DELAYS_S", (0, 0))


class SilentServer:
    """Accepts connections on 127.0.0.1, reads nothing and never answers."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.connections = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections.append(connection)

    def url(self, path):
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}{path}"

    def close(self):
        self.stopped.set()
        self.thread.join(timeout=5)
        for connection in self.connections:
            connection.close()
        self.listener.close()


@pytest.fixture
def silent_server(server):
    # `server` takes 127.0.0.1 out of any proxy settings.
    silent = SilentServer()
    yield silent
    silent.close()


def download_within(seconds, entry_file, cache_dir):
    """Runs `weights.download` in a thread; returns (error, elapsed seconds)
    and fails the test if it is still running after `seconds`."""
    outcome = {}

    def run():
        try:
            weights.download(entry_file, cache_dir=cache_dir)
        except Exception as error:
            outcome["error"] = error

    start = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"download still hanging after {seconds} s"
    return outcome.get("error"), time.monotonic() - start


# --------------------------------------------------------------------------
# Timeouts and retries
# --------------------------------------------------------------------------


def test_server_that_never_answers_times_out(silent_server, tmp_path, monkeypatch):
    monkeypatch.setenv(weights.DOWNLOAD_TIMEOUT_VARIABLE, "0.3")
    url = silent_server.url("/model.safetensors")

    error, elapsed = download_within(30, file_record(url), str(tmp_path))

    assert isinstance(error, weights.WeightsDownloadError)
    message = str(error)
    assert url in message
    assert "no answer within 0.3 s" in message
    assert f"set {weights.DOWNLOAD_TIMEOUT_VARIABLE}" in message
    assert f"{weights.DOWNLOAD_ATTEMPTS} attempts" in message
    assert "weights='/path/to/model.safetensors'" in message
    assert weights.REGISTRY_VARIABLE in message and "add_registry" in message
    assert len(silent_server.connections) == weights.DOWNLOAD_ATTEMPTS
    assert elapsed < 10
    assert cache_files(tmp_path) == []


def test_server_failing_once_is_retried(server, tmp_path):
    url = server.serve("/model.safetensors", PAYLOAD, failures=1)

    path = weights.download(file_record(url), cache_dir=str(tmp_path))

    with open(path, "rb") as file:
        assert file.read() == PAYLOAD
    assert server.requests == ["/model.safetensors"] * 2
    assert cache_files(tmp_path) == [f"lambda_keras/{os.path.basename(path)}"]


def test_server_failing_every_time_is_tried_a_bounded_number_of_times(server, tmp_path):
    url = server.serve("/model.safetensors", PAYLOAD, failures=100)

    with pytest.raises(weights.WeightsDownloadError) as info:
        weights.download(file_record(url), cache_dir=str(tmp_path))

    message = str(info.value)
    assert url in message and "HTTP error 503" in message
    assert f"{weights.DOWNLOAD_ATTEMPTS} attempts" in message
    assert len(server.requests) == weights.DOWNLOAD_ATTEMPTS
    assert cache_files(tmp_path) == []


def test_missing_file_is_not_retried(server, tmp_path):
    with pytest.raises(weights.WeightsDownloadError, match="HTTP error 404"):
        weights.download(file_record(server.url("/absent.pth")), cache_dir=tmp_path)
    assert len(server.requests) == 1


@pytest.mark.parametrize("value", ["soon", "0", "-5", "inf", "nan"])
def test_bad_timeout_variable(server, tmp_path, monkeypatch, value):
    monkeypatch.setenv(weights.DOWNLOAD_TIMEOUT_VARIABLE, value)
    url = server.serve("/model.safetensors", PAYLOAD)

    with pytest.raises(ValueError) as info:
        weights.download(file_record(url), cache_dir=str(tmp_path))

    assert str(info.value).endswith(
        f"Received: {weights.DOWNLOAD_TIMEOUT_VARIABLE}={value}"
    )
    assert server.requests == []


# --------------------------------------------------------------------------
# What is cached beside a downloaded checkpoint
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def timm_checkpoint():
    """The bytes of a random lambda_resnet26t .pth, and its state dict."""
    import timm
    import torch

    torch.manual_seed(0)
    state = timm.create_model("lambda_resnet26t").state_dict()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue(), {name: value.numpy() for name, value in state.items()}


def test_tampered_or_truncated_array_cache_is_never_loaded(
    server, tmp_path, timm_checkpoint
):
    # Earlier versions loaded `<checkpoint>.npz` from the cache unchecked.
    body, state = timm_checkpoint
    url = server.serve("/lambda_resnet26t.pth", body)
    entry = {"files": [file_record(url, body, "pth")]}
    cached = weights.download(entry["files"][0], cache_dir=str(tmp_path))
    model = LambdaResNet26T(weights=None, input_shape=(32, 32, 3))
    kernel = state["stem.conv1.conv.weight"].transpose(2, 3, 1, 0)
    tampered = {name: np.zeros_like(value) for name, value in state.items()}
    np.savez(cached + ".npz", **tampered)
    with open(cached + ".npz", "rb") as file:
        truncated = file.read(1000)

    for leftover in (None, truncated):
        if leftover is not None:
            with open(cached + ".npz", "wb") as file:
                file.write(leftover)
        model.get_layer("stem_conv1").kernel.assign(np.ones_like(kernel))

        report = weights.load_pretrained(model, entry, cache_dir=str(tmp_path))

        assert len(report["loaded"]) == 187
        np.testing.assert_array_equal(
            model.get_layer("stem_conv1").kernel.numpy(), kernel
        )
        assert not os.path.exists(cached + ".npz")
    assert cache_files(tmp_path) == [f"lambda_keras/{os.path.basename(cached)}"]


def test_downloaded_keras_weights_keep_their_suffix(server, tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    saved = tmp_path / "tiny.weights.h5"
    model.save_weights(saved)
    url = server.serve("/tiny.weights.h5", saved.read_bytes())
    entry = {"files": [file_record(url, saved.read_bytes(), "keras_weights_h5")]}
    expected = model.get_weights()
    model.set_weights([np.zeros_like(value) for value in expected])

    weights.load_pretrained(model, entry, cache_dir=str(tmp_path / "cache"))

    for value, loaded in zip(expected, model.get_weights()):
        np.testing.assert_array_equal(value, loaded)
    (name,) = os.listdir(tmp_path / "cache" / "lambda_keras")
    assert name.endswith(".weights.h5")
