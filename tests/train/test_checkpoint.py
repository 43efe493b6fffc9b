"""Tests of packaging a trained run as a registered float16 checkpoint."""

import json

import h5py
import numpy as np
import pytest
from quick_run import MODEL

from lambda_keras import LambdaResNet26Cifar
from lambda_keras import weights
from lambda_keras.__main__ import main
from lambda_keras.train.checkpoint import cast_weights_file


def test_cast_weights_file_halves_and_loads(trained, tmp_path):
    source = trained / "final.weights.h5"
    target = tmp_path / "half.weights.h5"
    cast_weights_file(source, target)
    with h5py.File(target) as f:
        dtypes = set()
        f.visititems(
            lambda _, obj: (
                dtypes.add(obj.dtype.name) if isinstance(obj, h5py.Dataset) else None
            )
        )
    assert dtypes == {"float16"}
    assert target.stat().st_size < 0.6 * source.stat().st_size
    full = LambdaResNet26Cifar(classes=3)
    full.load_weights(source)
    half = LambdaResNet26Cifar(classes=3)
    half.load_weights(target)
    for a, b in zip(full.get_weights(), half.get_weights()):
        assert b.dtype == np.float32
        np.testing.assert_allclose(b, a.astype(np.float16), rtol=0, atol=0)


def test_package_checkpoint_registers_loadable_weights(
    trained, tmp_path, monkeypatch, capsys
):
    manifest = tmp_path / "manifest.json"
    code = main(
        [
            "package-checkpoint", "--model-dir", str(trained),
            "--name", "tiny.test", "--alias", "testdata",
            "--manifest", str(manifest),
        ]
    )  # fmt: skip
    assert code == 0
    (entry,) = weights.load_manifest(manifest)
    card = json.loads((trained / "model_card.json").read_text())
    assert entry["architecture"] == MODEL and entry["classes"] == 3
    assert entry["class_names"] == card["data"]["class_names"]
    assert entry["files"][0]["path"] == "testdata/tiny.test.weights.h5"
    assert (tmp_path / "testdata" / "training_log.csv").exists()
    # The float16 file's accuracy was measured again, on the same split.
    assert entry["metrics"]["examples"] == 12
    assert entry["metrics"]["top1_float32"] == card["metrics"]["top1"]
    assert abs(entry["metrics"]["top1"] - card["metrics"]["top1"]) <= 100 / 12
    assert (
        "lambda-keras evaluate --model LambdaResNet26Cifar --weights testdata"
        in (entry["metrics"]["measured_by"])
    )
    assert (
        json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        == (entry["metrics"])
    )

    # The constructors resolve the alias from the user's registry, offline.
    monkeypatch.setenv("LAMBDA_KERAS_REGISTRY", str(tmp_path))
    model = LambdaResNet26Cifar(weights="testdata", classes=3)
    reference = LambdaResNet26Cifar(classes=3)
    reference.load_weights(tmp_path / "testdata" / "tiny.test.weights.h5")
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="`classes` should be 3"):
        LambdaResNet26Cifar(weights="testdata")

    # Packaging again replaces the entry rather than adding a second one.
    assert main(
        [
            "package-checkpoint", "--model-dir", str(trained),
            "--name", "tiny.test", "--alias", "testdata",
            "--manifest", str(manifest), "--dtype", "float32",
        ]
    ) == 0  # fmt: skip
    (entry,) = weights.load_manifest(manifest)
    assert entry["files"][0]["dtype"] == "float32"


def test_package_checkpoint_refuses_to_write_into_an_installed_package(
    trained, tmp_path, capsys
):
    installed = tmp_path / "lib" / "site-packages" / "lambda_keras" / "checkpoints"
    code = main(
        [
            "package-checkpoint", "--model-dir", str(trained),
            "--name", "tiny.test", "--alias", "testdata",
            "--manifest", str(installed),
        ]
    )  # fmt: skip
    assert code == 2
    error = capsys.readouterr().err
    assert "not into an installed package" in error
    assert f"--manifest={installed}" in error
    assert not installed.exists()
