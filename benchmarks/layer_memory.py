"""Peak memory and time of LambdaLayer against attention and a convolution.

Reproduces the trend of the paper's Tables 2 and 4: attention stores a
(b, h, n, n) map per example, the lambda layer only (k, n, m) position
embeddings shared by the batch (global einsum), or nothing quadratic at all
(lambda convolution), and a 3x3 convolution is the baseline the paper's
LambdaResNets replace.

Each (contender, size, pass) runs in a fresh worker process on the
TensorFlow backend: peak memory is the worker's peak resident set size above
its resident size just before the first call, so it counts everything the
layer allocates; time is the median of `--repeats` calls (1 by default)
after a warm-up, in a `tf.function`. A worker that grows past
`--memory-cap-gib` is stopped and reported as out of memory. Contenders
are interleaved size by size.

    python -m benchmarks.layer_memory            # full table
    python -m benchmarks.layer_memory --quick    # 16x16 and 32x32 only

Writes benchmarks/results/layer_memory.json and prints a Markdown table.
"""

import argparse
import json
import os
import resource
import statistics
import time

from benchmarks.common import markdown_table
from benchmarks.common import rss_bytes
from benchmarks.common import run_worker
from benchmarks.common import write_report

CONTENDERS = {
    "attention": "keras.layers.MultiHeadAttention over the flattened pixels",
    "lambda-global": "LambdaLayer, global context, einsum",
    "lambda-conv23": "LambdaLayer, 23x23 scope, lambda convolution",
    "conv3x3": "keras.layers.Conv2D, 3x3 kernel, same channels",
}
SIZES = {
    "attention": (16, 32, 64, 128),
    "lambda-global": (16, 32, 64, 128),
    "lambda-conv23": (16, 32, 64, 128, 256),
    "conv3x3": (16, 32, 64, 128, 256),
}
PASSES = ("forward", "forward+backward")


def worker(contender, size, mode, batch, channels, heads, dim_k, repeats):
    """Runs one measurement and prints it as JSON on the last line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import tensorflow as tf

    from lambda_keras.layers import LambdaLayer

    keras.utils.set_random_seed(0)
    images = tf.constant(
        np.random.default_rng(0).standard_normal((batch, size, size, channels)),
        dtype="float32",
    )
    if contender == "attention":
        attention = keras.layers.MultiHeadAttention(
            num_heads=heads, key_dim=dim_k, value_dim=channels // heads
        )

        def layer(x, training=True):
            flat = tf.reshape(x, (batch, size * size, channels))
            return attention(flat, flat, training=training)

        weights = lambda: attention.trainable_weights  # noqa: E731
    elif contender == "conv3x3":
        layer = keras.layers.Conv2D(channels, 3, padding="same")
        weights = lambda: layer.trainable_weights  # noqa: E731
    else:
        scope = None if contender == "lambda-global" else 23
        lambda_layer = LambdaLayer(
            dim_k=dim_k,
            heads=heads,
            scope=scope,
            implementation="einsum" if scope is None else "conv",
        )
        layer = lambda_layer
        weights = lambda: lambda_layer.trainable_weights  # noqa: E731

    @tf.function
    def forward(x):
        return tf.reduce_sum(layer(x, training=True))

    @tf.function
    def forward_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True))
        gradients = tape.gradient(loss, [x] + weights())
        return [tf.convert_to_tensor(gradient) for gradient in gradients]

    step = forward if mode == "forward" else forward_backward
    baseline = rss_bytes()
    start = time.perf_counter()
    tf.nest.map_structure(lambda t: t.numpy(), step(images))  # trace + warm-up
    first = time.perf_counter() - start
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), step(images))
        timings.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "peak_bytes": max(peak - baseline, 0),
                "median_seconds": statistics.median(timings),
                "first_call_seconds": first,
            }
        )
    )


def measure(contender, size, mode, args):
    return run_worker(
        "benchmarks.layer_memory",
        [
            "--worker",
            contender,
            str(size),
            mode,
            f"--batch={args.batch}",
            f"--channels={args.channels}",
            f"--heads={args.heads}",
            f"--dim-k={args.dim_k}",
            f"--repeats={args.repeats}",
        ],
        memory_cap_gib=args.memory_cap_gib,
    )


def _format_cell(result):
    if result["status"] != "ok":
        if result["status"] == "out of memory":
            return "OOM"
        return "error"
    megabytes = result["peak_bytes"] / 2**20
    return f"{megabytes:,.0f} MiB / {1000 * result['median_seconds']:,.0f} ms"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", nargs=3, metavar=("CONTENDER", "SIZE", "PASS"))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--dim-k", type=int, default=16)
    # Timed calls after the first (the peak is the first call's); one is
    # enough beside a memory figure and saves minutes at the large sizes.
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--memory-cap-gib", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="16x16 and 32x32 only")
    parser.add_argument("--sizes", type=int, nargs="+", help="only these input sizes")
    parser.add_argument(
        "--name",
        default="layer_memory",
        help="the report's name: benchmarks/results/NAME.json",
    )
    args = parser.parse_args(argv)
    if args.worker:
        contender, size, mode = args.worker
        worker(
            contender,
            int(size),
            mode,
            args.batch,
            args.channels,
            args.heads,
            args.dim_k,
            args.repeats,
        )
        return

    sizes = sorted({s for sizes in SIZES.values() for s in sizes})
    if args.quick:
        sizes = [s for s in sizes if s <= 32]
    if args.sizes:
        sizes = [s for s in sizes if s in args.sizes]
    results = []
    for size in sizes:
        for mode in PASSES:
            for contender in CONTENDERS:
                if size not in SIZES[contender]:
                    continue
                result = measure(contender, size, mode, args)
                result.update(contender=contender, size=size, mode=mode)
                results.append(result)
                print(
                    f"{contender:14s} {size:4d}x{size:<4d} {mode:17s} "
                    f"{_format_cell(result)}",
                    flush=True,
                )
    title = (
        f"Peak memory / time per call after a warm-up (median of "
        f"{args.repeats}), batch {args.batch}, {args.channels} "
        f"channels, {args.heads} heads, |k|={args.dim_k} (OOM: over "
        f"{args.memory_cap_gib:g} GiB)"
    )
    rows = []
    for size in sizes:
        for mode in PASSES:
            cells = []
            for contender in CONTENDERS:
                match = [
                    r
                    for r in results
                    if (r["contender"], r["size"], r["mode"]) == (contender, size, mode)
                ]
                cells.append(_format_cell(match[0]) if match else "-")
            rows.append([f"{size}x{size}", mode, *cells])
    table = markdown_table(["input", "pass", *CONTENDERS], rows)
    verdicts = []
    for mode in PASSES:
        at_64 = {
            r["contender"]: r
            for r in results
            if r["size"] == 64 and r["mode"] == mode and r["status"] == "ok"
        }
        if "attention" in at_64 and "lambda-conv23" in at_64:
            ratio = (
                at_64["lambda-conv23"]["peak_bytes"] / at_64["attention"]["peak_bytes"]
            )
            verdicts.append(
                f"At 64x64 ({mode}) the lambda layer (23x23 scope) uses "
                f"{ratio:.3f} of attention's peak memory (target <= 0.1: "
                f"{'met' if ratio <= 0.1 else 'missed'})."
            )
    markdown = "\n\n".join([title + ":", table, *verdicts])
    print()
    print(markdown)
    write_report(
        args.name,
        {
            "title": "Lambda layer vs attention vs convolution: memory and time",
            "markdown": markdown,
            "setup": {
                "batch": args.batch,
                "channels": args.channels,
                "heads": args.heads,
                "dim_k": args.dim_k,
                "repeats": args.repeats,
                "memory_cap_gib": args.memory_cap_gib,
                "peak": "peak RSS of a fresh worker above its RSS before the "
                "first call",
            },
            "contenders": CONTENDERS,
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
