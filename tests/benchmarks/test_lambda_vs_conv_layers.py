"""benchmarks.lambda_vs_conv_layers times each lambda layer of a model
against the convolution its twin has in the same block."""

import json

import pytest

from benchmarks import lambda_vs_conv_layers
from lambda_keras.applications import LambdaResNet26T
from lambda_keras.layers import LambdaLayer


@pytest.mark.slow
def test_profile_has_a_row_per_lambda_layer():
    rows = lambda_vs_conv_layers.profile("LambdaResNet26T", size=64, batch=2, repeats=1)
    model = LambdaResNet26T(weights=None, input_shape=(64, 64, 3))
    lambdas = [layer for layer in model.layers if isinstance(layer, LambdaLayer)]
    assert [row["block"] for row in rows] == [
        layer.name.removesuffix("_lambda") for layer in lambdas
    ]
    assert [row["stride"] for row in rows] == [layer.strides for layer in lambdas]
    for row in rows:
        assert set(row["seconds"]) == {
            f"{part}/{task}"
            for part in ("lambda", "conv")
            for task in ("inference", "training")
        }
        assert all(seconds > 0 for seconds in row["seconds"].values())


@pytest.mark.slow
def test_stand_ins_leave_the_rest_of_both_networks_alike():
    networks = lambda_vs_conv_layers.stand_in_networks("LambdaResNet26T", size=64)
    assert tuple(networks) == lambda_vs_conv_layers.NETWORKS
    lambdas = [
        layer.name.removesuffix("_lambda")
        for layer in networks["lambda"].layers
        if isinstance(layer, LambdaLayer)
    ]
    names = {name: {layer.name for layer in networks[name].layers} for name in networks}
    assert not any(
        isinstance(layer, LambdaLayer) for layer in networks["lambda, stand-ins"].layers
    )
    assert {f"{block}_conv2" for block in lambdas} <= names["twin"]
    assert not {f"{block}_conv2" for block in lambdas} & names["twin, stand-ins"]
    # What is left is the same network: the same weights, the same shapes.
    rest = [networks["lambda, stand-ins"], networks["twin, stand-ins"]]
    assert rest[0].count_params() == rest[1].count_params()
    assert [tuple(w.shape) for w in rest[0].weights] == [
        tuple(w.shape) for w in rest[1].weights
    ]
    for network in networks.values():
        assert network.output.shape == networks["lambda"].output.shape


@pytest.mark.slow
def test_in_network_times_every_network_in_a_worker_of_its_backend():
    # PyTorch eager: a worker of another backend than the tests' own, stepped
    # as benchmarks.lambda_vs_conv steps it.
    seconds = lambda_vs_conv_layers.in_network(
        "PyTorch eager", "LambdaResNet26T", size=64, batch=2, repeats=1
    )
    assert seconds.pop("status") == "ok"
    assert set(seconds) == {
        f"{network}/{task}"
        for network in lambda_vs_conv_layers.NETWORKS
        for task in ("inference", "training")
    }
    assert all(value > 0 for value in seconds.values())


def test_cells_to_profile_are_the_missed_ones_of_the_models_and_modes(
    tmp_path, monkeypatch
):
    def seconds(training):
        return {
            "status": "ok",
            "lambda inference": [1.0],
            "twin inference": [1.2],
            "lambda training": [1.0],
            "twin training": [training],
        }

    report = {
        "results": [
            {"model": model, "mode": mode, "seconds": seconds(0.9)}
            for model in ("LambdaResNet26T", "LambdaResNet50")
            for mode in ("TF graph", "PyTorch eager")
        ]
    }
    (tmp_path / "lambda_vs_conv.json").write_text(json.dumps(report))
    monkeypatch.setattr(lambda_vs_conv_layers, "RESULTS", tmp_path)
    # LambdaResNet50 is not one of the profiled models, JAX had no miss.
    assert lambda_vs_conv_layers.cells_to_profile(
        "missed", ("LambdaResNet26T",), ("TF graph", "JAX jit")
    ) == {"LambdaResNet26T": {"TF graph": ["training"]}}
    assert lambda_vs_conv_layers.cells_to_profile(
        "all", ("LambdaResNet26T",), ("JAX jit",)
    ) == {"LambdaResNet26T": {"JAX jit": ["inference", "training"]}}


def test_cells_missed_without_the_report_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(lambda_vs_conv_layers, "RESULTS", tmp_path)
    monkeypatch.setattr("sys.argv", ["lambda_vs_conv_layers"])
    with pytest.raises(SystemExit) as stop:
        lambda_vs_conv_layers.main()
    assert stop.value.code == 2
