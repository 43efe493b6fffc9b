"""Inference and training throughput of LambdaResNets against ResNet50.

    python -m benchmarks.models                  # all models (6-11 min)
    python -m benchmarks.models --quick          # ResNet50 and the hybrid only
    python -m benchmarks.models --jit-compile    # under XLA (11 min, 17 GB)

TensorFlow backend, 224x224 inputs, random weights, float32. Contenders:
`keras.applications.ResNet50(weights=None)` (the reference), our hybrid
`LambdaResNet50(weights=None)` (ResNet-D stem, SE in c2-c3, one lambda layer
in c4 and lambda layers in all of c5: the paper's 350-epoch LambdaResNet50)
and the eight lambda/convolution placements of the paper's Table 12
(vanilla ResNet-v1 bottlenecks, `paper_tables.py`).

- Inference: `model(x, training=False)` in one `tf.function` per model
  (`jit_compile` with `--jit-compile`), result fetched to the host.
- Training: one SGD step (`model.compile(optimizer=SGD, jit_compile=...)`,
  `train_on_batch`, sparse categorical cross-entropy on random labels).

All contenders run in this one process and are timed alternately, round by
round (`interleaved_medians`), so a busy shared machine slows them alike.
Every throughput is reported as a ratio to ResNet50 from the same run, beside
the paper's ratio: Table 12's throughputs over its C -> C -> C -> C row
(7240 ex/s). The paper gives no ResNet-50 counterpart of the hybrid: Table 13
has ResNet-101 (224 px) and ResNet-152 (256 px) only, so the hybrid's paper
column is Table 13's "ResNet101 + 3 lambda" over its ResNet-101 "Baseline"
(4040 / 4600), the nearest configuration (a few lambda layers in c4 and all
of c5, SE elsewhere). The paper's throughputs are TPUv3 inference in float32
(Appendix D); it reports no training throughput.

Run time on the 2-core CPU: 11 min with the machine under load (peak
resident memory 11.7 GB, mostly training the placements with lambda layers
in c2, whose 3136 x 3136 position embeddings are materialised); 11 min and
17 GB with `--jit-compile` (XLA compiles 20 functions). `--profile` adds a
per-layer breakdown of ResNet50 and the hybrid.

Writes benchmarks/results/models.json (and models_xla.json with
`--jit-compile`) and a plot of the inference ratios.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.common import RESULTS  # noqa: E402
from benchmarks.common import interleaved_medians  # noqa: E402
from benchmarks.common import markdown_table  # noqa: E402
from benchmarks.common import save_bar_plot  # noqa: E402
from benchmarks.common import write_report  # noqa: E402
from lambda_keras.applications import LambdaResNet  # noqa: E402
from lambda_keras.applications import LambdaResNet50  # noqa: E402
from lambda_keras.applications.paper_tables import PARAMETER_COUNTS  # noqa: E402

SIZE = 224
CLASSES = 1000
REFERENCE = "ResNet50"
HYBRID = "LambdaResNet50 (hybrid)"
# Table 12: inference throughput (ex/s, 8 TPUv3 cores, float32) by placement.
TABLE12_THROUGHPUT = {
    "C -> C -> C -> C": 7240,
    "L -> C -> C -> C": 1880,
    "L -> L -> C -> C": 1280,
    "L -> L -> L -> C": 1160,
    "L -> L -> L -> L": 1160,
    "C -> L -> L -> L": 2200,
    "C -> C -> L -> L": 4980,
    "C -> C -> C -> L": 7160,
}
# Table 13, ResNet-101 at 224 px: "+ 3 lambda" and "Baseline" (ex/s).
TABLE13_HYBRID = (4040, 4600)
QUICK_PLACEMENTS = ()


def table12_configurations():
    """Placement row -> `LambdaResNet` arguments, from paper_tables.py."""
    return {row: config for table, row, _, config in PARAMETER_COUNTS if table == "12"}


def build_models(placements):
    """Name -> (model, paper ratio to the conv baseline, paper source)."""
    models = {
        REFERENCE: (keras.applications.ResNet50(weights=None), 1.0, "reference"),
        HYBRID: (
            LambdaResNet50(weights=None),
            TABLE13_HYBRID[0] / TABLE13_HYBRID[1],
            "Table 13, ResNet101 +3 lambda / Baseline (no ResNet-50 row)",
        ),
    }
    configurations = table12_configurations()
    for row in placements:
        models[f"Table 12: {row}"] = (
            LambdaResNet(**configurations[row]),
            TABLE12_THROUGHPUT[row] / TABLE12_THROUGHPUT["C -> C -> C -> C"],
            f"Table 12, {TABLE12_THROUGHPUT[row]} / 7240 ex/s",
        )
    return models


def inference_step(model, images, jit_compile):
    """A callable running one inference batch to completion."""
    forward = tf.function(
        lambda x: model(x, training=False), jit_compile=jit_compile, autograph=False
    )
    return lambda: forward(images).numpy()


def training_step(model, images, labels, jit_compile):
    """A callable running one SGD step to completion."""
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        jit_compile=jit_compile,
    )
    return lambda: float(model.train_on_batch(images, labels))


def layer_profile(model, images, repeats=3):
    """Median seconds of each layer of a functional model, run alone.

    Every layer runs in its own `tf.function` (inference mode) on the
    inputs it receives in the model, so the sum over layers approximates
    the model's time without fusion across layers.

    Returns:
        list of (layer name, layer kind, stage, seconds), in model order.
    """
    layers = [
        layer
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    values = keras.Model(model.inputs, [layer.output for layer in layers])(
        images, training=False
    )
    known = {id(model.inputs[0]): images}
    known.update({id(layer.output): value for layer, value in zip(layers, values)})
    profile = []
    for layer in layers:
        inputs = layer.input
        arguments = (
            [known[id(tensor)] for tensor in inputs]
            if isinstance(inputs, (list, tuple))
            else known[id(inputs)]
        )
        call = tf.function(
            lambda x, layer=layer: layer(x, training=False), autograph=False
        )
        seconds = interleaved_medians(
            {"layer": lambda call=call, x=arguments: call(x).numpy()},
            repeats=repeats,
            warmup=1,
        )["layer"]
        kind = type(layer).__name__
        if kind == "Conv2D":
            kind = f"Conv2D {layer.kernel_size[0]}x{layer.kernel_size[1]}"
        if "_se_" in layer.name:
            kind = "SE (pool, 1x1 convs, multiply)"
        # keras.applications names stages conv2..conv5, ours c2..c5.
        prefix = layer.name.split("_")[0]
        if prefix in ("c2", "c3", "c4", "c5"):
            stage = prefix
        elif prefix in ("conv2", "conv3", "conv4", "conv5"):
            stage = "c" + prefix[4:]
        else:
            stage = "stem/top"
        profile.append((layer.name, kind, stage, seconds))
    return profile


def profile_tables(models, images):
    """Markdown tables of per-layer-kind and per-stage time of each model."""

    def grouped(profile, index):
        totals = {}
        for entry in profile:
            totals[entry[index]] = totals.get(entry[index], 0.0) + entry[3]
        return dict(sorted(totals.items(), key=lambda item: -item[1]))

    profiles = {name: layer_profile(model, images) for name, model in models.items()}
    sections, data = [], {}
    for index, label in ((1, "layer kind"), (2, "stage")):
        groups = {name: grouped(profile, index) for name, profile in profiles.items()}
        keys = []
        for totals in groups.values():
            keys += [key for key in totals if key not in keys]
        rows = [
            [key] + [f"{groups[name].get(key, 0.0) * 1e3:.1f}" for name in profiles]
            for key in keys
        ]
        rows.append(
            ["sum"] + [f"{sum(groups[name].values()) * 1e3:.1f}" for name in profiles]
        )
        headers = [label] + [f"{name} (ms)" for name in profiles]
        sections.append(markdown_table(headers, rows))
        data[label] = groups
    return "\n\n".join(sections), data


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="images per step")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds")
    parser.add_argument(
        "--training-repeats",
        type=int,
        default=3,
        help="timed rounds of the training steps (slower than inference)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="ResNet50 and the hybrid, 2 rounds"
    )
    parser.add_argument(
        "--jit-compile",
        action="store_true",
        help="XLA-compile the inference function and training step of all models",
    )
    parser.add_argument("--no-training", action="store_true", help="inference only")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also time every layer of ResNet50 and the hybrid alone, "
        "summed by layer kind and by stage",
    )
    args = parser.parse_args(argv)
    placements = QUICK_PLACEMENTS if args.quick else tuple(TABLE12_THROUGHPUT)
    repeats = 2 if args.quick else args.repeats
    training_repeats = 2 if args.quick else args.training_repeats

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = tf.constant(
        rng.uniform(-1, 1, (args.batch, SIZE, SIZE, 3)).astype("float32")
    )
    labels = tf.constant(rng.integers(0, CLASSES, args.batch))
    models = build_models(placements)
    names = list(models)

    threads = tf.config.threading.get_intra_op_parallelism_threads()
    threads = threads or os.cpu_count()  # 0: TensorFlow uses every core
    print(
        f"{len(names)} models, batch {args.batch}, {SIZE}px, "
        f"jit_compile={args.jit_compile}, {threads} threads",
        flush=True,
    )
    inference = interleaved_medians(
        {
            name: inference_step(model, images, args.jit_compile)
            for name, (model, _, _) in models.items()
        },
        repeats=repeats,
        warmup=1,
    )
    training = {}
    if not args.no_training:
        training = interleaved_medians(
            {
                name: training_step(model, images, labels, args.jit_compile)
                for name, (model, _, _) in models.items()
            },
            repeats=training_repeats,
            warmup=1,
        )

    def throughput(seconds):
        return args.batch / seconds

    rows, results = [], []
    for name in names:
        model, paper_ratio, source = models[name]
        result = {
            "model": name,
            "parameters": model.count_params(),
            "inference_seconds": inference[name],
            "inference_images_per_second": throughput(inference[name]),
            "inference_ratio": inference[REFERENCE] / inference[name],
            "paper_ratio": paper_ratio,
            "paper_source": source,
        }
        if training:
            result.update(
                training_seconds=training[name],
                training_images_per_second=throughput(training[name]),
                training_ratio=training[REFERENCE] / training[name],
            )
        results.append(result)
        rows.append(
            [
                name,
                f"{result['parameters'] / 1e6:.1f}M",
                f"{result['inference_images_per_second']:.1f}",
                f"{result['inference_ratio']:.2f}",
                f"{result['training_images_per_second']:.1f}" if training else "-",
                f"{result['training_ratio']:.2f}" if training else "-",
                f"{paper_ratio:.2f}",
                source,
            ]
        )
    headers = [
        "model",
        "params",
        "inference img/s",
        "ratio",
        "training img/s",
        "ratio",
        "paper ratio",
        "paper source",
    ]
    table = markdown_table(headers, rows)
    hybrid = next(r for r in results if r["model"] == HYBRID)
    target = (
        f"Target: hybrid LambdaResNet50 inference >= 0.85x ResNet50: "
        f"{hybrid['inference_ratio']:.2f}x "
        f"({'met' if hybrid['inference_ratio'] >= 0.85 else 'missed'})."
    )
    mode = "XLA (jit_compile=True)" if args.jit_compile else "tf.function"
    setup = (
        f"TensorFlow backend, {mode}, {threads} threads, "
        f"batch {args.batch}, {SIZE}x{SIZE}, float32, medians of {repeats} "
        f"inference and {training_repeats if training else 0} training rounds "
        "(all models interleaved). Ratios: throughput over ResNet50's in the "
        "same run; paper ratios: TPUv3 inference over the conv baseline."
    )
    markdown = f"{setup}\n\n{table}\n\n{target}"
    profile = None
    if args.profile:
        profile_markdown, profile = profile_tables(
            {name: models[name][0] for name in (REFERENCE, HYBRID)}, images
        )
        markdown += (
            "\n\nPer-layer inference time, each layer alone in its own "
            "tf.function (medians of 3 calls), summed:\n\n" + profile_markdown
        )
    print("\n" + markdown)

    suffix = "_xla" if args.jit_compile else ""
    name = f"models{suffix}"
    plot = RESULTS / f"{name}.png"
    save_bar_plot(
        plot,
        labels=[r["model"].replace("Table 12: ", "") for r in results],
        series={
            "ours (inference)": [r["inference_ratio"] for r in results],
            "paper": [r["paper_ratio"] for r in results],
        },
        ylabel="throughput / ResNet50",
        title=f"Inference throughput relative to ResNet50 (TensorFlow, {mode})",
    )
    write_report(
        name,
        {
            "title": "Models: LambdaResNets vs ResNet50 (TensorFlow"
            + (", XLA)" if args.jit_compile else ")"),
            "batch": args.batch,
            "size": SIZE,
            "jit_compile": args.jit_compile,
            "threads": threads,
            "repeats": repeats,
            "training_repeats": training_repeats if training else 0,
            "results": results,
            "profile": profile,
            "markdown": markdown,
            "plots": [str(plot.relative_to(RESULTS.parent))],
        },
    )


if __name__ == "__main__":
    main()
