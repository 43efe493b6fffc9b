"""The README's main command, `python -m lambda_keras`, on a sample image."""

import json
import os
import subprocess
import sys

from lambda_keras.demo import run_demo


def test_demo_checks_the_paper_claims_on_a_real_image():
    lines = []
    results = run_demo(size=24, model_size=64, print_fn=lines.append)

    assert results["image"] == "tench.jpg"
    assert results["einsum_vs_conv_max_abs_diff"] < 1e-3
    assert results["causal_leak_max_abs_diff"] < 1e-4
    shapes = {name: r["output_shape"] for name, r in results["configurations"].items()}
    assert shapes["global context (einsum)"] == [1, 24, 24, 64]
    assert shapes["strided (3x3 avg pool)"] == [1, 12, 12, 64]
    assert any("einsum vs lambda convolution" in line for line in lines)
    assert results["lambda_resnet50"]["output_shape"] == [1, 1000]
    assert results["lambda_resnet50"]["parameters"] > 18e6


def test_module_entry_point_runs_and_writes_json(tmp_path):
    output = tmp_path / "demo.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lambda_keras",
            "demo",
            "--size",
            "16",
            "--json",
            str(output),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "lambda_keras demo on tench.jpg (16x16)" in result.stdout
    assert json.loads(output.read_text())["size"] == 16
