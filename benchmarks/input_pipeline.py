"""What the input pipeline of `lambda-keras train` costs a training step.

    python -m benchmarks.input_pipeline            # Imagenette 96 px, CIFAR-10 32 px
    python -m benchmarks.input_pipeline --quick    # a few steps each (smoke run)

For each dataset, the model is built, compiled and fed exactly as
`lambda-keras train --cache` does (`trainer.build_model`, its optimizer and
`data.make_pipeline`), and `model.fit` runs alternately on:

- **pipeline**: the real training pipeline (decoded images cached in memory
  after the first pass, random resized crop and flip per example, shuffled);
- **fixed batch**: one batch of that pipeline held in memory and repeated, so
  the same fit loop does no input work at all.

The overhead is 1 - pipeline / fixed images per second: what the pipeline
costs training, its own work and the cores it takes from the model's step.
The pipeline alone (no model) is timed too, to show how far ahead of the
step it runs. The first pass over the data (decoding, filling the cache) is
timed apart and left out of the figures: it is paid once per run.

Datasets are the `../shared/data` archives, unpacked into `data/` (ignored)
on first use, or the folders given by `--imagenette` / `--cifar10`.

Writes benchmarks/results/input_pipeline.json.
"""

import argparse
import os
import statistics
import tarfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.common import REPOSITORY  # noqa: E402
from benchmarks.common import markdown_table  # noqa: E402
from benchmarks.common import write_report  # noqa: E402
from lambda_keras.train import data  # noqa: E402
from lambda_keras.train import trainer  # noqa: E402
from lambda_keras.train.recipes import RECIPES  # noqa: E402

SHARED_DATA = REPOSITORY.parent / "shared" / "data"
# name: (archive, model, image size, batch size, crop area min); the
# settings of the shipped checkpoints' runs.
CONFIGURATIONS = {
    "imagenette": ("imagenette2-224.tar", "LambdaResNet50", 96, 64, 0.25),
    "cifar10": ("cifar10.tar.gz", "LambdaResNet26Cifar", 32, 128, 0.35),
}


def dataset_folder(name, folder=None):
    """The folder of `name` (split/class/image), unpacked into data/ if needed."""
    if folder:
        return Path(folder)
    target = REPOSITORY / "data" / name
    if not (target / "train").is_dir():
        archive = SHARED_DATA / CONFIGURATIONS[name][0]
        print(f"unpacking {archive} into {target}", flush=True)
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
    return target


class _EpochTimes(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def _fit_rate(model, dataset, steps, epochs, batch_size):
    """Median images/s of the epochs of `steps` steps after the first of
    `epochs` (the first fills the iterator's prefetch buffers)."""
    times = _EpochTimes()
    model.fit(
        dataset, steps_per_epoch=steps, epochs=epochs, callbacks=[times], verbose=0
    )
    return batch_size * steps / statistics.median(times.seconds[1:])


def measure(name, folder, steps, rounds):
    """The figures of one dataset (see the module docstring)."""
    _, model_name, image_size, batch_size, crop_area_min = CONFIGURATIONS[name]
    source = data.load_source(str(folder), "train")
    recipe = RECIPES["paper350"].override(
        image_size=image_size, randaugment_magnitude=0, crop_area_min=crop_area_min
    )
    pipeline = data.make_pipeline(
        source,
        image_size,
        batch_size,
        training=True,
        crop_area_range=(recipe.crop_area_min, 1.0),
        cache=True,
    ).repeat()

    start = time.perf_counter()
    batches_per_pass = source.num_examples // batch_size
    for _ in pipeline.take(batches_per_pass):
        pass
    first_pass = time.perf_counter() - start

    start = time.perf_counter()
    for _ in pipeline.take(steps * rounds):
        pass
    alone = batch_size * steps * rounds / (time.perf_counter() - start)

    fixed_batch = next(iter(pipeline))
    fixed = tf.data.Dataset.from_tensors(fixed_batch).repeat()
    model = trainer.build_model(
        model_name, source.num_classes, image_size, recipe=recipe
    )
    optimizer = trainer.make_optimizer(recipe, batch_size, steps, model)
    trainer.compile_model(model, optimizer, recipe.label_smoothing)
    rates = {"pipeline": [], "fixed batch": []}
    for _ in range(rounds):
        rates["fixed batch"].append(_fit_rate(model, fixed, steps, 2, batch_size))
        rates["pipeline"].append(_fit_rate(model, pipeline, steps, 2, batch_size))
    pipeline_rate = statistics.median(rates["pipeline"])
    fixed_rate = statistics.median(rates["fixed batch"])
    return {
        "dataset": name,
        "folder": str(folder),
        "examples": source.num_examples,
        "model": model_name,
        "image_size": image_size,
        "batch_size": batch_size,
        "steps_per_epoch_timed": steps,
        "rounds": rounds,
        "first_pass_seconds": round(first_pass, 1),
        "pipeline_alone_images_per_second": round(alone, 2),
        "fixed_batch_images_per_second": round(fixed_rate, 2),
        "pipeline_images_per_second": round(pipeline_rate, 2),
        "overhead": round(1 - pipeline_rate / fixed_rate, 3),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few steps each")
    parser.add_argument("--imagenette", help="folder of the Imagenette splits")
    parser.add_argument("--cifar10", help="folder of the CIFAR-10 splits")
    parser.add_argument("--only", nargs="+", choices=sorted(CONFIGURATIONS))
    args = parser.parse_args()
    # Steps per epoch and rounds: each round fits 2 epochs (the first
    # untimed) on each input, so a full run is 40 training steps per dataset
    # (Imagenette's took 7.7-9.3 s each here).
    steps, rounds = (2, 1) if args.quick else (5, 2)
    results = []
    for name in args.only or CONFIGURATIONS:
        folder = dataset_folder(name, getattr(args, name))
        result = measure(name, folder, steps, rounds)
        print(result, flush=True)
        results.append(result)
    headers = [
        "dataset",
        "model, size, batch",
        "fixed batch img/s",
        "pipeline img/s",
        "overhead",
        "pipeline alone img/s",
        "first pass s",
    ]
    rows = [
        [
            r["dataset"],
            f"{r['model']}, {r['image_size']} px, {r['batch_size']}",
            r["fixed_batch_images_per_second"],
            r["pipeline_images_per_second"],
            f"{100 * r['overhead']:.1f}%",
            r["pipeline_alone_images_per_second"],
            r["first_pass_seconds"],
        ]
        for r in results
    ]
    table = markdown_table(headers, rows)
    print(table)
    write_report(
        "input_pipeline",
        {
            "title": "Input pipeline: training images/s against a fixed batch",
            "quick": args.quick,
            "results": results,
            "markdown": table,
        },
    )


if __name__ == "__main__":
    main()
