"""The variant table is the one source of the named models."""

import inspect

import pytest

import lambda_keras
from lambda_keras import applications
from lambda_keras.__main__ import main
from lambda_keras.applications.variants import MODELS
from lambda_keras.applications.variants import TIMM_MODELS
from lambda_keras.applications.variants import VARIANTS

# keras.applications.ResNet50's arguments, in order, then ours.
KERAS_APPLICATIONS_ARGUMENTS = [
    "include_top",
    "weights",
    "input_tensor",
    "input_shape",
    "pooling",
    "classes",
    "classifier_activation",
]


def test_every_row_is_a_documented_constructor_exported_everywhere():
    names = [variant.name for variant in VARIANTS]
    assert len(set(names)) == len(names) == 12
    assert list(MODELS) == names
    for variant in VARIANTS:
        constructor = getattr(lambda_keras, variant.name)
        assert constructor is getattr(applications, variant.name)
        assert constructor is MODELS[variant.name]
        assert variant.name in lambda_keras.__all__
        assert variant.name in applications.__all__
        assert constructor.__name__ == variant.name
        assert constructor.__module__ == "lambda_keras.applications"
        parameters = inspect.signature(constructor).parameters
        assert list(parameters)[:7] == KERAS_APPLICATIONS_ARGUMENTS
        assert parameters["classes"].default == variant.default_classes
        assert parameters["name"].default == variant.model_name
        doc = inspect.getdoc(constructor)
        assert doc.startswith(f"Instantiates {variant.name}.")
        size = variant.default_size
        assert f"default input {size}x{size}" in " ".join(doc.split())
        assert "Args:" in doc and "Returns:" in doc


def test_timm_rows_are_timm_names():
    assert {name: c.variant.timm_name for name, c in TIMM_MODELS.items()} == {
        "LambdaResNet26T": "lambda_resnet26t",
        "LambdaResNet50TS": "lambda_resnet50ts",
        "LambdaResNet26RPT256": "lambda_resnet26rpt_256",
    }


@pytest.mark.parametrize(
    "command, names",
    [
        ("train", MODELS),
        ("evaluate", MODELS),
        ("export", MODELS),
        ("predict", MODELS),
        ("convert-timm", TIMM_MODELS),
    ],
)
def test_command_line_model_choices_come_from_the_table(command, names, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--model", "NoSuchModel"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "invalid choice: 'NoSuchModel'" in error
    for name in names:
        assert f"'{name}'" in error
    others = set(MODELS) - set(names)
    assert not any(f"'{name}'" in error for name in others)
