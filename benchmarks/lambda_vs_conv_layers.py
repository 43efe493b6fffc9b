"""Where a lambda network's time goes against its twin's, layer by layer.

    python -m benchmarks.lambda_vs_conv_layers          # 128 px, batch 16
    python -m benchmarks.lambda_vs_conv_layers --quick  # 64 px, batch 2

The profile behind `benchmarks.lambda_vs_conv`: for each lambda layer of
the model (TensorFlow graph mode, the configuration of that benchmark), the
layer alone on its own input (a sub-model from its input to its output,
its strided average pool included) against the 3x3 convolution its
convolutional twin has in the same block (`Conv2D(width, 3, strides)`,
strided where the block is), timed alternately, inference (forward) and
training (forward and backward). A strided lambda block computes its
lambda layer at the input's resolution and pools afterwards (the paper's
and timm's design), where the twin's strided convolution computes at the
output's: the rows include both.

Then the same layers in the network, for each model, backend and mode, and
task of `benchmarks.lambda_vs_conv` whose ratio missed its target there
(`--cells missed`, from benchmarks/results/lambda_vs_conv.json, so run that
benchmark first; `--cells all` for every one), one worker process per mode,
compiled and stepped as that benchmark does (`predict_on_batch`, and
`train_on_batch` with SGD): the lambda network and its twin, whole, and
each again with those layers replaced by a stand-in (their strided average
pool where the block is strided, else nothing), all four timed alternately
in rounds of each task's own (`lambda_vs_conv.task_timings`). A network's time less
its stand-in version's is what the layers cost in it; the stand-in versions
are what the rest costs. Where the two sums disagree with the layers alone,
the network's ratio is decided outside what the layers cost on their own.

Writes benchmarks/results/lambda_vs_conv_layers.json.
"""

import argparse
import json
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import RESULTS  # noqa: E402
from benchmarks.common import interleaved_medians  # noqa: E402
from benchmarks.common import markdown_table  # noqa: E402
from benchmarks.common import run_backend_worker  # noqa: E402
from benchmarks.common import tf_gradient_step  # noqa: E402
from benchmarks.common import write_report  # noqa: E402
from benchmarks.lambda_vs_conv import MODES  # noqa: E402
from benchmarks.lambda_vs_conv import TASKS  # noqa: E402
from benchmarks.lambda_vs_conv import TWIN_PLACEMENT  # noqa: E402
from benchmarks.lambda_vs_conv import keras_steps  # noqa: E402
from benchmarks.lambda_vs_conv import missed_cells  # noqa: E402
from benchmarks.lambda_vs_conv import task_timings  # noqa: E402

# The models of `benchmarks.lambda_vs_conv` that timm has too.
MODELS = ("LambdaResNet26T", "LambdaResNet50TS")
NETWORKS = ("lambda", "lambda, stand-ins", "twin", "twin, stand-ins")


def _timed_steps(part, inputs):
    """name -> callable for inference (forward) and training (forward and
    backward) of a layer or network, in TensorFlow graph mode."""
    import tensorflow as tf

    @tf.function
    def forward(x):
        return part(x, training=False)

    forward_backward = tf_gradient_step(part)
    return {
        "inference": lambda: forward(inputs).numpy(),
        "training": lambda: [t.numpy() for t in forward_backward(inputs)],
    }


def profile(model_name, size, batch, repeats):
    """Rows of (block, input shape, stride, 4 times) for one model."""
    import keras
    import numpy as np
    import tensorflow as tf

    from lambda_keras.applications import MODELS as CONSTRUCTORS
    from lambda_keras.layers import LambdaLayer

    keras.utils.set_random_seed(0)
    model = CONSTRUCTORS[model_name](weights=None, input_shape=(size, size, 3))
    rng = np.random.default_rng(0)
    rows = []
    for layer in model.layers:
        if not isinstance(layer, LambdaLayer):
            continue
        shape = (batch, *layer.input.shape[1:])
        inputs = tf.constant(rng.standard_normal(shape), tf.float32)
        stride = layer.strides
        contenders = {
            "lambda": keras.Model(layer.input, layer.output),
            "conv": keras.Sequential(
                [
                    keras.Input(shape[1:]),
                    keras.layers.Conv2D(
                        layer.filters, 3, strides=stride, padding="same", use_bias=False
                    ),
                ]
            ),
        }
        steps = {
            (name, task): step
            for name, part in contenders.items()
            for task, step in _timed_steps(part, inputs).items()
        }
        seconds = interleaved_medians(steps, repeats=repeats, warmup=1)
        rows.append(
            {
                "block": layer.name.removesuffix("_lambda"),
                "input": list(shape[1:]),
                "stride": stride,
                "seconds": {f"{n}/{p}": s for (n, p), s in seconds.items()},
            }
        )
        print(model_name, rows[-1], flush=True)
    return rows


def stand_in_networks(model_name, size):
    """The lambda network, its twin and both with the compared layers (the
    lambda layers, the twin's 3x3 convolutions in the same blocks) replaced
    by stand-ins: a dict keyed by `NETWORKS`."""
    import keras

    from lambda_keras.applications import MODELS as CONSTRUCTORS
    from lambda_keras.layers import LambdaLayer

    class StandIn(keras.layers.Layer):
        """What is left of a replaced layer: its strided pool, or nothing."""

        def __init__(self, pool=None, **kwargs):
            super().__init__(**kwargs)
            self.pool = pool

        def call(self, inputs, position_embeddings=None):
            return inputs if self.pool is None else self.pool(inputs)

    def stand_in(layer):
        if layer.name not in replaced:
            return layer.__class__.from_config(layer.get_config())
        if isinstance(layer, LambdaLayer):
            pool = getattr(layer, "downsample", None)
            return StandIn(pool and pool.__class__.from_config(pool.get_config()))
        # The twin's 3x3 convolution (after its padding where it has one):
        # a pool of the same window, strides and padding keeps its shape.
        strided = layer.strides[0] > 1
        return StandIn(
            keras.layers.AveragePooling2D(
                layer.kernel_size, layer.strides, padding=layer.padding
            )
            if strided
            else None
        )

    keras.utils.set_random_seed(0)
    build = CONSTRUCTORS[model_name]
    shape = (size, size, 3)
    networks = {
        "lambda": build(weights=None, input_shape=shape),
        "twin": build(weights=None, input_shape=shape, placement=TWIN_PLACEMENT),
    }
    blocks = [
        layer.name.removesuffix("_lambda")
        for layer in networks["lambda"].layers
        if isinstance(layer, LambdaLayer)
    ]
    replaced = {f"{block}_lambda" for block in blocks}
    replaced |= {f"{block}_conv2" for block in blocks}
    for name in ("lambda", "twin"):
        networks[f"{name}, stand-ins"] = keras.models.clone_model(
            networks[name], clone_function=stand_in
        )
    return {name: networks[name] for name in NETWORKS}


def network_worker(mode, model_name, size, batch, repeats, tasks):
    """Median seconds per step of each of `stand_in_networks` for `tasks`,
    compiled and stepped as `benchmarks.lambda_vs_conv` does for `mode`;
    prints JSON "network/task" -> seconds."""
    import keras

    keras.utils.set_random_seed(0)
    steps = keras_steps(stand_in_networks(model_name, size), mode, size, batch)
    timings = task_timings(steps, repeats, tasks)
    print(
        json.dumps(
            {
                "/".join(name.rsplit(" ", 1)): statistics.median(seconds)
                for name, seconds in timings.items()
            }
        )
    )


def in_network(mode, model_name, size, batch, repeats, tasks=TASKS):
    """`network_worker`'s seconds, from a worker with `mode`'s backend."""
    result = run_backend_worker(
        "benchmarks.lambda_vs_conv_layers",
        MODES[mode][0],
        [mode, model_name, size, batch, repeats, list(tasks)],
    )
    print(model_name, mode, tasks, result, flush=True)
    return result


def cells_to_profile(which, models, modes):
    """model -> mode -> tasks to time in the network: every one (`which` =
    "all") or those lambda_vs_conv.json reports missing the target."""
    if which == "all":
        cells = [(m, mode, task) for m in models for mode in modes for task in TASKS]
    else:
        report = json.loads((RESULTS / "lambda_vs_conv.json").read_text("utf-8"))
        cells = missed_cells(report)
    chosen = {}
    for model_name, mode, task in cells:
        if model_name in models and mode in modes:
            chosen.setdefault(model_name, {}).setdefault(mode, []).append(task)
    return chosen


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=MODELS)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument(
        "--cells",
        choices=("missed", "all"),
        default="missed",
        help="the model/mode/task cells to time in the network: those "
        "benchmarks/results/lambda_vs_conv.json misses (default) or all",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.size, args.batch, args.repeats = 64, 2, 1
        args.models, args.cells = ["LambdaResNet26T"], "all"
    if args.worker:
        network_worker(*json.loads(args.worker))
        return
    try:
        cells = cells_to_profile(args.cells, args.models, args.modes)
    except (OSError, ValueError, KeyError) as error:
        parser.error(
            "--cells missed reads benchmarks/results/lambda_vs_conv.json "
            f"(run python -m benchmarks.lambda_vs_conv first): {error}"
        )

    results, rows, network_rows = {}, [], []
    for model_name in args.models:
        layers = profile(model_name, args.size, args.batch, args.repeats)
        totals = {}
        for row in layers:
            s = row["seconds"]
            for key, value in s.items():
                totals[key] = totals.get(key, 0.0) + value
            rows.append(_row(model_name, row["block"], row["input"], row["stride"], s))
        rows.append(_row(model_name, "all lambda layers", None, None, totals))
        tasks_by_mode = cells.get(model_name, {})
        networks = {
            mode: in_network(
                mode, model_name, args.size, args.batch, args.repeats, tasks
            )
            for mode, tasks in tasks_by_mode.items()
        }
        results[model_name] = {"layers": layers, "networks": networks}
        network_rows += [
            _network_row(model_name, mode, task, networks[mode], totals)
            for mode, tasks in tasks_by_mode.items()
            for task in tasks
        ]
    table = markdown_table(
        [
            "model",
            "block",
            "input",
            "stride",
            "lambda ms (inference)",
            "twin's conv ms (inference)",
            "conv / lambda (inference)",
            "lambda ms (training)",
            "twin's conv ms (training)",
            "conv / lambda (training)",
        ],
        rows,
    )
    summary = (
        f"TensorFlow graph mode, {args.size} px, batch {args.batch}, float32: "
        "each lambda layer alone (with its strided average pool) against the "
        "3x3 convolution of its twin's block, forward (inference) and forward "
        "and backward (training); above 1, the lambda layer is the cheaper.\n\n"
    )
    network_table = markdown_table(
        [
            "model",
            "mode",
            "task",
            "lambda network ms",
            "twin ms",
            "lambda / twin images/s",
            "lambda layers: in the network ms (alone)",
            "twin's convs: in the network ms (alone)",
            "rest of the lambda network ms",
            "rest of the twin ms",
        ],
        network_rows,
    )
    cells_named = (
        "every model, mode and task"
        if args.cells == "all"
        else "each model, mode and task whose ratio missed its target in "
        "`benchmarks.lambda_vs_conv` (none: no rows)"
    )
    network_summary = (
        f"\n\nThe same layers in the network, for {cells_named}, stepped as "
        "that benchmark steps them (`predict_on_batch`; `train_on_batch`, a "
        "full SGD step): each network whole and with those layers replaced "
        "by stand-ins (their strided pool), timed alternately in one worker "
        "per mode; in the network = whole less stand-ins, (alone) = the sums "
        "above (TensorFlow graph only), rest = the stand-in version.\n\n"
    )
    print(table)
    print(network_table)
    write_report(
        "lambda_vs_conv_layers",
        {
            "title": "Profile: lambda layers against the convolutions they replace",
            "quick": args.quick,
            "results": results,
            "markdown": summary + table + network_summary + network_table,
        },
    )


def _network_row(model_name, mode, task, seconds, alone):
    def ms(value):
        return f"{1000 * value:.1f}"

    if seconds.get("status") != "ok":
        return [model_name, mode, task, seconds.get("status"), *[""] * 6]
    whole = {name: seconds[f"{name}/{task}"] for name in NETWORKS}
    # The layers alone are timed in TensorFlow graph mode only.
    graph = mode == "TF graph"
    return [
        model_name,
        mode,
        task,
        ms(whole["lambda"]),
        ms(whole["twin"]),
        f"{whole['twin'] / whole['lambda']:.2f}",
        ms(whole["lambda"] - whole["lambda, stand-ins"])
        + (f" ({ms(alone[f'lambda/{task}'])})" if graph else ""),
        ms(whole["twin"] - whole["twin, stand-ins"])
        + (f" ({ms(alone[f'conv/{task}'])})" if graph else ""),
        ms(whole["lambda, stand-ins"]),
        ms(whole["twin, stand-ins"]),
    ]


def _row(model_name, block, shape, stride, seconds):
    def ms(key):
        return f"{1000 * seconds[key]:.1f}"

    def ratio(task):
        return f"{seconds[f'conv/{task}'] / seconds[f'lambda/{task}']:.2f}"

    return [
        model_name,
        block,
        "" if shape is None else "x".join(map(str, shape)),
        "" if stride is None else stride,
        ms("lambda/inference"),
        ms("conv/inference"),
        ratio("inference"),
        ms("lambda/training"),
        ms("conv/training"),
        ratio("training"),
    ]


if __name__ == "__main__":
    sys.exit(main())
