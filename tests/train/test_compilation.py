"""Tests of the training step's compilation default (`--jit-compile`)."""

import json
import pathlib

import keras
import pytest
from quick_run import TINY

from lambda_keras.__main__ import main
from lambda_keras.errors import UsageError
from lambda_keras.train.compilation import JIT_COMPILE_DEFAULTS
from lambda_keras.train.compilation import choose_jit_compile

RESULTS = pathlib.Path(__file__).parents[2] / "benchmarks" / "results"


def test_every_platform_the_strategies_return_has_a_default():
    for backend in ("tensorflow", "jax", "torch"):
        for device in ("cpu", "gpu"):
            assert isinstance(JIT_COMPILE_DEFAULTS[backend, device][0], bool)
    assert ("tensorflow", "tpu") in JIT_COMPILE_DEFAULTS
    assert ("jax", "tpu") in JIT_COMPILE_DEFAULTS
    with pytest.raises(ValueError, match="Received: backend='torch', device='tpu'"):
        choose_jit_compile(None, "torch", "tpu")


def test_the_cpu_defaults_follow_the_measurement():
    # benchmarks/results/jit_compile.json: compiled / uncompiled images/s of
    # the same training step; the default compiles where that is at least
    # 1.05 (the rule of JIT_COMPILE_DEFAULTS), and the printed reason
    # quotes the figure.
    report = json.loads((RESULTS / "jit_compile.json").read_text())
    assert not report["quick"]
    for backend, result in report["results"].items():
        rates = result["images_per_second"]
        ratio = rates["compiled"] / rates["uncompiled"]
        compiles, reason = JIT_COMPILE_DEFAULTS[backend, "cpu"]
        assert compiles == (ratio >= 1.05), (backend, ratio)
        assert f"{ratio:.2f}x" in reason, (backend, ratio, reason)


def test_a_tpu_always_compiles():
    # TPUStrategy compiles the replicated step itself: Keras gets False.
    jit_compile, message = choose_jit_compile(None, "tensorflow", "tpu")
    assert jit_compile is False and message.startswith("The training step is compiled")
    assert choose_jit_compile(True, "tensorflow", "tpu")[0] is False
    assert choose_jit_compile(None, "jax", "tpu")[0] is True
    with pytest.raises(UsageError, match="Received: --no-jit-compile on a TPU"):
        choose_jit_compile(False, "jax", "tpu")


def test_the_flags_choose_on_other_devices():
    assert choose_jit_compile(True, "tensorflow", "cpu") == (
        True,
        "The training step is compiled (--jit-compile).",
    )
    assert choose_jit_compile(False, "jax", "gpu") == (
        False,
        "The training step is not compiled (--no-jit-compile).",
    )
    default, message = choose_jit_compile(None, "tensorflow", "cpu")
    assert default is JIT_COMPILE_DEFAULTS["tensorflow", "cpu"][0]
    assert "by default on tensorflow on a cpu" in message
    assert JIT_COMPILE_DEFAULTS["tensorflow", "cpu"][1] in message


def test_train_prints_its_choice_and_records_it(
    folder_dataset, tmp_path, tiny_model, capsys
):
    command = ["train", "--dataset", str(folder_dataset), *TINY]
    assert main([*command, "--model-dir", str(tmp_path / "default")]) == 0
    default, reason = JIT_COMPILE_DEFAULTS[keras.backend.backend(), "cpu"]
    output = capsys.readouterr().out
    assert reason in output
    card = json.loads((tmp_path / "default" / "model_card.json").read_text())
    assert card["hardware"]["jit_compile"] is default

    assert main([*command, "--model-dir", str(tmp_path / "xla"), "--jit-compile"]) == 0
    assert "The training step is compiled (--jit-compile)." in capsys.readouterr().out
    card = json.loads((tmp_path / "xla" / "model_card.json").read_text())
    assert card["hardware"]["jit_compile"] is True
