"""End-to-end tests of `lambda-keras train` and `lambda-keras evaluate` on a
small folder dataset of real photographs, and of their failure behaviour."""

import csv
import json
import math

import h5py
import keras
import numpy as np
import pytest
from quick_run import MODEL
from quick_run import QUICK
from quick_run import train_quick as _train

from lambda_keras.__main__ import main
from lambda_keras.train.trainer import evaluate


def test_outputs(trained):
    names = {path.name for path in trained.iterdir()}
    assert {
        "backup",
        "logs",
        "training_log.csv",
        "best.weights.h5",
        "best.json",
        "final.weights.h5",
        "model.keras",
        "model_card.json",
    } <= names
    assert not [name for name in names if name.startswith(".tmp-")]
    with open(trained / "training_log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["epoch"] for row in rows] == ["0", "1"]
    assert all(math.isfinite(float(row["loss"])) for row in rows)
    assert {"top1", "top5", "val_top1", "val_top5"} <= set(rows[0])
    assert list((trained / "logs").iterdir())  # TensorBoard event files
    with h5py.File(trained / "final.weights.h5") as f:
        assert "optimizer" not in f


def test_model_card(trained, folder_dataset):
    with open(trained / "model_card.json") as f:
        card = json.load(f)
    assert card["model"] == MODEL and card["epochs_completed"] == 2
    assert card["data"]["class_names"] == ["n01440764", "n03028079", "n03888257"]
    assert card["data"]["train_examples"] == 24
    assert card["recipe"]["name"] == "paper350"
    assert card["recipe"]["randaugment_magnitude"] == 15
    assert card["recipe"]["ema_momentum"] == 0.5
    assert card["hardware"]["strategy"] == "No TPU or GPU found: training on the CPU."
    assert card["wall_time_seconds_this_run"] > 0
    assert 0 <= card["metrics"]["top1"] <= card["metrics"]["top5"] <= 100
    assert card["metrics"]["measured_by"].startswith("lambda-keras evaluate")
    assert card["command"].startswith("lambda-keras train --dataset")


def test_evaluate_reproduces_the_model_card(trained, folder_dataset):
    with open(trained / "model_card.json") as f:
        card = json.load(f)
    results = evaluate(
        MODEL,
        str(trained / "final.weights.h5"),
        str(folder_dataset),
        image_size=32,
    )
    assert results["examples"] == 12 and results["split"] == "val"
    assert results["top1"] == pytest.approx(card["metrics"]["top1"], abs=0.01)
    assert results["top5"] == pytest.approx(card["metrics"]["top5"], abs=0.01)


def test_saved_keras_model_predicts_like_the_final_weights(trained):
    model = keras.saving.load_model(trained / "model.keras")
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    from lambda_keras import LambdaResNet26Cifar

    fresh = LambdaResNet26Cifar(classes=3, include_preprocessing=True)
    fresh.load_weights(trained / "final.weights.h5")
    np.testing.assert_allclose(
        model.predict(images, verbose=0), fresh.predict(images, verbose=0), atol=1e-5
    )


def test_evaluate_command(trained, folder_dataset, tmp_path, capsys):
    output = tmp_path / "results.json"
    code = main(
        [
            "evaluate", "--model", MODEL, "--weights", str(trained / "best.weights.h5"),
            "--dataset", str(folder_dataset), "--image-size", "32",
            "--json", str(output),
        ]
    )  # fmt: skip
    assert code == 0
    results = json.loads(output.read_text())
    assert results["examples"] == 12
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == results


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    folder_dataset, tmp_path, capsys
):
    assert _train(folder_dataset, tmp_path, "--epochs", "1") == 0
    metadata = json.loads((tmp_path / "backup" / "training_metadata.json").read_text())
    (state,) = metadata["generations"]
    assert state["epoch"] == 1
    good = (tmp_path / "backup" / state["weights"]).read_bytes()
    best = (tmp_path / "best.weights.h5").read_bytes()

    code = _train(
        folder_dataset,
        tmp_path,
        "--epochs", "3", "--learning-rate", "inf", "--warmup-epochs", "0",
    )  # fmt: skip
    assert code == 3
    error = capsys.readouterr().err
    # Resumed after epoch 1, the second epoch (Keras' "Epoch 2/3") fails.
    assert "The training loss became NaN or infinite in epoch 2" in error
    assert "last good checkpoint" in error
    # The backup of epoch 1 and the best weights are untouched.
    assert json.loads((tmp_path / "backup" / "training_metadata.json").read_text()) == (
        metadata
    )
    assert (tmp_path / "backup" / state["weights"]).read_bytes() == good
    assert (tmp_path / "best.weights.h5").read_bytes() == best


def test_mixed_precision(folder_dataset, tmp_path):
    assert _train(folder_dataset, tmp_path, "--mixed-precision", "--epochs", "1") == 0
    card = json.loads((tmp_path / "model_card.json").read_text())
    assert card["hardware"]["dtype_policy"] == "mixed_bfloat16"  # bf16 on CPU
    assert math.isfinite(card["last_epoch_logs"]["loss"])
    # The run does not leave its policy behind for the rest of the process.
    assert keras.config.dtype_policy().name == "float32"
    model = keras.saving.load_model(tmp_path / "model.keras")
    assert model.get_layer("predictions").compute_dtype == "float32"
    assert model.get_layer("c5_block1_lambda").compute_dtype == "bfloat16"


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--model", "LambdaResNet9"], ("usage", "invalid choice: 'LambdaResNet9'")),
        (["--dataset", "no_such_dataset"], "Unknown dataset 'no_such_dataset'"),
        (["--dataset", "/no/such/folder"], "Received: --dataset=/no/such/folder"),
        (["--dataset", "cifar10", "--data-dir", "{tmp}"], "is not prepared in"),
        (["--batch-size", "100"], "fewer than one global batch"),
        (["--recipe-x"], ("usage", "unrecognized arguments: --recipe-x")),
    ],
)
def test_failures_exit_with_a_clear_message(
    folder_dataset, tmp_path, capsys, arguments, message
):
    arguments = [a.replace("{tmp}", str(tmp_path)) for a in arguments]
    base = ["train", "--model-dir", str(tmp_path / "run"), *QUICK]
    if "--dataset" not in arguments:
        base += ["--dataset", str(folder_dataset)]
    if isinstance(message, tuple):  # argparse's usage error
        with pytest.raises(SystemExit) as exit_info:
            main(base + arguments)
        assert exit_info.value.code == 2
        assert message[1] in capsys.readouterr().err
        return
    assert main(base + arguments) == 2
    assert message in capsys.readouterr().err
