"""Where the lambda convolution overtakes the einsum on this machine.

    python -m benchmarks.implementation_crossover           # about 5 minutes
    python -m benchmarks.implementation_crossover --quick   # 3 sizes

Times a local-scope `LambdaLayer` (training mode, forward and
forward+backward, TensorFlow backend, in a `tf.function`) with
`implementation="einsum"` (masked relative embeddings, Eq. 4) and
`implementation="conv"` (the lambda convolution, Eq. 3), alternately, from
7x7 to 56x56 inputs, for the scopes 9 (timm) and 23 (the paper) and value
depths |v| of 16 and 64. The paper switches to the convolution above 85^2
positions (on TPUs); `LambdaLayer(implementation="auto")` instead compares
the multiply-adds of the two (`lambda_keras.ops.position_costs`) with the
ratio measured here, printed at the end as `lambda_keras.ops.CONV_COST_RATIO`:
the einsum is used while its cost is below that many times the
convolution's.
"""

import argparse
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import interleaved_medians  # noqa: E402
from benchmarks.common import markdown_table
from benchmarks.common import tf_gradient_step  # noqa: E402
from benchmarks.common import write_report  # noqa: E402

SIZES = (7, 10, 14, 20, 28, 40, 56)
SCOPES = (9, 23)
CHANNELS = (64, 256)  # |v| = 16, 64 with 4 heads
BATCH = 8
PASSES = ("forward", "forward+backward")


def time_implementations(size, scope, channels, repeats):
    import numpy as np
    import tensorflow as tf

    from lambda_keras.layers import LambdaLayer

    images = tf.constant(
        np.random.default_rng(0).standard_normal((BATCH, size, size, channels)),
        dtype="float32",
    )
    steps = {}
    for implementation in ("einsum", "conv"):
        layer = LambdaLayer(scope=scope, implementation=implementation)
        layer.build(images.shape)

        @tf.function
        def forward(x, layer=layer):
            return layer(x, training=True)

        forward_backward = tf_gradient_step(layer)
        steps[implementation, "forward"] = lambda f=forward: f(images).numpy()
        steps[implementation, "forward+backward"] = lambda f=forward_backward: [
            t.numpy() for t in f(images)
        ]
    medians = interleaved_medians(steps, repeats=repeats)
    return {f"{impl}/{mode}": seconds for (impl, mode), seconds in medians.items()}


def find_crossovers(results):
    """Cost ratios where the einsum/conv time ratio crosses 1, per series.

    For each (scope, channels) series ordered by input size, interpolates
    log(time ratio) against log(cost ratio) between the two sizes where the
    time ratio crosses 1.
    """
    crossovers = []
    series = {}
    for result in results:
        series.setdefault((result["scope"], result["channels"]), []).append(result)
    for points in series.values():
        points.sort(key=lambda result: result["size"])
        logs = [
            (
                math.log(r["cost_ratio_einsum_to_conv"]),
                math.log(r["seconds"]["einsum/forward+backward"])
                - math.log(r["seconds"]["conv/forward+backward"]),
            )
            for r in points
        ]
        for (cost_a, time_a), (cost_b, time_b) in zip(logs, logs[1:]):
            if time_a <= 0 < time_b:
                fraction = -time_a / (time_b - time_a)
                crossovers.append(math.exp(cost_a + fraction * (cost_b - cost_a)))
                break
    return crossovers


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 sizes, scope 23")
    args = parser.parse_args(argv)

    from lambda_keras.ops import position_costs
    from lambda_keras.ops import position_method

    sizes, scopes = (SIZES[::3], SCOPES[1:]) if args.quick else (SIZES, SCOPES)
    rows, results = [], []
    for scope in scopes:
        for channels in CHANNELS:
            for size in sizes:
                seconds = time_implementations(size, scope, channels, args.repeats)
                depths = {"heads": 4, "dim_k": 16, "dim_v": channels // 4}
                costs = position_costs((size, size), scope=scope, **depths)
                einsum = position_method(
                    (size, size), scope=scope, implementation="einsum", **depths
                )
                cost_ratio = costs[einsum] / costs["convolution"]
                result = {
                    "size": size,
                    "scope": scope,
                    "channels": channels,
                    "batch": BATCH,
                    "seconds": seconds,
                    "cost_ratio_einsum_to_conv": cost_ratio,
                }
                results.append(result)
                time_ratio = (
                    seconds["einsum/forward+backward"]
                    / seconds["conv/forward+backward"]
                )
                row = [
                    f"{size}x{size}",
                    scope,
                    channels // 4,
                    *(
                        f"{1000 * seconds[f'{impl}/{mode}']:.1f}"
                        for impl in ("einsum", "conv")
                        for mode in PASSES
                    ),
                    f"{time_ratio:.2f}",
                    f"{cost_ratio:.2f}",
                ]
                rows.append(row)
                print(" | ".join(str(cell) for cell in row), flush=True)

    crossovers = find_crossovers(results)
    if not crossovers:
        raise SystemExit("No crossover in the measured sizes; add larger sizes.")
    ratio = math.exp(sum(math.log(c) for c in crossovers) / len(crossovers))
    headers = [
        "input",
        "scope",
        "|v|",
        "einsum fwd ms",
        "einsum fwd+bwd ms",
        "conv fwd ms",
        "conv fwd+bwd ms",
        "time einsum/conv (fwd+bwd)",
        "cost einsum/conv",
    ]
    table = markdown_table(headers, rows)
    summary = (
        f"Batch {BATCH}, 4 heads, |k| = 16, |u| = 1, training mode. The "
        "forward+backward times cross where the einsum needs "
        + ", ".join(f"{c:.1f}" for c in crossovers)
        + " times the convolution's multiply-adds (one crossing per scope "
        f"and |v|, interpolated); their geometric mean {ratio:.1f} is "
        "`CONV_COST_RATIO` in `lambda_keras/ops/costs.py`."
    )
    print()
    print(table)
    print()
    print(summary)
    write_report(
        "implementation_crossover",
        {
            "title": "Einsum vs lambda convolution: the crossover",
            "markdown": table + "\n\n" + summary,
            "conv_cost_ratio": ratio,
            "crossovers": crossovers,
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
