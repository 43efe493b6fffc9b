"""The same lambda layer and model on the TensorFlow, JAX and PyTorch backends.

    python -m benchmarks.backends            # 2 rounds (about 2 min)
    python -m benchmarks.backends --quick    # small shapes, 1 round

Contenders (float32, random weights):

- layer: the paper's default `LambdaLayer()` (|k|=16, |h|=4, |u|=1, 23x23
  scope, einsum implementation at this size) on a c4-sized input
  (batch 32, 14x14x256): forward (`training=False`) and forward+backward
  (`training=True`, gradients of the mean output with respect to the
  weights and the input);
- model: `LambdaResNet26T(weights=None)` inference (`training=False`) at
  256x256, batch 4.

Backends and how they run:

- TensorFlow, `tf.function` (the reference row), and `tf.function` with
  `jit_compile=True` (XLA);
- JAX: `jax.jit` of the layer's / model's `stateless_call` (the gradient:
  `jax.jit(jax.value_and_grad(...))`);
- PyTorch: Keras's torch backend, eager, under `torch.no_grad()` for
  inference, `loss.backward()` for the gradient, with all cores
  (`torch.set_num_threads(os.cpu_count())`).

A backend is fixed per process, so each one runs in a worker process
(`run_worker` with `KERAS_BACKEND`), which times its three tasks alternately
(median of repeated calls after warm-up). The workers run in rounds, every
backend once per round, and each figure is the median over the rounds.
Writes benchmarks/results/backends.json.
"""

import argparse
import json
import os
import statistics
import sys

from benchmarks.common import interleaved_medians
from benchmarks.common import markdown_table
from benchmarks.common import run_worker
from benchmarks.common import tf_gradient_step
from benchmarks.common import write_report

# name -> (KERAS_BACKEND, worker mode)
BACKENDS = {
    "TensorFlow tf.function": ("tensorflow", "tf-function"),
    "TensorFlow jit_compile=True": ("tensorflow", "tf-xla"),
    "JAX jax.jit": ("jax", "jax-jit"),
    "PyTorch eager": ("torch", "torch-eager"),
}
REFERENCE = "TensorFlow tf.function"
TASKS = {
    "layer_forward": "LambdaLayer forward",
    "layer_forward_backward": "LambdaLayer forward+backward",
    "model_inference": "LambdaResNet26T inference",
}
SHAPES = {
    # layer batch, layer size, layer channels, model batch, model size
    "default": (32, 14, 256, 4, 256),
    "quick": (4, 14, 64, 1, 64),
}


def _fetch(value):
    """Copies a backend tensor (or nested structure) to the host."""
    import keras

    if isinstance(value, (list, tuple)):
        return [_fetch(item) for item in value]
    return keras.ops.convert_to_numpy(value)


def _tensorflow_tasks(layer, model, layer_input, model_input, jit_compile):
    import tensorflow as tf

    layer_input = tf.constant(layer_input)
    model_input = tf.constant(model_input)

    @tf.function(jit_compile=jit_compile, autograph=False)
    def forward(x):
        return layer(x, training=False)

    forward_backward = tf_gradient_step(layer, jit_compile)

    @tf.function(jit_compile=jit_compile, autograph=False)
    def inference(x):
        return model(x, training=False)

    return {
        "layer_forward": lambda: _fetch(forward(layer_input)),
        "layer_forward_backward": lambda: _fetch(forward_backward(layer_input)),
        "model_inference": lambda: _fetch(inference(model_input)),
    }


def _jax_tasks(layer, model, layer_input, model_input):
    import jax
    import jax.numpy as jnp

    layer_input = jnp.asarray(layer_input)
    model_input = jnp.asarray(model_input)
    trainable = [v.value for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]
    model_trainable = [v.value for v in model.trainable_variables]
    model_non_trainable = [v.value for v in model.non_trainable_variables]

    @jax.jit
    def forward(trainable, non_trainable, x):
        return layer.stateless_call(trainable, non_trainable, x, training=False)[0]

    def loss(trainable, x, non_trainable):
        outputs, updated = layer.stateless_call(
            trainable, non_trainable, x, training=True
        )
        return jnp.mean(outputs), updated

    forward_backward = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))

    @jax.jit
    def inference(trainable, non_trainable, x):
        return model.stateless_call(trainable, non_trainable, x, training=False)[0]

    def block(value):
        return jax.block_until_ready(value)

    return {
        "layer_forward": lambda: block(forward(trainable, non_trainable, layer_input)),
        "layer_forward_backward": lambda: block(
            forward_backward(trainable, layer_input, non_trainable)
        ),
        "model_inference": lambda: block(
            inference(model_trainable, model_non_trainable, model_input)
        ),
    }


def _torch_tasks(layer, model, layer_input, model_input):
    import torch

    torch.set_num_threads(os.cpu_count())
    layer_input = torch.from_numpy(layer_input)
    model_input = torch.from_numpy(model_input)
    weights = [v.value for v in layer.trainable_variables]

    def forward():
        with torch.no_grad():
            return _fetch(layer(layer_input, training=False))

    def forward_backward():
        x = layer_input.clone().requires_grad_(True)
        for weight in weights:
            weight.grad = None
        torch.mean(layer(x, training=True)).backward()
        return [x.grad.numpy()] + [w.grad.numpy() for w in weights]

    def inference():
        with torch.no_grad():
            return _fetch(model(model_input, training=False))

    return {
        "layer_forward": forward,
        "layer_forward_backward": forward_backward,
        "model_inference": inference,
    }


def worker(mode, shapes, repeats):
    """Times the three tasks on this process's backend; prints JSON."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    from lambda_keras.applications import LambdaResNet26T
    from lambda_keras.layers import LambdaLayer

    layer_batch, layer_size, channels, model_batch, model_size = shapes
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    layer_input = rng.standard_normal(
        (layer_batch, layer_size, layer_size, channels)
    ).astype("float32")
    model_input = rng.uniform(-1, 1, (model_batch, model_size, model_size, 3))
    model_input = model_input.astype("float32")
    layer = LambdaLayer()
    layer.build(layer_input.shape)
    model = LambdaResNet26T(weights=None, input_shape=(model_size, model_size, 3))

    if mode in ("tf-function", "tf-xla"):
        tasks = _tensorflow_tasks(
            layer, model, layer_input, model_input, jit_compile=mode == "tf-xla"
        )
    elif mode == "jax-jit":
        tasks = _jax_tasks(layer, model, layer_input, model_input)
    elif mode == "torch-eager":
        tasks = _torch_tasks(layer, model, layer_input, model_input)
    else:
        raise ValueError(f"unknown worker mode {mode!r}")
    seconds = interleaved_medians(tasks, repeats=repeats, warmup=2)
    threads = None
    if keras.backend.backend() == "torch":
        import torch

        threads = torch.get_num_threads()
    print(
        json.dumps(
            {
                "mode": mode,
                "backend": keras.backend.backend(),
                "seconds": seconds,
                "torch_threads": threads,
            }
        )
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds of workers")
    parser.add_argument(
        "--repeats", type=int, default=10, help="timed calls in each worker"
    )
    parser.add_argument(
        "--quick", action="store_true", help="small shapes, 1 round, 3 calls"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--shapes", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    shape_name = "quick" if args.quick else "default"
    if args.worker:
        shapes = tuple(json.loads(args.shapes)) if args.shapes else SHAPES[shape_name]
        worker(args.worker, shapes, args.repeats)
        return
    rounds, repeats = (1, 3) if args.quick else (args.rounds, args.repeats)
    shapes = SHAPES[shape_name]

    timings = {name: {task: [] for task in TASKS} for name in BACKENDS}
    failures = {}
    for round_index in range(rounds):
        for name, (backend, mode) in BACKENDS.items():
            result = run_worker(
                "benchmarks.backends",
                [
                    "--worker",
                    mode,
                    "--repeats",
                    str(repeats),
                    "--shapes",
                    json.dumps(shapes),
                ],
                environment={"KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"},
            )
            if result["status"] != "ok":
                failures[name] = result
                print(f"round {round_index + 1}, {name}: {result}", file=sys.stderr)
                continue
            for task in TASKS:
                timings[name][task].append(result["seconds"][task])
            milliseconds = {t: round(s * 1e3, 1) for t, s in result["seconds"].items()}
            print(f"round {round_index + 1}, {name}: {milliseconds} ms", flush=True)

    medians = {
        name: {
            task: statistics.median(values) if values else None
            for task, values in tasks.items()
        }
        for name, tasks in timings.items()
    }
    results, rows = [], []
    for name, tasks in medians.items():
        for task, seconds in tasks.items():
            reference = medians[REFERENCE][task]
            ratio = reference / seconds if seconds and reference else None
            results.append(
                {
                    "backend": name,
                    "task": task,
                    "seconds": seconds,
                    "rounds": timings[name][task],
                    "speed_vs_tf_function": ratio,
                }
            )
    for task, label in TASKS.items():
        for name in BACKENDS:
            result = next(
                r for r in results if r["backend"] == name and r["task"] == task
            )
            seconds, ratio = result["seconds"], result["speed_vs_tf_function"]
            rows.append(
                [
                    label,
                    name,
                    "failed" if seconds is None else f"{seconds * 1e3:.1f}",
                    "-" if ratio is None else f"{ratio:.2f}",
                ]
            )
    layer_batch, layer_size, channels, model_batch, model_size = shapes
    markdown = (
        f"LambdaLayer() on ({layer_batch}, {layer_size}, {layer_size}, "
        f"{channels}); LambdaResNet26T inference at batch {model_batch}, "
        f"{model_size}x{model_size}; float32; median over {rounds} round(s) of "
        f"one worker process per backend, each the median of {repeats} calls "
        "after 2 warm-up calls. Speed: the TensorFlow tf.function time over "
        "the row's time (above 1: faster).\n\n"
        + markdown_table(["task", "backend", "ms", "speed vs tf.function"], rows)
    )
    if failures:
        markdown += "\n\nFailed workers: " + "; ".join(
            f"{name}: {result.get('status')} {result.get('detail', '')}"
            for name, result in failures.items()
        )
    print("\n" + markdown)
    write_report(
        "backends",
        {
            "title": "Backends: the same layer and model on TensorFlow, JAX, PyTorch",
            "shapes": dict(
                zip(
                    [
                        "layer_batch",
                        "layer_size",
                        "layer_channels",
                        "model_batch",
                        "model_size",
                    ],
                    shapes,
                )
            ),
            "rounds": rounds,
            "repeats": repeats,
            "results": results,
            "failures": failures,
            "markdown": markdown,
        },
    )


if __name__ == "__main__":
    main()
