"""The keras-hub extra: `lambda_keras.hub` alone imports keras-hub, and says
how to install it when it is missing. These tests need no keras-hub."""

import importlib
import pathlib
import re
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "lambda_keras"


def test_a_missing_keras_hub_names_the_extra(monkeypatch):
    for name in [name for name in sys.modules if name.startswith("lambda_keras.hub")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "keras_hub", None)  # import fails
    with pytest.raises(ImportError, match=r'pip install "lambda_keras\[hub\]"') as info:
        importlib.import_module("lambda_keras.hub")
    assert "lambda_keras.hub needs the package 'keras_hub'" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_only_lambda_keras_hub_imports_keras_hub():
    importers = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if re.search(r"^\s*(import|from) keras_hub", path.read_text("utf-8"), re.M)
        and path.parent.name != "hub"
    ]
    assert importers == []
