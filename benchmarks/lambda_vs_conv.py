"""Lambda layers against the convolutions they replace, on every backend.

    python -m benchmarks.lambda_vs_conv            # 3 models, 4 modes, timm
    python -m benchmarks.lambda_vs_conv --quick    # 64 px, batch 2, 26T only

For LambdaResNet26T, LambdaResNet50TS and the hybrid LambdaResNet50, the
lambda network and its convolutional twin (the same builder with every
stage convolutional, `placement=("C", "C", "C", "C")`) are timed side by
side, alternately, in one worker process per backend and mode:

- TensorFlow graph (`jit_compile=False`), TensorFlow + XLA
  (`jit_compile=True`), JAX (`jax.jit`, Keras' JAX trainer) and PyTorch
  (eager);
- inference: `predict_on_batch` (the compiled predict step);
- training: `train_on_batch`, a full SGD step with momentum (forward,
  backward and the update).

Each task is timed in rounds of its own (all inference rounds, then all
training rounds), the two networks one after the other in each round, in
alternating order. The figure is the throughput ratio lambda / twin (above
1: the lambda layers cost less than the convolutions they replace) of each
round: its median over the rounds, with the lowest and highest beside it.
Beside it, timm's lambda_resnet26t / resnet26t (and lambda_resnet50ts /
resnet50t) measured the same way in its own PyTorch worker (eager,
`torch.no_grad()` for inference, an SGD step for training). Random
weights, float32, 128 px, batch 16 (`--size`, `--batch`).

Writes benchmarks/results/lambda_vs_conv.json.
"""

import argparse
import json
import os
import statistics
import sys

from benchmarks.common import interleaved_timings
from benchmarks.common import markdown_table
from benchmarks.common import run_backend_worker
from benchmarks.common import write_report

# mode -> (KERAS_BACKEND, jit_compile)
MODES = {
    "TF graph": ("tensorflow", False),
    "TF + XLA": ("tensorflow", True),
    "JAX jit": ("jax", True),
    "PyTorch eager": ("torch", False),
}
MODELS = ("LambdaResNet26T", "LambdaResNet50TS", "LambdaResNet50")
# Our model -> timm's lambda model and its convolutional counterpart.
TIMM_PAIRS = {
    "LambdaResNet26T": ("lambda_resnet26t", "resnet26t"),
    "LambdaResNet50TS": ("lambda_resnet50ts", "resnet50t"),
}
TWIN_PLACEMENT = ("C", "C", "C", "C")
TASKS = ("inference", "training")
CLASSES = 1000


def keras_steps(models, mode, size, batch):
    """ "label inference" and "label training" -> callable for each model of
    `models` (label -> Keras model), compiled for `mode` on random images of
    `size` px: `predict_on_batch`, and `train_on_batch` with SGD."""
    import keras
    import numpy as np

    _, jit_compile = MODES[mode]
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    labels = rng.integers(0, CLASSES, batch)
    steps = {}
    for label, model in models.items():
        model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss="sparse_categorical_crossentropy",
            jit_compile=jit_compile,
        )
        steps[f"{label} inference"] = lambda m=model: m.predict_on_batch(images)
        steps[f"{label} training"] = lambda m=model: m.train_on_batch(images, labels)
    return steps


def task_timings(steps, repeats, tasks=TASKS):
    """`interleaved_timings` of each task's steps ("label task" -> callable)
    in rounds of their own, one task after the other: label task -> seconds
    per round."""
    timings = {}
    for task in tasks:
        timings |= interleaved_timings(
            {name: step for name, step in steps.items() if name.endswith(f" {task}")},
            repeats=repeats,
            warmup=1,
        )
    return timings


def keras_worker(mode, model_name, size, batch, repeats):
    """Seconds per round of the lambda model and its twin, inference and
    training; prints JSON."""
    import keras

    from lambda_keras.applications import MODELS as CONSTRUCTORS

    keras.utils.set_random_seed(0)
    build = CONSTRUCTORS[model_name]
    models = {
        label: build(weights=None, input_shape=(size, size, 3), **options)
        for label, options in (("lambda", {}), ("twin", {"placement": TWIN_PLACEMENT}))
    }
    steps = keras_steps(models, mode, size, batch)
    print(json.dumps(task_timings(steps, repeats)))


def timm_worker(model_name, size, batch, repeats):
    """Seconds per round of timm's lambda model and its twin (PyTorch
    eager), inference and training; prints JSON."""
    import timm
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())
    images = torch.rand(batch, 3, size, size) * 2 - 1
    labels = torch.randint(0, CLASSES, (batch,))
    contenders = {}
    for label, name in zip(("lambda", "twin"), TIMM_PAIRS[model_name]):
        model = timm.create_model(name, pretrained=False, num_classes=CLASSES)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def inference(m=model):
            m.eval()
            with torch.no_grad():
                return m(images).numpy()

        def training(m=model, o=optimizer):
            m.train()
            o.zero_grad()
            loss = torch.nn.functional.cross_entropy(m(images), labels)
            loss.backward()
            o.step()
            return loss.item()

        contenders[f"{label} inference"] = inference
        contenders[f"{label} training"] = training
    print(json.dumps(task_timings(contenders, repeats)))


def _ratio(seconds, task):
    """The throughput ratio lambda / twin of each round (the twin's seconds
    over the lambda model's, timed one after the other): (median, lowest,
    highest), or None where the worker failed."""
    if not seconds or seconds.get("status") != "ok":
        return None
    ratios = [
        twin / mine
        for mine, twin in zip(seconds[f"lambda {task}"], seconds[f"twin {task}"])
    ]
    return statistics.median(ratios), min(ratios), max(ratios)


def _cell(ratio):
    if ratio is None:
        return "—"
    median, lowest, highest = ratio
    return f"{median:.2f} ({lowest:.2f}-{highest:.2f})"


def _meets(mine, theirs):
    """Whether our ratio's median is at least 1.0 and at least timm's."""
    return mine[0] >= 1.0 and (theirs is None or mine[0] >= theirs[0])


def _target(ours, timm):
    """ "met" when each of our ratios meets the target (`_meets`)."""
    pairs = list(zip(ours, timm))
    if any(mine is None for mine, _ in pairs):
        return "not measured"
    return "met" if all(_meets(*pair) for pair in pairs) else "missed"


def missed_cells(report):
    """(model, mode, task) of each measured ratio of a lambda_vs_conv report
    (the dict of its JSON) that misses the target."""
    timm = {
        result["model"]: result["seconds"]
        for result in report["results"]
        if result["mode"] == "timm"
    }
    cells = []
    for result in report["results"]:
        if result["mode"] == "timm":
            continue
        for task in TASKS:
            mine = _ratio(result["seconds"], task)
            theirs = _ratio(timm.get(result["model"]), task)
            if mine is not None and not _meets(mine, theirs):
                cells.append((result["model"], result["mode"], task))
    return cells


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=MODELS)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.size, args.batch, args.repeats = 64, 2, 1
        args.models = ["LambdaResNet26T"]
    if args.worker:
        kind, *rest = json.loads(args.worker)
        if kind == "timm":
            timm_worker(*rest)
        else:
            keras_worker(*rest)
        return

    def run(kind, backend, *worker_args):
        result = run_backend_worker(
            "benchmarks.lambda_vs_conv",
            backend,
            [kind, *worker_args, args.size, args.batch, args.repeats],
        )
        print(kind, worker_args, result, flush=True)
        return result

    results = []
    rows = []
    for model_name in args.models:
        timm_seconds = None
        if model_name in TIMM_PAIRS:
            timm_seconds = run("timm", "torch", model_name)
        for mode in args.modes:
            seconds = run("keras", MODES[mode][0], mode, model_name)
            results.append({"model": model_name, "mode": mode, "seconds": seconds})
            ours = [_ratio(seconds, task) for task in TASKS]
            timm = [_ratio(timm_seconds, task) for task in TASKS]
            rows.append(
                [model_name, mode, *map(_cell, ours), *map(_cell, timm)]
                + [_target(ours, timm)]
            )
        if timm_seconds is not None:
            results.append(
                {"model": model_name, "mode": "timm", "seconds": timm_seconds}
            )
    table = markdown_table(
        [
            "model",
            "mode",
            "ours inference",
            "ours training",
            "timm inference",
            "timm training",
            "target (>= 1.0, >= timm)",
        ],
        rows,
    )
    summary = (
        f"Throughput ratio lambda network / its convolutional twin, {args.size} "
        f"px, batch {args.batch}, float32, random weights (above 1: the lambda "
        "layers cost less than the convolutions they replace); timm's columns: "
        "its lambda model over its ResNet-T counterpart, PyTorch eager, in its "
        f"own process. Each cell: the median of the {args.repeats} rounds' "
        "ratios (each round times the two one after the other, in "
        "alternating order, and each task has rounds of its own) and, in "
        "brackets, the lowest and highest; the target reads the medians.\n\n"
    )
    print(table)
    write_report(
        "lambda_vs_conv",
        {
            "title": "Lambda layers against convolutions (twins), every backend",
            "quick": args.quick,
            "size": args.size,
            "batch": args.batch,
            "results": results,
            "markdown": summary + table,
        },
    )


if __name__ == "__main__":
    sys.exit(main())
