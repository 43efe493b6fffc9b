"""The README's keras-hub examples (its "## keras-hub" section) run."""

import pathlib

import pytest

keras_hub = pytest.importorskip("keras_hub")

from readme_sections import python_blocks  # noqa: E402
from readme_sections import section  # noqa: E402

README = pathlib.Path(__file__).parents[2] / "README.md"
HEADING = "## keras-hub"


def _examples():
    text = section(README.read_text(encoding="utf-8"), HEADING)
    assert text is not None, f"README.md has no {HEADING!r} section"
    return python_blocks(text)


def test_the_readme_has_keras_hub_examples():
    assert len(_examples()) == 3


@pytest.mark.slow
def test_the_readme_keras_hub_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the examples write their preset
    namespace = {}
    for block in _examples():
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
    assert namespace["labels"] == ["church", "parachute", "tench"]
    assert type(namespace["reloaded"]).__name__ == "LambdaResNetImageClassifier"
    assert namespace["detections"]["boxes"].shape[::2] == (3, 4)
