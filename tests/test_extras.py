"""A missing optional dependency names the extra that installs it."""

import subprocess
import sys

import pytest

from lambda_keras import extras


def test_missing_module_names_its_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # import fails
    with pytest.raises(extras.MissingExtraError, match=r"ONNX export needs") as info:
        extras.require("tf2onnx", "ONNX export")
    assert 'pip install "lambda_keras[export]"' in str(info.value)


def test_every_extra_named_exists_in_setup():
    setup = extras.__file__.rsplit("lambda_keras", 1)[0] + "setup.py"
    text = open(setup, encoding="utf-8").read()
    for extra in set(extras.EXTRA_OF_MODULE.values()):
        assert f'"{extra}": [' in text


def _cli_without(module, argv):
    """`lambda-keras argv` in a fresh interpreter where `module` cannot be
    imported (as if its extra were not installed)."""
    script = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from lambda_keras.__main__ import main\n"
        f"sys.exit(main({argv!r}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600
    )


def test_cli_reports_a_missing_extra_in_one_line(tmp_path):
    # `--format onnx` without tf2onnx: one line naming the extra, exit 2.
    result = _cli_without(
        "tf2onnx",
        ["export", "--model", "LambdaResNet26Cifar", "--weights", "none"]
        + ["--format", "onnx", "--out", str(tmp_path / "out")],
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if "lambda_keras[" in line]
    assert lines == [
        "lambda-keras export: error: ONNX export needs the package 'tf2onnx', which is "
        'not installed. Install the extra: pip install "lambda_keras[export]"'
    ]
    assert "Traceback" not in result.stderr


def test_train_without_tensorboard_names_the_train_extra(tmp_path):
    # TensorFlow 2.21's wheel does not require TensorBoard; training stops
    # before anything is built, in one line.
    result = _cli_without(
        "tensorboard",
        ["train", "--model", "LambdaResNet26Cifar", "--dataset", str(tmp_path)]
        + ["--model-dir", str(tmp_path / "run")],
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if "lambda_keras[" in line]
    assert lines == [
        "lambda-keras train: error: lambda-keras train (its TensorBoard logs in "
        "logs/) needs the package 'tensorboard', which is not installed. Install "
        'the extra: pip install "lambda_keras[train]"'
    ]
    assert not (tmp_path / "run" / "backup").exists()
