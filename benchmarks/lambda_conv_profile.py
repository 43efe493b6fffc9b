"""Profile of the lambda convolution's backward pass on TensorFlow (CPU).

    python -m benchmarks.lambda_conv_profile          # about 1 minute

The lambda convolution (Eq. 3) of a high-resolution layer (56x56 input,
batch 8, |v| = 16, |k| = 16, scope r) is a 3-D convolution (the value depth as
a third spatial axis with a one-tap kernel) of one channel into |k| with an
r x r x 1 kernel. Its forward pass runs at close to the machine's
multiply-add rate, but its two gradients are separate TensorFlow kernels:
`Conv3DBackpropInputV2` (|k| channels into one, the gradient of the values)
and `Conv3DBackpropFilterV2` (the gradient of the relative position
embeddings). This times the three ops alone, alternately,
for r = 9 and r = 23, with their multiply-add rates, to show where a
generic forward+backward time goes, and the whole backward pass with those
generic gradients against lambda_keras' custom ones.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import interleaved_medians  # noqa: E402
from benchmarks.common import markdown_table  # noqa: E402
from benchmarks.common import write_report  # noqa: E402

BATCH, SIZE, DIM_V, DIM_K = 8, 56, 16, 16
STRIDES = [1, 1, 1, 1, 1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else args.repeats

    import numpy as np
    import tensorflow as tf

    from lambda_keras.ops import lambda_convolution

    rng = np.random.default_rng(0)
    rows, results = [], []
    for scope in (9, 23):
        # The layout of `lambda_keras.ops.lambda_convolution`: values
        # (b, H, W, v, u) and kernel (r, r, 1, u, k), a 3-D convolution.
        def tensor(*shape):
            return tf.constant(rng.standard_normal(shape), dtype="float32")

        values = tensor(BATCH, SIZE, SIZE, DIM_V, 1)
        kernel = tensor(scope, scope, 1, 1, DIM_K)
        upstream = tensor(BATCH, SIZE, SIZE, DIM_V, DIM_K)
        ops = {
            "forward (Conv3D)": tf.function(
                lambda v=values, k=kernel: tf.raw_ops.Conv3D(
                    input=v, filter=k, strides=STRIDES, padding="SAME"
                )
            ),
            "values gradient (Conv3DBackpropInputV2)": tf.function(
                lambda v=values, k=kernel, g=upstream: tf.raw_ops.Conv3DBackpropInputV2(
                    input_sizes=tf.shape(v),
                    filter=k,
                    out_backprop=g,
                    strides=STRIDES,
                    padding="SAME",
                )
            ),
            "embeddings gradient (Conv3DBackpropFilterV2)": tf.function(
                lambda v=values, k=kernel, g=upstream: (
                    tf.raw_ops.Conv3DBackpropFilterV2(
                        input=v,
                        filter_sizes=tf.shape(k),
                        out_backprop=g,
                        strides=STRIDES,
                        padding="SAME",
                    )
                )
            ),
        }
        # The whole backward pass, TensorFlow's generic gradients against
        # lambda_keras' (`lambda_convolution`'s custom gradients: a
        # depthwise convolution for the values, a valid convolution for the
        # embeddings).
        table = tf.reshape(kernel, (scope, scope, DIM_K, 1))
        grid = values
        lambdas_upstream = tf.reshape(
            tf.transpose(upstream, (0, 1, 2, 4, 3)), (BATCH, SIZE * SIZE, DIM_K, DIM_V)
        )

        def backward(convolve, v=grid, t=table, g=lambdas_upstream):
            with tf.GradientTape() as tape:
                tape.watch([v, t])
                lambdas = convolve(v, t)
            return tape.gradient(lambdas, [v, t], output_gradients=g)

        def generic(v, t):
            conv_kernel = tf.expand_dims(tf.transpose(t, (0, 1, 3, 2)), 2)
            lambdas = tf.raw_ops.Conv3D(
                input=v, filter=conv_kernel, strides=STRIDES, padding="SAME"
            )
            lambdas = tf.reshape(lambdas, (BATCH, SIZE * SIZE, DIM_V, DIM_K))
            return tf.transpose(lambdas, (0, 1, 3, 2))

        ops["backward, TensorFlow's generic gradients (both)"] = tf.function(
            lambda: backward(generic)
        )
        ops["backward, lambda_keras' gradients (both)"] = tf.function(
            lambda: backward(lambda_convolution)
        )
        medians = interleaved_medians(
            {
                name: (lambda op=op: [t.numpy() for t in tf.nest.flatten(op())])
                for name, op in ops.items()
            },
            repeats=repeats,
        )
        multiply_adds = BATCH * DIM_V * SIZE * SIZE * DIM_K * scope * scope
        forward = medians["forward (Conv3D)"]
        for name, seconds in medians.items():
            work = multiply_adds * (2 if "(both)" in name else 1)
            rate = work / seconds / 1e9
            rows.append(
                [
                    scope,
                    name,
                    f"{1000 * seconds:.1f}",
                    f"{seconds / forward:.1f}",
                    f"{2 * rate:.1f}",
                ]
            )
            results.append({"scope": scope, "op": name, "seconds": seconds})
            print(" | ".join(str(cell) for cell in rows[-1]), flush=True)
    headers = ["scope", "op", "ms", "x forward", "GFLOP/s"]
    table = markdown_table(headers, rows)
    note = (
        f"Lambda convolution of a {SIZE}x{SIZE} input, batch {BATCH}, "
        f"|v| = {DIM_V}, |k| = {DIM_K}; each of the first three ops does the "
        "same multiply-adds (b |v| n |k| r^2). The last two rows are the "
        "whole backward pass (both gradients): TensorFlow's generic "
        "convolution gradients (the two ops above) against the custom "
        "gradients of `lambda_keras.ops.lambda_convolution` (a depthwise "
        "convolution for the values, a valid convolution for the "
        "embeddings), which the layer uses."
    )
    print()
    print(table)
    write_report(
        "lambda_conv_profile",
        {
            "title": "Profile: the lambda convolution's gradients on TensorFlow",
            "markdown": note + "\n\n" + table,
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
