"""Shared pytest configuration: `--run-slow`, a fixed Keras random seed, a
local HTTP server on 127.0.0.1 for the download tests and weights manifests."""

import json
import os
import threading
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402


def pytest_addoption(parser):
    parser.addoption(
        "--run-slow", action="store_true", help="also run tests marked slow"
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)


class _Server:
    """Serves `routes` {path: (body, declared length or None)} and counts hits;
    answers the first `failures[path]` requests of a path with HTTP 503."""

    def __init__(self):
        self.routes = {}
        self.failures = {}
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server naming)
                server.requests.append(self.path)
                if self.path not in server.routes:
                    self.send_error(404, "Not Found")
                    return
                if server.failures.get(self.path):
                    server.failures[self.path] -= 1
                    self.send_error(503, "Service Unavailable")
                    return
                body, length = server.routes[self.path]
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(length or len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, args=(0.05,), daemon=True
        )
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def serve(self, path, body, length=None, failures=0):
        self.routes[path] = (body, length)
        self.failures[path] = failures
        return self.url(path)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server(monkeypatch):
    # Never route 127.0.0.1 through a proxy from the environment.
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    served = _Server()
    yield served
    served.close()


@pytest.fixture
def write_manifest(tmp_path):
    """A function writing a weights manifest of `entries` into `tmp_path`.

    `write_manifest(entries, **fields)` writes `tmp_path/manifest.json`
    (format version 1, extra top-level `fields`) and returns its path.
    """

    def write(entries, **fields):
        path = tmp_path / "manifest.json"
        manifest = {"format_version": 1, "checkpoints": list(entries), **fields}
        path.write_text(json.dumps(manifest), encoding="utf-8")
        return path

    return write
