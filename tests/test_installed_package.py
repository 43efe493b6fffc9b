"""The built wheel, installed in a fresh environment, outside the repository.

What `pip install lambda_keras` (or `pip install git+...`, or Colab) gives
a user: no checkout on `sys.path`, the package's files only. The wheel is
installed beside plain `tensorflow` and keras-hub (the `hub` extra); the
commands below run from an empty folder, offline.
"""

import os
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]


def _run(command, cwd, env, timeout=900):
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, (
        command,
        result.stdout[-3000:],
        result.stderr[-3000:],
    )
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python, lambda-keras script, empty work folder, environment, wheel)."""
    root = tmp_path_factory.mktemp("installed")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "LAMBDA_KERAS_REGISTRY", "VIRTUAL_ENV")
    }
    env.update(TF_CPP_MIN_LOG_LEVEL="3", KERAS_HOME=str(root / "keras_home"))
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", root / "dist",
         REPOSITORY],
        cwd=root, env=env,
    )  # fmt: skip
    (wheel,) = (root / "dist").glob("lambda_keras-*.whl")
    _run([sys.executable, "-m", "venv", root / "venv"], cwd=root, env=env)
    python = root / "venv" / "bin" / "python"
    _run(
        [python, "-m", "pip", "install", "-q", f"lambda_keras[hub] @ {wheel.as_uri()}"],
        cwd=root, env=env,
    )  # fmt: skip
    work = root / "work"
    work.mkdir()
    return python, root / "venv" / "bin" / "lambda-keras", work, env, wheel


@pytest.mark.slow
def test_wheel_requires_tensorflow_not_tensorflow_cpu_nor_tfds(installed):
    *_, wheel = installed
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith("dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(name).decode())
    requirements = metadata.get_all("Requires-Dist")
    base = [r for r in requirements if "extra ==" not in r]
    assert any(r.startswith("tensorflow>=") for r in base)
    assert not any(
        r.startswith(("tensorflow-cpu", "tensorflow-datasets")) for r in base
    )
    assert any(
        r.startswith("tensorflow-datasets") and "train" in r for r in requirements
    )


@pytest.mark.slow
def test_readme_first_command_runs_installed(installed):
    python, _, work, env, _ = installed
    output = _run([python, "-m", "lambda_keras"], cwd=work, env=env)
    for photo, label in (
        ("church", "church"),
        ("parachute", "parachute"),
        ("tench", "tench"),
    ):
        assert f"{photo}.jpg" in output and f"-> {label} (" in output
    assert "LambdaResNet50 (hybrid" in output


@pytest.mark.slow
def test_readme_first_command_runs_in_the_clone(installed):
    # `pip install . && python -m lambda_keras` in the clone: the source tree
    # shadows the installed package, whose registry is still found.
    python, _, _, env, _ = installed
    output = _run([python, "-m", "lambda_keras"], cwd=REPOSITORY, env=env)
    assert "LambdaResNet26Compact(weights='imagenette')" in output
    assert "-> tench (" in output


@pytest.mark.slow
def test_named_weights_load_offline_from_the_package(installed):
    python, _, work, env, _ = installed
    script = (
        "import lambda_keras, numpy as np\n"
        "from lambda_keras import weights\n"
        "assert 'site-packages' in lambda_keras.__file__, lambda_keras.__file__\n"
        "print(weights.DEFAULT_MANIFEST)\n"
        "m = lambda_keras.LambdaResNet26Cifar(weights='cifar10')\n"
        "n = lambda_keras.LambdaResNet26Compact(weights='imagenette')\n"
        "print(m.input_shape, n.input_shape)\n"
    )
    output = _run([python, "-c", script], cwd=work, env=env)
    assert "site-packages/lambda_keras/checkpoints/manifest.json" in output
    assert "(None, 32, 32, 3) (None, 80, 80, 3)" in output


@pytest.mark.slow
def test_export_and_predict_installed(installed):
    python, cli, work, env, _ = installed
    assert "lambda-keras 0." in _run([cli, "--version"], cwd=work, env=env)
    _run(
        [cli, "export", "--model", "LambdaResNet26Compact", "--weights", "imagenette",
         "--out", work / "served"],
        cwd=work, env=env,
    )  # fmt: skip
    photo = _run(
        [python, "-c", "from importlib.resources import files; "
         "print(files('lambda_keras') / 'sample_images' / 'tench.jpg')"],
        cwd=work, env=env,
    ).strip()  # fmt: skip
    output = _run(
        [cli, "predict", photo, "--saved-model", work / "served"], cwd=work, env=env
    )
    top = next(line for line in output.splitlines() if line.strip().startswith("1."))
    assert "tench" in top


@pytest.mark.slow
def test_keras_hub_presets_installed(installed):
    # A registry preset loads and classifies, saves as a keras-hub preset
    # folder and reloads through keras-hub's own class. (The README's
    # keras-hub examples, RetinaNet included, run in tests/hub.)
    python, _, work, env, _ = installed
    script = (
        "import keras, keras_hub, numpy as np\n"
        "from lambda_keras.hub import LambdaResNetImageClassifier\n"
        "from lambda_keras.preprocessing import sample_images\n"
        "classifier = LambdaResNetImageClassifier.from_preset("
        "'lambda_resnet26_compact.imagenette')\n"
        "photos = np.stack(\n"
        "    [np.array(keras.utils.load_img(p)) for p in sample_images()]\n"
        ")\n"
        "first = classifier.predict(photos, verbose=0)\n"
        "classifier.save_to_preset('preset')\n"
        "again = keras_hub.models.ImageClassifier.from_preset('preset')\n"
        "second = again.predict(photos, verbose=0)\n"
        "np.testing.assert_allclose(second, first, atol=1e-5)\n"
        "print('top-1', first.argmax(-1).tolist(), type(again).__name__)\n"
    )
    output = _run([python, "-c", script], cwd=work, env=env)
    # Imagenette class order: tench 0, church 4, parachute 9 (sample order).
    assert "top-1 [4, 9, 0] LambdaResNetImageClassifier" in output
