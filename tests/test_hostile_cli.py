"""The command line under hostile input: one line and exit code 2 for a user
error of every sub-command, one line and exit code 1 for an internal error,
and the traceback with --debug (before or after the sub-command).

Every case fails before a model is built: `main` runs in-process.
"""

import pytest

import lambda_keras.demo
import lambda_keras.train.cli
from lambda_keras.__main__ import main
from lambda_keras.errors import UsageError


def user_error_cases():
    """(arguments, texts the one line must contain), `{tmp}` a scratch folder."""
    return {
        "demo-missing-image": (
            ["demo", "--image", "{tmp}/no_such.jpg"],
            ["No such file", "Received: --image={tmp}/no_such.jpg"],
        ),
        "demo-image-is-a-folder": (
            ["demo", "--image", "{tmp}"],
            ["Is a directory", "Received: --image={tmp}"],
        ),
        "demo-corrupt-jpeg": (
            ["demo", "--image", "{tmp}/corrupt.jpg"],
            ["not a JPEG, PNG", "Received: --image={tmp}/corrupt.jpg"],
        ),
        "demo-text-file": (
            ["demo", "--image", "{tmp}/notes.txt"],
            ["Unknown image file format", "Received: --image={tmp}/notes.txt"],
        ),
        "demo-size-0": (["demo", "--size", "0"], ["Received: --size=0"]),
        "demo-size-negative": (["demo", "--size", "-3"], ["Received: --size=-3"]),
        "demo-model-size-0": (
            ["demo", "--model-size", "0"],
            ["at least 32", "Received: --model-size=0"],
        ),
        "demo-model-size-16": (
            ["demo", "--model-size", "16"],
            ["Received: --model-size=16"],
        ),
        "demo-json-in-missing-folder": (
            ["demo", "--json", "{tmp}/no/such/folder/out.json"],
            ["Received: --json={tmp}/no/such/folder/out.json"],
        ),
        "evaluate-missing-dataset": (
            [
                "evaluate",
                "--model",
                "LambdaResNet26Compact",
                "--weights",
                "none",
                "--dataset",
                "{tmp}/no_such_dataset",
            ],
            ["Received: --dataset={tmp}/no_such_dataset"],
        ),
        "train-missing-dataset-folder": (
            [
                "train",
                "--model",
                "LambdaResNet26Compact",
                "--dataset",
                "{tmp}/no_such_folder",
                "--model-dir",
                "{tmp}/run",
            ],
            ["Received: --dataset={tmp}/no_such_folder"],
        ),
        # The train area's message names the file but not the flag; pinned
        # to one line naming the folder it looked in.
        "package-checkpoint-missing-model-dir": (
            [
                "package-checkpoint",
                "--model-dir",
                "{tmp}/no_such_run",
                "--name",
                "run",
                "--alias",
                "mine",
            ],
            ["{tmp}/no_such_run"],
        ),
        "export-version-with-tflite": (
            [
                "export",
                "--model",
                "LambdaResNet26Compact",
                "--weights",
                "none",
                "--out",
                "{tmp}/exported",
                "--format",
                "tflite",
                "--version",
                "2",
            ],
            ["Received: --version=2"],
        ),
        "predict-without-a-model": (
            ["predict", "{tmp}/photo.jpg"],
            ["Received: --saved-model=None --model=None"],
        ),
    }


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """A folder with a corrupt JPEG and a text file; the demo never builds."""
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 then garbage")
    (tmp_path / "notes.txt").write_text("not an image")

    def no_model(*args, **kwargs):
        raise AssertionError("the demo built a model before checking its flags")

    monkeypatch.setattr(lambda_keras.demo, "classify_samples", no_model)
    return tmp_path


def fill(arguments, tmp):
    return [argument.replace("{tmp}", str(tmp)) for argument in arguments]


@pytest.mark.parametrize("case", sorted(user_error_cases()))
def test_user_error_is_one_line_and_exit_code_2(case, scratch, capsys):
    arguments, texts = user_error_cases()[case]

    code = main(fill(arguments, scratch))

    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == 2
    assert len(lines) == 1, captured.err
    command = arguments[0]
    assert lines[0].startswith(f"lambda-keras {command}: error: ")
    for text in fill(texts, scratch):
        assert text in lines[0]
    assert "Traceback" not in captured.err + captured.out


@pytest.mark.parametrize(
    "arguments, text",
    [
        (["demo", "--size", "x"], "argument --size: invalid int value: 'x'"),
        (["export", "--model", "Nope"], "invalid choice: 'Nope'"),
        (["predict"], "the following arguments are required"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    ],
)
def test_argparse_error_is_one_line_and_exit_code_2(arguments, text, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(arguments)

    lines = capsys.readouterr().err.splitlines()
    assert exit_info.value.code == 2
    assert len(lines) == 1
    assert text in lines[0] and "--help" in lines[0]


def raise_key_error(*args, **kwargs):
    raise KeyError("no_such_key")


@pytest.mark.parametrize(
    "module, function, arguments",
    [
        (lambda_keras.demo, "run_demo", ["demo"]),
        (lambda_keras.demo, "run_demo", []),  # the default command
        (lambda_keras.train.cli, "run_package", ["package-checkpoint"]),
    ],
)
def test_internal_error_is_one_line_and_exit_code_1(
    module, function, arguments, monkeypatch, capsys
):
    monkeypatch.setattr(module, function, raise_key_error)
    if arguments[:1] == ["package-checkpoint"]:
        arguments = arguments + ["--model-dir", "x", "--name", "n", "--alias", "a"]

    code = main(arguments)

    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == 1
    assert len(lines) == 1
    assert "internal error" in lines[0] and "KeyError" in lines[0]
    assert "no_such_key" in lines[0] and "--debug" in lines[0]
    assert "Traceback" not in captured.err


@pytest.mark.parametrize(
    "arguments", [["--debug", "demo"], ["demo", "--debug"], ["--debug"]]
)
def test_debug_lets_an_internal_error_propagate(arguments, monkeypatch, capsys):
    monkeypatch.setattr(lambda_keras.demo, "run_demo", raise_key_error)

    with pytest.raises(KeyError, match="no_such_key"):
        main(arguments)

    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "arguments",
    [["--debug", "demo", "--size", "0"], ["demo", "--size", "0", "--debug"]],
)
def test_debug_lets_a_user_error_propagate(arguments, scratch):
    with pytest.raises(UsageError, match="Received: --size=0"):
        main(arguments)


def test_run_demo_checks_its_arguments_before_any_work(scratch):
    with pytest.raises(ValueError, match="Received: --model-size=224.0"):
        lambda_keras.demo.run_demo(model_size=224.0)
    with pytest.raises(ValueError, match="Received: channels=0"):
        lambda_keras.demo.run_demo(channels=0)
    with pytest.raises(ValueError, match="Received: --image="):
        lambda_keras.demo.run_demo(image_path=scratch / "notes.txt")
