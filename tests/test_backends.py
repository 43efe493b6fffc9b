"""Runs the ops and layer test modules under the JAX and PyTorch backends.

Keras fixes its backend at import, so each backend runs in its own pytest
process with KERAS_BACKEND set.
"""

import os
import pathlib
import subprocess
import sys

import pytest

TESTS = pathlib.Path(__file__).parent


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_layer_and_ops_tests_pass_on_backend(backend):
    environment = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(TESTS / "ops"),
            str(TESTS / "layers"),
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, (
        f"KERAS_BACKEND={backend}: {summary}\n"
        f"{result.stdout[-5000:]}\n{result.stderr[-2000:]}"
    )
    assert " passed" in summary and "failed" not in summary and "skipped" not in summary
