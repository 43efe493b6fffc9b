"""Peak training memory of whole models, and of the global lambda under XLA.

    python -m benchmarks.model_memory            # 224 px, batch 32
    python -m benchmarks.model_memory --quick    # 64 px, batch 2

Each contender trains in a fresh worker process (TensorFlow graph mode,
float32, random weights, `train_on_batch` with SGD and momentum). The
figure is the growth of the process's peak resident memory over its memory
once the model is built and compiled: what the training steps themselves
add (activations kept for the backward pass, gradients, optimizer slots,
the framework's workspace). Contenders:

- the hybrid LambdaResNet50 (the paper's LambdaResNet-50), its
  convolutional twin (`placement=("C", "C", "C", "C")`) and
  `keras.applications.ResNet50`;
- LambdaResNet26T against timm's lambda_resnet26t (PyTorch, SGD step);
- the global (einsum) lambda layer (`LambdaLayer(scope=None)`) on 32x32 and
  64x64 feature maps, forward and backward, in graph mode and under XLA
  (`jit_compile=True`): XLA must not keep a dense copy of the position
  embeddings E that graph mode avoids.

Writes benchmarks/results/model_memory.json.
"""

import argparse
import json
import resource
import sys

from benchmarks.common import markdown_table
from benchmarks.common import rss_bytes
from benchmarks.common import run_worker
from benchmarks.common import tf_gradient_step
from benchmarks.common import write_report

CLASSES = 1000
STEPS = 2
# The target: the hybrid's training memory within 1.1x its twin's.
TARGET = ("LambdaResNet50 (hybrid)", "LambdaResNet50 conv twin", 1.1)
# name -> (kind, what): the contenders, in the table's order.
CONTENDERS = {
    "LambdaResNet50 (hybrid)": ("keras", "LambdaResNet50"),
    "LambdaResNet50 conv twin": ("keras", "LambdaResNet50 twin"),
    "keras ResNet50": ("keras", "ResNet50"),
    "LambdaResNet26T": ("keras", "LambdaResNet26T"),
    "timm lambda_resnet26t": ("timm", "lambda_resnet26t"),
    "global lambda 32x32, graph": ("layer", [32, False]),
    "global lambda 32x32, XLA": ("layer", [32, True]),
    "global lambda 64x64, graph": ("layer", [64, False]),
    "global lambda 64x64, XLA": ("layer", [64, True]),
}
# The layer's input: batch, channels (a c3-sized block of the paper's).
LAYER_INPUT = (8, 128)


def _peak_bytes():
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _report(before, steps):
    print(
        json.dumps(
            {
                "built_bytes": before,
                "training_growth_bytes": _peak_bytes() - before,
                "steps": steps,
            }
        )
    )


def keras_worker(what, size, batch):
    import keras
    import numpy as np

    from lambda_keras.applications import MODELS

    keras.utils.set_random_seed(0)
    name, _, twin = what.partition(" ")
    shape = (size, size, 3)
    if name == "ResNet50":
        model = keras.applications.ResNet50(weights=None, input_shape=shape)
    else:
        options = {"placement": ("C", "C", "C", "C")} if twin else {}
        model = MODELS[name](weights=None, input_shape=shape, **options)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss="sparse_categorical_crossentropy",
    )
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (batch,) + shape).astype("float32")
    labels = rng.integers(0, CLASSES, batch)
    before = rss_bytes()
    for _ in range(STEPS):
        model.train_on_batch(images, labels)
    _report(before, STEPS)


def timm_worker(what, size, batch):
    import timm
    import torch

    torch.manual_seed(0)
    model = timm.create_model(what, pretrained=False, num_classes=CLASSES)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.rand(batch, 3, size, size)
    labels = torch.randint(0, CLASSES, (batch,))
    model.train()
    before = rss_bytes()
    for _ in range(STEPS):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
    _report(before, STEPS)


def layer_worker(what, quick):
    import numpy as np
    import tensorflow as tf

    from lambda_keras.layers import LambdaLayer

    side, jit_compile = what
    batch, channels = (1, 32) if quick else LAYER_INPUT
    layer = LambdaLayer(scope=None, implementation="einsum")
    inputs = tf.constant(
        np.random.default_rng(0).standard_normal((batch, side, side, channels)),
        tf.float32,
    )
    layer.build(inputs.shape)

    forward_backward = tf_gradient_step(layer, jit_compile)

    forward_backward.get_concrete_function(inputs)
    before = rss_bytes()
    for _ in range(STEPS):
        [g.numpy() for g in forward_backward(inputs)]
    _report(before, STEPS)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--only", nargs="+", choices=CONTENDERS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.size, args.batch = 64, 2
    if args.worker:
        kind, what = json.loads(args.worker)
        if kind == "layer":
            layer_worker(what, args.quick)
        elif kind == "timm":
            timm_worker(what, args.size, args.batch)
        else:
            keras_worker(what, args.size, args.batch)
        return

    results = {}
    for label in args.only or CONTENDERS:
        kind, what = CONTENDERS[label]
        flags = ["--size", str(args.size), "--batch", str(args.batch)]
        flags += ["--quick"] if args.quick else []
        result = run_worker(
            "benchmarks.model_memory",
            ["--worker", json.dumps([kind, what]), *flags],
            environment={"KERAS_BACKEND": "tensorflow"},
        )
        print(label, result, flush=True)
        results[label] = result

    def gigabytes(label):
        result = results.get(label) or {}
        if result.get("status") != "ok":
            return None
        return result["training_growth_bytes"] / 2**30

    def ratio(label, reference):
        a, b = gigabytes(label), gigabytes(reference)
        return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}"

    references = {
        "LambdaResNet50 (hybrid)": "LambdaResNet50 conv twin",
        "keras ResNet50": "LambdaResNet50 conv twin",
        "LambdaResNet26T": "timm lambda_resnet26t",
        "global lambda 32x32, XLA": "global lambda 32x32, graph",
        "global lambda 64x64, XLA": "global lambda 64x64, graph",
    }
    rows = []
    for label in results:
        size = gigabytes(label)
        reference = references.get(label)
        rows.append(
            [
                label,
                "—" if size is None else f"{size:.2f}",
                f"{ratio(label, reference)} of {reference}" if reference else "",
            ]
        )
    table = markdown_table(["contender", "training growth GiB", "ratio"], rows)
    label, reference, bound = TARGET
    a, b = gigabytes(label), gigabytes(reference)
    verdict = (
        "not measured"
        if a is None or not b
        else ("met" if a / b <= bound else "missed")
    )
    table += f"\n\nTarget: {label} <= {bound}x the {reference}: {verdict}."
    batch, channels = (1, 32) if args.quick else LAYER_INPUT
    summary = (
        f"Peak resident memory added by {STEPS} training steps over the built "
        f"model's, one fresh process each: models at {args.size} px, batch "
        f"{args.batch}; the global lambda layer on (batch {batch}, side, side, "
        f"{channels}), forward and backward.\n\n"
    )
    print(table)
    write_report(
        "model_memory",
        {
            "title": "Model-level training memory",
            "quick": args.quick,
            "results": results,
            "markdown": summary + table,
        },
    )


if __name__ == "__main__":
    sys.exit(main())
