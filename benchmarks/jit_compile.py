"""What compiling the training step is worth, per backend: `--jit-compile`.

    python -m benchmarks.jit_compile            # LambdaResNet26T, 128 px, batch 16
    python -m benchmarks.jit_compile --quick    # 64 px, batch 2 (smoke run)

For each Keras backend, one worker process builds the same model twice and
compiles it with `jit_compile=False` and `jit_compile=True` (XLA on
TensorFlow, `jax.jit` on JAX, `torch.compile` on PyTorch), then times
`train_on_batch` (a full SGD step with momentum) of the two alternately.
The first step of each (tracing and compiling) is timed apart. The ratio
compiled / uncompiled images/s is what decides the CPU rows of
`lambda_keras.train.compilation.JIT_COMPILE_DEFAULTS`, the training
script's default.

Writes benchmarks/results/jit_compile.json.
"""

import argparse
import json
import sys
import time

from benchmarks.common import interleaved_medians
from benchmarks.common import markdown_table
from benchmarks.common import run_worker
from benchmarks.common import write_report

BACKENDS = ("tensorflow", "jax", "torch")
MODEL = "LambdaResNet26T"
CLASSES = 1000


def worker(size, batch, repeats):
    """Images/s and first-step seconds of both modes; prints JSON."""
    import keras
    import numpy as np

    from lambda_keras.applications import MODELS

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    labels = rng.integers(0, CLASSES, batch)
    steps, first_step = {}, {}
    for jit_compile in (False, True):
        model = MODELS[MODEL](weights=None, input_shape=(size, size, 3))
        model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss="sparse_categorical_crossentropy",
            jit_compile=jit_compile,
        )
        name = "compiled" if jit_compile else "uncompiled"
        start = time.perf_counter()
        model.train_on_batch(images, labels)
        first_step[name] = time.perf_counter() - start
        steps[name] = lambda m=model: m.train_on_batch(images, labels)
    seconds = interleaved_medians(steps, repeats=repeats, warmup=1)
    print(
        json.dumps(
            {
                "images_per_second": {n: batch / s for n, s in seconds.items()},
                "first_step_seconds": first_step,
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=BACKENDS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.size, args.batch, args.repeats = 64, 2, 1
    if args.worker:
        worker(args.size, args.batch, args.repeats)
        return

    flags = ["--size", str(args.size), "--batch", str(args.batch)]
    flags += ["--repeats", str(args.repeats), "--worker"]
    results, rows = {}, []
    for backend in args.backends:
        result = run_worker(
            "benchmarks.jit_compile", flags, environment={"KERAS_BACKEND": backend}
        )
        print(backend, result, flush=True)
        results[backend] = result
        if result.get("status") != "ok":
            rows.append([backend, "—", "—", "—", "—"])
            continue
        rates, first = result["images_per_second"], result["first_step_seconds"]
        rows.append(
            [
                backend,
                f"{rates['uncompiled']:.2f}",
                f"{rates['compiled']:.2f}",
                f"{rates['compiled'] / rates['uncompiled']:.2f}",
                f"{first['uncompiled']:.0f} / {first['compiled']:.0f}",
            ]
        )
    table = markdown_table(
        [
            "backend",
            "uncompiled images/s",
            "compiled images/s",
            "compiled / uncompiled",
            "first step s (uncompiled / compiled)",
        ],
        rows,
    )
    summary = (
        f"{MODEL} training step (`train_on_batch`, SGD with momentum), "
        f"{args.size} px, batch {args.batch}, float32, random weights, with "
        "`jit_compile=False` and `True` timed alternately in one process per "
        "backend (XLA on TensorFlow, jax.jit on JAX, torch.compile on "
        "PyTorch). The training script compiles by default on a CPU where "
        "the ratio is at least 1.05 (`JIT_COMPILE_DEFAULTS` in "
        "`lambda_keras/train/compilation.py`).\n\n"
    )
    print(table)
    write_report(
        "jit_compile",
        {
            "title": "Compiling the training step (--jit-compile), every backend",
            "quick": args.quick,
            "size": args.size,
            "batch": args.batch,
            "results": results,
            "markdown": summary + table,
        },
    )


if __name__ == "__main__":
    sys.exit(main())
