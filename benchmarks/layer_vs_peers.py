"""Our LambdaLayer against timm's and lucidrains' (PyTorch), same work.

    python -m benchmarks.layer_vs_peers            # about 10 minutes
    python -m benchmarks.layer_vs_peers --quick    # c5 shape, scope 23 only

Shapes: the c4 and c5 stages of a LambdaResNet50 at 224 px (14x14x256 and
7x7x512, batch 32) and a high-resolution case (56x56x64, batch 8); scopes 23
(the paper's) and 9 (timm's default). Every layer has 4 heads, |k| = 16,
|u| = 1, batch normalisation on queries and values in training mode, the
local position lambdas and the content lambda, input channels = output
channels:

- ours: `lambda_keras.layers.LambdaLayer(scope=r)` (TensorFlow backend,
  `implementation="auto"`, in a `tf.function`);
- timm: `timm.layers.lambda_layer.LambdaLayer(dim, r=r)` (lambda
  convolution by `Conv3d`);
- lucidrains: `lambda_networks.LambdaLayer(dim=C, dim_out=C, r=r, dim_k=16,
  heads=4, dim_u=1)` (lambda convolution by `Conv3d`).

Each (contender, shape, scope) runs in a fresh process on all cores
(`torch.set_num_threads(os.cpu_count())`; TensorFlow uses all cores): the
two frameworks' thread pools slow each other down when they share a
process. The processes alternate contender by contender, in `--rounds`
rounds; a time is the median over rounds of each process's median of
`--repeats` timed calls after warm-up. "forward" is a training-mode forward
without gradient recording, "forward+backward" adds the gradients of the
sum of the outputs with respect to the input and every weight. Peak memory
is the process's peak resident memory above its resident memory just
before the first call (the forward pass runs alone first), so it counts
everything the pass allocates.
"""

import argparse
import json
import os
import resource
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import RESULTS  # noqa: E402
from benchmarks.common import interleaved_medians  # noqa: E402
from benchmarks.common import markdown_table  # noqa: E402
from benchmarks.common import rss_bytes  # noqa: E402
from benchmarks.common import run_worker  # noqa: E402
from benchmarks.common import save_bar_plot  # noqa: E402
from benchmarks.common import write_report  # noqa: E402

SHAPES = {
    "c4": (32, 14, 256),
    "c5": (32, 7, 512),
    "high-res": (8, 56, 64),
}
SCOPES = (23, 9)
CONTENDERS = ("ours", "timm", "lucidrains")
PASSES = ("forward", "forward+backward")
TARGET = 0.6


def _images(batch, size, channels):
    import numpy as np

    return np.random.default_rng(0).standard_normal((batch, size, size, channels))


def build_step(contender, shape, scope, mode):
    """A callable that runs one pass to completion."""
    batch, size, channels = SHAPES[shape]
    images = _images(batch, size, channels).astype("float32")
    if contender == "ours":
        import tensorflow as tf

        from lambda_keras.layers import LambdaLayer

        layer = LambdaLayer(scope=scope)
        x = tf.constant(images)
        layer.build(x.shape)

        @tf.function
        def forward(x):
            return layer(x, training=True)

        @tf.function
        def forward_backward(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(layer(x, training=True))
            return tape.gradient(loss, [x] + layer.trainable_weights)

        if mode == "forward":
            return lambda: forward(x).numpy()
        return lambda: [t.numpy() for t in forward_backward(x)]

    import torch

    torch.set_num_threads(os.cpu_count())
    if contender == "timm":
        from timm.layers.lambda_layer import LambdaLayer

        module = LambdaLayer(channels, r=scope)
    else:
        from lambda_networks import LambdaLayer

        module = LambdaLayer(
            dim=channels, dim_out=channels, r=scope, dim_k=16, heads=4, dim_u=1
        )
    module.train()
    x = torch.tensor(images.transpose(0, 3, 1, 2).copy())
    if mode == "forward":

        def run():
            with torch.no_grad():
                module(x)

        return run
    x.requires_grad_(True)

    def run_backward():
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x).sum().backward()

    return run_backward


def worker(contender, shape, scope, repeats):
    """Times both passes in this fresh process and prints them as JSON.

    The forward pass runs (and its peak memory is read) before the first
    backward pass; the two passes are then timed alternately.
    """
    forward = build_step(contender, shape, scope, "forward")
    baseline = rss_bytes()
    forward()
    forward_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    forward_backward = build_step(contender, shape, scope, "forward+backward")
    medians = interleaved_medians(
        {"forward": forward, "forward+backward": forward_backward}, repeats=repeats
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "seconds": medians,
                "peak_bytes": {
                    "forward": max(forward_peak - baseline, 0),
                    "forward+backward": max(peak - baseline, 0),
                },
            }
        )
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", nargs=3, metavar=("CONTENDER", "SHAPE", "R"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.worker:
        contender, shape, scope = args.worker
        worker(contender, shape, int(scope), args.repeats)
        return

    shapes, scopes = (("c5",), (23,)) if args.quick else (tuple(SHAPES), SCOPES)
    rounds = 1 if args.quick else args.rounds
    runs = {}
    for _ in range(rounds):
        for scope in scopes:
            for shape in shapes:
                for contender in CONTENDERS:
                    run = run_worker(
                        "benchmarks.layer_vs_peers",
                        ["--worker", contender, shape, str(scope)]
                        + [f"--repeats={args.repeats}"],
                    )
                    if run["status"] != "ok":
                        raise SystemExit(f"{contender} {shape} r={scope}: {run}")
                    runs.setdefault((contender, shape, scope), []).append(run)
                    print(
                        f"r={scope} {shape:8s} {contender:10s} "
                        + "  ".join(
                            f"{mode} {1000 * run['seconds'][mode]:8.1f} ms "
                            f"{run['peak_bytes'][mode] / 2**20:6.0f} MiB"
                            for mode in PASSES
                        ),
                        flush=True,
                    )
    results = [
        {
            "contender": contender,
            "shape": shape,
            "scope": scope,
            "mode": mode,
            "seconds": statistics.median(run["seconds"][mode] for run in measured),
            "peak_bytes": max(run["peak_bytes"][mode] for run in measured),
        }
        for (contender, shape, scope), measured in runs.items()
        for mode in PASSES
    ]

    def find(contender, shape, scope, mode):
        for result in results:
            if (
                result["contender"],
                result["shape"],
                result["scope"],
                result["mode"],
            ) == (contender, shape, scope, mode):
                return result
        raise KeyError((contender, shape, scope, mode))

    rows, verdicts, labels = [], [], []
    relative_times = {"ours": [], "lucidrains": []}
    for scope in scopes:
        for shape in shapes:
            batch, size, channels = SHAPES[shape]
            for mode in PASSES:
                ours, timm, lucid = (find(c, shape, scope, mode) for c in CONTENDERS)
                time_ratio = ours["seconds"] / timm["seconds"]
                memory_ratio = ours["peak_bytes"] / timm["peak_bytes"]
                met = time_ratio <= TARGET and memory_ratio <= 1.0
                verdicts.append(met)
                labels.append(f"{shape} r={scope} {mode}")
                relative_times["ours"].append(time_ratio)
                relative_times["lucidrains"].append(lucid["seconds"] / timm["seconds"])
                rows.append(
                    [
                        f"{shape} {size}x{size}x{channels}, b{batch}",
                        scope,
                        mode,
                        *(f"{1000 * r['seconds']:.1f}" for r in (ours, timm, lucid)),
                        *(
                            f"{r['peak_bytes'] / 2**20:.0f}"
                            for r in (ours, timm, lucid)
                        ),
                        f"{time_ratio:.2f}",
                        f"{memory_ratio:.2f}",
                        "met" if met else "missed",
                    ]
                )
    headers = [
        "shape",
        "scope",
        "pass",
        "ours ms",
        "timm ms",
        "lucidrains ms",
        "ours MiB",
        "timm MiB",
        "lucidrains MiB",
        "time ours/timm",
        "memory ours/timm",
        f"target (time <= {TARGET}, memory <= 1)",
    ]
    table = markdown_table(headers, rows)
    summary = f"Targets met at {sum(verdicts)} of {len(verdicts)} rows."
    print()
    print(table)
    print()
    print(summary)
    plot = save_bar_plot(
        RESULTS / "layer_vs_peers.png",
        labels,
        relative_times,
        "time / timm's time (timm = 1, dashed; target for ours <= 0.6)",
        "Lambda layer time relative to timm's, same shapes and scope",
    )
    write_report(
        "layer_vs_peers",
        {
            "title": "Lambda layer vs timm and lucidrains (PyTorch)",
            "markdown": table + "\n\n" + summary,
            "setup": {
                "shapes": SHAPES,
                "scopes": scopes,
                "repeats": args.repeats,
                "rounds": rounds,
            },
            "results": results,
            "plots": [str(plot.relative_to(RESULTS.parent))],
        },
    )


if __name__ == "__main__":
    main()
