"""`lambda-keras convert-timm` writes weights that load into the model."""

import os
import subprocess
import sys

import numpy as np
import pytest

from lambda_keras.applications import LambdaResNet26T

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")
safetensors_torch = pytest.importorskip("safetensors.torch")


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "lambda_keras", "convert-timm", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=600,
    )


def test_convert_timm_checkpoint_to_keras_weights(tmp_path):
    torch.manual_seed(0)
    reference = timm.create_model("lambda_resnet26t", pretrained=False)
    state = {k: v.detach().contiguous() for k, v in reference.state_dict().items()}
    checkpoint = tmp_path / "lambda_resnet26t.safetensors"
    safetensors_torch.save_file(state, str(checkpoint))
    output = tmp_path / "lambda_resnet26t.weights.h5"

    result = run_cli(
        "--model",
        "LambdaResNet26T",
        "--checkpoint",
        str(checkpoint),
        "--output",
        str(output),
        "--input-size",
        "128",
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded 187 tensors" in result.stdout and "unused: none" in result.stdout
    model = LambdaResNet26T(weights=str(output), input_shape=(128, 128, 3))
    np.testing.assert_array_equal(
        model.get_layer("predictions").bias.numpy(), state["head.fc.bias"].numpy()
    )


def test_convert_timm_rejects_bad_arguments(tmp_path):
    result = run_cli("--model", "ResNet50", "--checkpoint", "x.pth", "--output", "y")
    assert result.returncode == 2
    assert "--model" in result.stderr and "'ResNet50'" in result.stderr
