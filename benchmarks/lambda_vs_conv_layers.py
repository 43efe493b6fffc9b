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

Writes benchmarks/results/lambda_vs_conv_layers.json.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import interleaved_medians  # noqa: E402
from benchmarks.common import markdown_table
from benchmarks.common import tf_gradient_step  # noqa: E402
from benchmarks.common import write_report  # noqa: E402

# The models of `benchmarks.lambda_vs_conv` that timm has too.
MODELS = ("LambdaResNet26T", "LambdaResNet50TS")


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
        steps = {}
        for name, part in contenders.items():

            @tf.function
            def forward(x, part=part):
                return part(x, training=False)

            forward_backward = tf_gradient_step(part)
            steps[name, "inference"] = lambda f=forward, x=inputs: f(x).numpy()
            steps[name, "training"] = lambda f=forward_backward, x=inputs: [
                t.numpy() for t in f(x)
            ]
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=MODELS)
    args = parser.parse_args()
    if args.quick:
        args.size, args.batch, args.repeats = 64, 2, 1
        args.models = ["LambdaResNet26T"]

    results, rows = {}, []
    for model_name in args.models:
        results[model_name] = profile(model_name, args.size, args.batch, args.repeats)
        totals = {}
        for row in results[model_name]:
            s = row["seconds"]
            for key, value in s.items():
                totals[key] = totals.get(key, 0.0) + value
            rows.append(_row(model_name, row["block"], row["input"], row["stride"], s))
        rows.append(_row(model_name, "all lambda layers", None, None, totals))
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
    print(table)
    write_report(
        "lambda_vs_conv_layers",
        {
            "title": "Profile: lambda layers against the convolutions they replace",
            "quick": args.quick,
            "results": results,
            "markdown": summary + table,
        },
    )


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
