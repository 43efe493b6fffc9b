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
  format (no torch.compile), and with one thread (PyTorch's OpenMP pool
  suffers most when a shared machine is oversubscribed: compare it with the
  all-cores row to see how much of a gap is contention).

TensorFlow and PyTorch run in this one process with all cores each
(`torch.set_num_threads(os.cpu_count())`; TensorFlow's default thread pools),
and are timed alternately, round by round (`interleaved_medians`).
Writes benchmarks/results/model_vs_timm.json.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import timm  # noqa: E402
import torch  # noqa: E402

from benchmarks.common import interleaved_medians  # noqa: E402
from benchmarks.common import markdown_table  # noqa: E402
from benchmarks.common import write_report  # noqa: E402
from lambda_keras.applications import LambdaResNet26T  # noqa: E402

REFERENCE = "timm, torch.no_grad"
OURS = "ours, tf.function"
TARGET = 1.25


def contenders(batch, size):
    """Name -> (callable running one batch, framework detail)."""
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (batch, size, size, 3)).astype("float32")

    keras.utils.set_random_seed(0)
    ours = LambdaResNet26T(weights=None, input_shape=(size, size, 3))
    tf_images = tf.constant(images)
    forward = tf.function(lambda x: ours(x, training=False), autograph=False)
    forward_xla = tf.function(
        lambda x: ours(x, training=False), autograph=False, jit_compile=True
    )

    torch.manual_seed(0)
    peer = timm.create_model("lambda_resnet26t", pretrained=False).eval()
    peer_last = timm.create_model("lambda_resnet26t", pretrained=False).eval()
    peer_last.load_state_dict(peer.state_dict())
    # The lambda layers' Conv3d weights are rank 5: only the 2-D
    # convolutions take the channels_last format.
    for module in peer_last.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.to(memory_format=torch.channels_last)
    torch_images = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    torch_images_last = torch_images.contiguous(memory_format=torch.channels_last)

    def timm_no_grad():
        with torch.no_grad():
            return peer(torch_images).numpy()

    def timm_inference_mode():
        with torch.inference_mode():
            return peer(torch_images).numpy()

    def timm_one_thread():
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return timm_no_grad()
        finally:
            torch.set_num_threads(threads)

    def timm_channels_last():
        with torch.inference_mode():
            return peer_last(torch_images_last).numpy()

    runs = {
        REFERENCE: timm_no_grad,
        OURS: lambda: forward(tf_images).numpy(),
        "ours, tf.function jit_compile=True": lambda: forward_xla(tf_images).numpy(),
        "timm, torch.inference_mode": timm_inference_mode,
        "timm, inference_mode + channels_last": timm_channels_last,
        "timm, torch.no_grad, 1 thread": timm_one_thread,
    }
    parameters = {
        "ours_trainable": int(sum(np.prod(w.shape) for w in ours.trainable_weights)),
        "ours_all_weights": int(ours.count_params()),
        "timm_parameters": int(sum(p.numel() for p in peer.parameters())),
        "timm_buffers": int(sum(b.numel() for b in peer.buffers())),
    }
    return runs, parameters


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16, help="images per call")
    parser.add_argument("--size", type=int, default=256, help="image size (px)")
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds")
    parser.add_argument(
        "--quick", action="store_true", help="64 px, batch 2, 2 rounds (smoke run)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.size, args.repeats = 2, 64, 2

    torch.set_num_threads(os.cpu_count())
    runs, parameters = contenders(args.batch, args.size)
    tf_threads = tf.config.threading.get_intra_op_parallelism_threads()
    threads = {
        "torch": torch.get_num_threads(),
        "tensorflow_intra_op": tf_threads or os.cpu_count(),
        "tensorflow_intra_op_setting": tf_threads,
    }
    print(
        f"batch {args.batch}, {args.size}px, threads {threads}, "
        f"parameters {parameters}",
        flush=True,
    )
    seconds = interleaved_medians(runs, repeats=args.repeats, warmup=2)

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
    statistics = parameters["ours_all_weights"] - parameters["ours_trainable"]
    verdict = "met" if ratio >= TARGET else "missed"
    markdown = (
        f"Inference, float32, batch {args.batch}, {args.size}x{args.size}, "
        f"{threads['torch']} torch threads, {threads['tensorflow_intra_op']} "
        f"TensorFlow intra-op threads, medians of {args.repeats} interleaved "
        "rounds.\n\n"
        f"{table}\n\n"
        f"Same architecture: {parameters['ours_trainable']:,} trainable "
        f"parameters in ours, {parameters['timm_parameters']:,} in timm "
        f"(Keras also counts the {statistics:,} "
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
