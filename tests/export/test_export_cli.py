"""`lambda-keras export` and `lambda-keras predict` on the sample images."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from export_helpers import CLASS_NAMES
from export_helpers import cli_error
from export_helpers import compact_model
from export_helpers import keras_inputs

from lambda_keras.__main__ import main
from lambda_keras.preprocessing import sample_images

ROOT = Path(__file__).parents[2]
NAMES = ",".join(CLASS_NAMES)
MODEL = ["--model", "LambdaResNet26Compact", "--classes", "3", "--class-names", NAMES]
LINE = re.compile(r"^  (\d+)\. (\d\.\d{4})  (\S+) \(class (\d+)\)$")
IMAGES = [str(path) for path in sample_images()]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A LambdaResNet26Compact (3 classes, 64 px) and its .weights.h5 file."""
    model = compact_model()
    path = tmp_path_factory.mktemp("weights") / "compact.weights.h5"
    model.save_weights(path)
    return model, str(path)


def parse_predictions(text):
    """{file name: [(class id, name, probability), ...]} from predict's output."""
    results, current = {}, None
    for line in text.splitlines():
        match = LINE.match(line)
        if line.startswith("Top-"):
            continue
        if line.endswith(":") and not line.startswith(" "):
            current = results.setdefault(os.path.basename(line[:-1]), [])
        elif match:
            _, score, name, index = match.groups()
            current.append((int(index), name, float(score)))
    return results


def expected_predictions(model):
    """What predict should print: all three classes, best first."""
    paths = sample_images()
    probabilities = model.predict(
        keras_inputs([path.read_bytes() for path in paths]), verbose=0
    )
    results = {}
    for path, row in zip(paths, probabilities):
        order = np.argsort(-row, kind="stable")
        results[path.name] = [(int(i), CLASS_NAMES[i], float(row[i])) for i in order]
    return results


def assert_same_predictions(printed, expected):
    assert printed.keys() == expected.keys()
    for name, rows in expected.items():
        assert [row[:2] for row in printed[name]] == [row[:2] for row in rows]
        np.testing.assert_allclose(
            [row[2] for row in printed[name]], [row[2] for row in rows], atol=6e-5
        )


def test_predict_with_the_keras_model(weights, capsys):
    model, path = weights
    assert main(["predict", *IMAGES, *MODEL, "--weights", path]) == 0
    output = capsys.readouterr().out
    # All three classes: the default top 5 is capped by the classes.
    assert output.startswith("Top-3 classes by LambdaResNet26Compact")
    assert_same_predictions(parse_predictions(output), expected_predictions(model))


@pytest.mark.slow
def test_export_then_predict_from_the_saved_model(weights, tmp_path, capsys):
    model, path = weights
    out = tmp_path / "lambda_resnet26_compact"
    command = ["export", *MODEL, "--weights", path, "--out", str(out)]
    assert main([*command, "--version", "2"]) == 0
    printed = capsys.readouterr().out
    assert (out / "2" / "saved_model.pb").is_file()
    assert "signatures serving_default (image_bytes)" in printed
    assert (
        "tensorflow_model_server --rest_api_port=8501 "
        f"--model_name=lambda_resnet26_compact --model_base_path={out}"
    ) in printed
    assert "already exists" in cli_error(capsys, [*command, "--version", "2"])

    # The command line itself, in a new process, on the sample images.
    result = subprocess.run(
        [sys.executable, "-m", "lambda_keras", "predict", *IMAGES]
        + ["--saved-model", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith(f"Top-3 classes by {out / '2'}:")
    assert_same_predictions(
        parse_predictions(result.stdout), expected_predictions(model)
    )


@pytest.mark.slow
@pytest.mark.parametrize("format", ["tflite", "onnx"])
def test_export_tflite_and_onnx(weights, tmp_path, capsys, format):
    _, path = weights
    arguments = ["export", *MODEL, "--weights", path, "--out", str(tmp_path)]
    assert main([*arguments, "--format", format]) == 0
    model_file = tmp_path / f"model.{format}"
    assert model_file.stat().st_size > 4 * 2e6  # 2.4M float32 parameters
    assert (tmp_path / "labels.txt").read_text() == "church\nparachute\ntench\n"
    assert "input 'images' (batch, 64, 64, 3) float32" in capsys.readouterr().out


def test_predict_reports_a_bad_file_and_goes_on(weights, tmp_path, capsys):
    _, path = weights
    text_file = tmp_path / "notes.jpg"
    text_file.write_text("not an image")
    arguments = ["predict", IMAGES[0], str(text_file), IMAGES[1], *MODEL]
    assert main([*arguments, "--weights", path, "--top-k", "2"]) == 2
    printed, error = capsys.readouterr()
    assert error.startswith(
        f"lambda-keras predict: error: 1 of 3 images could not be classified: "
        f"{text_file}: the file is not a JPEG or PNG image"
    )
    predictions = parse_predictions(printed)
    assert [len(rows) for rows in predictions.values()] == [2, 0, 2]
    assert (
        "  error: the file is not a JPEG or PNG image (12 bytes that start with "
        "neither signature)"
    ) in printed


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["predict", "a.jpg"], "Give either --saved-model DIR or --model"),
        (
            ["predict", "a.jpg", "--saved-model", "x", "--model", "LambdaResNet50"],
            "Give either --saved-model DIR or --model",
        ),
        (
            ["predict", "a.jpg", "--model", "LambdaResNet50"],
            "--model needs --weights",
        ),
        (
            ["export", *MODEL, "--weights", "none", "--out", "x", "--format", "onnx"]
            + ["--version", "3"],
            "Received: --version=3",
        ),
        (
            ["export", *MODEL, "--weights", "none", "--out", "x", "--int8"],
            "Received: --format=savedmodel",
        ),
    ],
)
def test_argument_errors(arguments, message, capsys):
    line = cli_error(capsys, arguments)
    assert line.startswith(f"lambda-keras {arguments[0]}: error: ")
    assert message in line and "Received: " in line


def test_unknown_weights_list_the_registered_ones(tmp_path, capsys):
    arguments = ["export", "--model", "LambdaResNet26T", "--weights", "imagenett"]
    line = cli_error(capsys, [*arguments, "--out", str(tmp_path)])
    assert "available for 'LambdaResNet26T': ['" in line
    assert "Received: " in line
