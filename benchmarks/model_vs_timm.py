"""Our LambdaResNet26T against timm's `lambda_resnet26t`: inference throughput.

    python -m benchmarks.model_vs_timm            # 256 px, batch 16 (3-4 min)
    python -m benchmarks.model_vs_timm --quick    # 64 px, batch 2, 2 rounds

The same network (timm's ByobNet layout, 9x9 local position lambdas, same
trainable parameter count), random weights, float32, at 256x256 with batch
16 by default (timm's evaluation size):

- ours: `LambdaResNet26T(weights=None)` on the TensorFlow backend,
  `model(x, training=False)` in a `tf.function`, and the same under XLA
  (`jit_compile=True`);
- timm: `timm.create_model("lambda_resnet26t", pretrained=False).eval()`,
  eager PyTorch in float32 under `torch.no_grad()` (the reference), and for
  information under `torch.inference_mode()` and with channels_last memory
  format (no torch.compile).

Each framework runs in its own fresh worker process on all cores
(`torch.set_num_threads(os.cpu_count())`; TensorFlow's default thread
pools): in one process the two thread pools slow each other down (timm ran
1.6x faster on one thread than on two beside TensorFlow). The workers
alternate, TensorFlow then PyTorch, for `--rounds` rounds; inside a worker
its variants are timed alternately (`interleaved_medians`), and a time is
the median over rounds. Writes benchmarks/results/model_vs_timm.json.
"""

import argparse
import json
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks.common import interleaved_medians  # noqa: E402
from benchmarks.common import markdown_table  # noqa: E402
from benchmarks.common import run_worker  # noqa: E402
from benchmarks.common import write_report  # noqa: E402

REFERENCE = "timm, torch.no_grad"
OURS = "ours, tf.function"
TARGET = 1.25
FRAMEWORKS = ("tensorflow", "torch")


def _images(batch, size):
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, (batch, size, size, 3)).astype("float32")


def tensorflow_contenders(batch, size):
    """Our model's variants: name -> callable, and its parameter counts."""
    import keras
    import tensorflow as tf

    from lambda_keras.applications import LambdaResNet26T

    keras.utils.set_random_seed(0)
    ours = LambdaResNet26T(weights=None, input_shape=(size, size, 3))
    images = tf.constant(_images(batch, size))
    forward = tf.function(lambda x: ours(x, training=False), autograph=False)
    forward_xla = tf.function(
        lambda x: ours(x, training=False), autograph=False, jit_compile=True
    )
    runs = {
        OURS: lambda: forward(images).numpy(),
        "ours, tf.function jit_compile=True": lambda: forward_xla(images).numpy(),
    }
    parameters = {
        "ours_trainable": int(sum(np.prod(w.shape) for w in ours.trainable_weights)),
        "ours_all_weights": int(ours.count_params()),
    }
    threads = tf.config.threading.get_intra_op_parallelism_threads()
    return runs, parameters, {"tensorflow_intra_op": threads or os.cpu_count()}


def torch_contenders(batch, size):
    """timm's model's variants: name -> callable, and its parameter counts."""
    import timm
    import torch

    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    peer = timm.create_model("lambda_resnet26t", pretrained=False).eval()
    peer_last = timm.create_model("lambda_resnet26t", pretrained=False).eval()
    peer_last.load_state_dict(peer.state_dict())
    # The lambda layers' Conv3d weights are rank 5: only the 2-D
    # convolutions take the channels_last format.
    for module in peer_last.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.to(memory_format=torch.channels_last)
    images = torch.from_numpy(
        np.ascontiguousarray(_images(batch, size).transpose(0, 3, 1, 2))
    )
    images_last = images.contiguous(memory_format=torch.channels_last)

    def no_grad():
        with torch.no_grad():
            return peer(images).numpy()

    def inference_mode():
        with torch.inference_mode():
            return peer(images).numpy()

    def channels_last():
        with torch.inference_mode():
            return peer_last(images_last).numpy()

    runs = {
        REFERENCE: no_grad,
        "timm, torch.inference_mode": inference_mode,
        "timm, inference_mode + channels_last": channels_last,
    }
    parameters = {
        "timm_parameters": int(sum(p.numel() for p in peer.parameters())),
        "timm_buffers": int(sum(b.numel() for b in peer.buffers())),
    }
    return runs, parameters, {"torch": torch.get_num_threads()}


def worker(framework, batch, size, repeats):
    """Times one framework's variants in this process; prints JSON."""
    build = tensorflow_contenders if framework == "tensorflow" else torch_contenders
    runs, parameters, threads = build(batch, size)
    seconds = interleaved_medians(runs, repeats=repeats, warmup=2)
    print(
        json.dumps({"seconds": seconds, "parameters": parameters, "threads": threads})
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16, help="images per call")
    parser.add_argument("--size", type=int, default=256, help="image size (px)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls")
    parser.add_argument("--rounds", type=int, default=3, help="worker rounds")
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    parser.add_argument(
        "--quick", action="store_true", help="64 px, batch 2, 1 round (smoke run)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.size, args.repeats, args.rounds = 2, 64, 2, 1
    if args.worker:
        worker(args.worker, args.batch, args.size, args.repeats)
        return

    measured, parameters, threads = {}, {}, {}
    for _ in range(args.rounds):
        for framework in FRAMEWORKS:
            run = run_worker(
                "benchmarks.model_vs_timm",
                [
                    f"--worker={framework}",
                    f"--batch={args.batch}",
                    f"--size={args.size}",
                    f"--repeats={args.repeats}",
                ],
            )
            if run["status"] != "ok":
                raise SystemExit(f"{framework} worker: {run}")
            for name, value in run["seconds"].items():
                measured.setdefault(name, []).append(value)
            parameters.update(run["parameters"])
            threads.update(run["threads"])
            print(framework, run["seconds"], flush=True)
    seconds = {name: statistics.median(values) for name, values in measured.items()}

    results = []
    for name, value in seconds.items():
        results.append(
            {
                "contender": name,
                "seconds": value,
                "images_per_second": args.batch / value,
                "ratio_to_timm": seconds[REFERENCE] / value,
            }
        )
    rows = [
        [
            r["contender"],
            f"{r['seconds'] * 1e3:.0f}",
            f"{r['images_per_second']:.1f}",
            f"{r['ratio_to_timm']:.2f}",
        ]
        for r in results
    ]
    table = markdown_table(
        ["contender", "ms / batch", "images/s", "ratio to timm (no_grad)"], rows
    )
    ratio = seconds[REFERENCE] / seconds[OURS]
    moving_statistics = parameters["ours_all_weights"] - parameters["ours_trainable"]
    verdict = "met" if ratio >= TARGET else "missed"
    markdown = (
        f"Inference, float32, batch {args.batch}, {args.size}x{args.size}, "
        f"{threads['torch']} torch threads, {threads['tensorflow_intra_op']} "
        f"TensorFlow intra-op threads, one process per framework, median over "
        f"{args.rounds} rounds of each process's median of {args.repeats} "
        "calls.\n\n"
        f"{table}\n\n"
        f"Same architecture: {parameters['ours_trainable']:,} trainable "
        f"parameters in ours, {parameters['timm_parameters']:,} in timm "
        f"(Keras also counts the {moving_statistics:,} "
        "BatchNorm moving statistics as weights; timm keeps them as "
        f"buffers).\n\nTarget: ours >= {TARGET}x timm: {ratio:.2f}x ({verdict})."
    )
    print("\n" + markdown)
    write_report(
        "model_vs_timm",
        {
            "title": "Model vs peer: LambdaResNet26T vs timm lambda_resnet26t",
            "batch": args.batch,
            "size": args.size,
            "repeats": args.repeats,
            "rounds": args.rounds,
            "threads": threads,
            "parameters": parameters,
            "results": results,
            "ratio": ratio,
            "target": TARGET,
            "markdown": markdown,
        },
    )


if __name__ == "__main__":
    main()
