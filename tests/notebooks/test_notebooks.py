"""The Colab notebooks in notebooks/: stored stripped, with a Colab badge, an
install cell and the public API only (fast); and each one executed top to
bottom in small mode (`LAMBDA_KERAS_NOTEBOOK_SMALL=1`, slow).

    LAMBDA_KERAS_NOTEBOOK_SMALL=1 python -m pytest tests/notebooks --run-slow

The execution tests set the variable themselves; they need no network. Set
`LAMBDA_KERAS_DATA_DIR` to a folder of split/class/image files (e.g. the
unpacked Imagenette) for the fine-tuning and training notebooks; without it
they use `data/imagenette` of the checkout when present, else the CIFAR-10
photographs committed in tests/data.
"""

import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NAMES = (
    "01_quickstart.ipynb",
    "02_finetune.ipynb",
    "03_tpu_training.ipynb",
    "04_export_and_serve.ipynb",
    "05_lambda_layer_explained.ipynb",
)
REPO_URL = "https://github.com/lambda-keras/lambda_keras"
BADGE_URL = (
    "https://colab.research.google.com/github/lambda-keras/lambda_keras/"
    "blob/main/notebooks/{name}"
)
# What each notebook prints when its checks pass (the notebooks assert the
# numbers themselves; a failed assert is a cell error).
EXPECTED_OUTPUT = {
    "01_quickstart.ipynb": "top-1: ['church', 'parachute', 'tench']",
    "02_finetune.ipynb": "validation accuracy: ",
    "03_tpu_training.ipynb": "dtype policy: mixed_bfloat16",
    "04_export_and_serve.ipynb": "largest |TFLite - SavedModel| probability",
    "05_lambda_layer_explained.ipynb": "einsum vs lambda convolution",
}
# A `_name` of lambda_keras (dunders such as `__version__` are public).
PRIVATE_ACCESS = re.compile(r"\blambda_keras(?:\.\w+)*\._(?!_\w+__\b)")
FROM_IMPORT = re.compile(
    r"^\s*from\s+lambda_keras[\w.]*\s+import\s+(\([^)]*\)|.*)$", re.MULTILINE
)


def read(name):
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_the_five_notebooks_are_there():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == list(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_stored_stripped_and_valid(name):
    notebook = read(name)
    nbformat.validate(notebook)
    for cell in code_cells(notebook):
        assert cell.outputs == [], f"{name}: a code cell has outputs"
        assert cell.execution_count is None, f"{name}: an execution count"
    assert notebook.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", NAMES)
def test_colab_badge_and_install_cell(name):
    notebook = read(name)
    first = notebook.cells[0]
    assert first.cell_type == "markdown"
    assert first.source.startswith("# ")
    assert f"]({BADGE_URL.format(name=name)})" in first.source
    install = code_cells(notebook)[0].source
    assert 'if "google.colab" in sys.modules:' in install
    assert f'REPO_URL = "{REPO_URL}"' in install
    # The package, not a clone: it carries its registry and checkpoints.
    assert '%pip install -q "lambda_keras @ git+{REPO_URL}"' in install
    assert "git clone" not in install and "--no-deps" not in install
    assert 'os.environ.get("LAMBDA_KERAS_NOTEBOOK_SMALL") == "1"' in install


def _is_private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@pytest.mark.parametrize("name", NAMES)
def test_public_api_only(name):
    for cell in code_cells(read(name)):
        assert not PRIVATE_ACCESS.search(cell.source), cell.source
        for names in FROM_IMPORT.findall(cell.source):
            imported = re.findall(r"[A-Za-z_]\w*", names.replace(" as ", " "))
            private = [w for w in imported if _is_private(w)]
            assert not private, f"{name} imports {private}"


@pytest.mark.parametrize("name", NAMES)
def test_reads_no_file_of_the_checkout(name):
    # Installed from a wheel there is no checkout: data and reports are
    # downloaded or pointed at by environment variables.
    for cell in code_cells(read(name)):
        assert "../" not in cell.source and "tests/data" not in cell.source


def test_private_import_check_can_fail():
    assert PRIVATE_ACCESS.search("x = lambda_keras.train.trainer._train")
    assert PRIVATE_ACCESS.search("lambda_keras.weights.__cache")
    assert not PRIVATE_ACCESS.search("print(lambda_keras.__version__)")
    assert _is_private("_train") and not _is_private("__version__")
    source = "from lambda_keras.weights import (\n    _cache_dir,\n)"
    assert "_cache_dir" in FROM_IMPORT.findall(source)[0]


def test_readme_lists_every_notebook_with_its_badge():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in NAMES:
        assert f"]({BADGE_URL.format(name=name)})" in readme, name
    assert "LAMBDA_KERAS_NOTEBOOK_SMALL=1 python -m pytest tests/notebooks" in readme


def _kernel_environment(monkeypatch, tmp_path):
    """Small mode, outputs under tmp_path, and this checkout's lambda_keras
    (first on the path) on the TensorFlow backend."""
    pytest.importorskip("nbclient")
    monkeypatch.setenv("LAMBDA_KERAS_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("LAMBDA_KERAS_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), path])))
    # The notebooks read no file of the checkout: they are pointed at the
    # data (Imagenette when unpacked, else the committed CIFAR-10 photos)
    # and at the committed benchmark report.
    imagenette = ROOT / "data" / "imagenette"
    if not os.environ.get("LAMBDA_KERAS_DATA_DIR"):
        data = (
            imagenette if imagenette.is_dir() else ROOT / "tests" / "data" / "cifar10"
        )
        monkeypatch.setenv("LAMBDA_KERAS_DATA_DIR", str(data))
    monkeypatch.setenv(
        "LAMBDA_KERAS_LAYER_MEMORY",
        str(ROOT / "benchmarks" / "results" / "layer_memory.json"),
    )


def _execute(notebook):
    from nbclient import NotebookClient

    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    # A cell error raises CellExecutionError naming the cell and the error.
    client.execute()
    return notebook


@pytest.mark.slow
def test_kernel_runs_this_interpreter_and_checkout(monkeypatch, tmp_path):
    _kernel_environment(monkeypatch, tmp_path)
    cell = nbformat.v4.new_code_cell(
        "import json, sys, lambda_keras\n"
        "print(json.dumps([sys.executable, sys.prefix, lambda_keras.__file__]))"
    )
    notebook = _execute(nbformat.v4.new_notebook(cells=[cell]))
    executable, prefix, package = json.loads(notebook.cells[0].outputs[0]["text"])
    # The same virtual environment (a venv's python is a symlink to the base
    # interpreter, so the prefixes tell them apart, not the resolved paths).
    assert prefix == sys.prefix
    assert executable == sys.executable
    assert Path(package).resolve().is_relative_to(ROOT)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_in_small_mode(name, monkeypatch, tmp_path, capsys):
    _kernel_environment(monkeypatch, tmp_path)
    started = time.perf_counter()
    notebook = _execute(read(name))
    seconds = time.perf_counter() - started
    streams = "".join(
        output.get("text", "")
        for cell in code_cells(notebook)
        for output in cell.outputs
        if output.output_type == "stream"
    )
    assert EXPECTED_OUTPUT[name] in streams
    assert "small mode (CI)" in streams
    plots = [
        output
        for cell in code_cells(notebook)
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    assert plots, f"{name} drew no plot"
    with capsys.disabled():
        print(f"\n{name}: executed in {seconds:.1f} s (small mode)")
