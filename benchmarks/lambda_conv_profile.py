"""Profile of the lambda convolution: its formulations and its gradients.

    KERAS_BACKEND=tensorflow python -m benchmarks.lambda_conv_profile  # ~3 min
    KERAS_BACKEND=jax python -m benchmarks.lambda_conv_profile
    KERAS_BACKEND=torch python -m benchmarks.lambda_conv_profile
    python -m benchmarks.lambda_conv_profile --quick   # 2 shapes, 1 round,
                                                       # formulations printed only

Formulations (every backend). The lambda convolution (Eq. 3) has three
formulations with the same result (`lambda_keras.ops.lambda_convolution`):
a Conv3D with the value depth as a 1-tap third spatial axis ("conv3d"), a
Conv2D with the value depth folded into the batch ("conv2d"), and a
depthwise convolution of the v u channels with channel multiplier k
("depthwise"). This times each one's forward pass and forward+backward
pass (the vector-Jacobian product for the values and the kernel), the
latter with the backend's generic gradients and with lambda_keras' custom
ones (`_lambda_convolution_gradients`), on the shapes of the LambdaResNet
stages at 224 px (`SHAPES`, scope 23, |k| = 16), all contenders of a shape
timed alternately, in the backend's training mode: `tf.function` on
TensorFlow (Keras' `jit_compile="auto"` is off on CPUs), `jax.jit` on JAX,
eager on PyTorch. Ratios are to the layer before the formulations
(conv3d, custom gradients). Writes
benchmarks/results/lambda_conv_profile_<backend>.json on a CPU, whose
`recommend` summary is the CPU rows of
`lambda_keras.ops.CONV_FORMULATION_TABLE` and `CUSTOM_GRADIENT_TABLE`
(lambda_conv_profile_<backend>_<platform>.json on a GPU or TPU).

Gradients (TensorFlow only). The 3-D formulation of a high-resolution
layer (56x56 input, batch 8, |v| = 16, |k| = 16, scope r) is a convolution
of one channel into |k| with an r x r x 1 kernel. Its forward pass runs at
close to the machine's multiply-add rate, but its two gradients are
separate TensorFlow kernels: `Conv3DBackpropInputV2` (|k| channels into
one, the gradient of the values) and `Conv3DBackpropFilterV2` (the gradient
of the relative position embeddings). This times the three ops alone,
alternately, for r = 9 and r = 23, with their multiply-add rates, to show
where a generic forward+backward time goes, and the whole backward pass
with those generic gradients against lambda_keras' custom ones. Writes
benchmarks/results/lambda_conv_profile.json.
"""

import argparse
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import interleaved_medians  # noqa: E402
from benchmarks.common import markdown_table  # noqa: E402
from benchmarks.common import write_report  # noqa: E402

# name -> (spatial shape, |v|, |u|): the lambda layers of a LambdaResNet at
# 224 px (c3: 28x28, c4: 14x14, |v| = 64 with 4 heads of 256 channels), a
# |u| = 4 layer, and a sequence of as many positions as c3.
SHAPES = {
    "c3 28x28, |v| 64, |u| 1": ((28, 28), 64, 1),
    "c4 14x14, |v| 64, |u| 1": ((14, 14), 64, 1),
    "c4 14x14, |v| 64, |u| 4": ((14, 14), 64, 4),
    "sequence 784, |v| 64, |u| 1": ((784,), 64, 1),
}
FORMULATION_SCOPE, FORMULATION_DIM_K = 23, 16
QUICK_SHAPES = ("c4 14x14, |v| 64, |u| 1", "sequence 784, |v| 64, |u| 1")
# Today's layer before the formulations, the reference of the ratios.
REFERENCE = ("conv3d", "custom")
# A contender whose call takes longer is timed once, not alternately.
SLOW_CALL_SECONDS = 10.0
# Custom gradients are kept where they take under this many times the
# generic ones' forward+backward time: measurably faster, beyond the noise
# of a shared machine.
CUSTOM_GRADIENT_MARGIN = 0.9
BATCH, SIZE, DIM_V, DIM_K = 8, 56, 16, 16
STRIDES = [1, 1, 1, 1, 1]


def _backend_passes(convolve, values, kernel, upstream):
    """Forward and forward+backward callables of `convolve` on this backend.

    Each call runs to completion with its results fetched to the host. The
    forward+backward call returns the lambdas too (a layer uses them), so
    that no compiler drops the forward pass from it, with the
    vector-Jacobian product with `upstream` for the values and the kernel.
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        values, kernel, upstream = map(tf.constant, (values, kernel, upstream))

        @tf.function(autograph=False)
        def forward():
            return convolve(values, kernel)

        @tf.function(autograph=False)
        def forward_backward():
            with tf.GradientTape() as tape:
                tape.watch([values, kernel])
                lambdas = convolve(values, kernel)
            gradients = tape.gradient(
                lambdas, [values, kernel], output_gradients=upstream
            )
            return [lambdas, *gradients]

        return (
            lambda: forward().numpy(),
            lambda: [t.numpy() for t in forward_backward()],
        )
    if backend == "jax":
        import jax

        values, kernel, upstream = map(jax.numpy.asarray, (values, kernel, upstream))

        def lambdas_and_gradients(v, k, g):
            lambdas, vector_jacobian = jax.vjp(convolve, v, k)
            return lambdas, vector_jacobian(g)

        forward = jax.jit(convolve)
        forward_backward = jax.jit(lambdas_and_gradients)
        return (
            lambda: jax.block_until_ready(forward(values, kernel)),
            lambda: jax.block_until_ready(forward_backward(values, kernel, upstream)),
        )
    import torch

    torch.set_num_threads(os.cpu_count())
    values, kernel, upstream = map(torch.from_numpy, (values, kernel, upstream))

    def forward():
        with torch.no_grad():
            return convolve(values, kernel).numpy()

    def forward_backward():
        inputs = [values.clone().requires_grad_(True), kernel.clone().requires_grad_()]
        lambdas = convolve(*inputs)
        lambdas.backward(upstream)
        return [lambdas.detach().numpy()] + [tensor.grad.numpy() for tensor in inputs]

    return forward, forward_backward


def time_formulations(spatial_shape, dim_v, dim_u, batch, repeats):
    """Median seconds of every formulation and gradient, timed alternately.

    Returns:
        ({(formulation, pass, gradients): seconds}, the keys timed once),
        with pass "forward" (and gradients None) or "forward+backward"
        (gradients "generic" or "custom").
    """
    import numpy as np

    from lambda_keras.ops import CONV_FORMULATIONS
    from lambda_keras.ops.lambda_interaction import _CUSTOM_GRADIENT_CONVOLUTIONS
    from lambda_keras.ops.lambda_interaction import _convolve

    rng = np.random.default_rng(0)
    rank = len(spatial_shape)
    values = rng.standard_normal((batch, *spatial_shape, dim_v, dim_u))
    kernel = rng.standard_normal(
        (FORMULATION_SCOPE,) * rank + (FORMULATION_DIM_K, dim_u)
    )
    upstream = rng.standard_normal(
        (batch, math.prod(spatial_shape), FORMULATION_DIM_K, dim_v)
    )
    values, kernel, upstream = (
        array.astype("float32") for array in (values, kernel, upstream)
    )
    contenders = {}
    for formulation in CONV_FORMULATIONS:
        gradients = {
            "generic": lambda v, k, f=formulation: _convolve(v, k, f),
            "custom": _CUSTOM_GRADIENT_CONVOLUTIONS[formulation],
        }
        for name, convolve in gradients.items():
            forward, forward_backward = _backend_passes(
                convolve, values, kernel, upstream
            )
            if name == "generic":
                contenders[formulation, "forward", None] = forward
            contenders[formulation, "forward+backward", name] = forward_backward
    # One call each to compile, then one timed: a contender slower than
    # SLOW_CALL_SECONDS keeps that time (a generic gradient can be 100x
    # slower) and the others are timed alternately.
    once = {}
    for name, run in contenders.items():
        run()
        start = time.perf_counter()
        run()
        once[name] = time.perf_counter() - start
    slow = {name: once[name] for name in once if once[name] > SLOW_CALL_SECONDS}
    timed = {name: run for name, run in contenders.items() if name not in slow}
    medians = interleaved_medians(timed, repeats=repeats, warmup=0)
    return {**medians, **slow}, set(slow)


def recommend(results):
    """The cost-table entries that `results` measure, over the image shapes.

    Per formulation, the geometric means over the 2-D shapes of: custom
    over generic forward+backward time (custom gradients are kept below
    `CUSTOM_GRADIENT_MARGIN`), forward over conv3d's, and forward+backward
    with the kept gradients over the reference's (conv3d, custom).

    Args:
        results: the `results` entries of `profile_formulations`.

    Returns:
        ({formulation: {"custom_over_generic", "gradients", "forward",
        "forward_backward"}}, the fastest formulation by forward+backward).
    """

    def mean(ratios):
        return math.exp(sum(math.log(ratio) for ratio in ratios) / len(ratios))

    images = [result for result in results if len(result["spatial_shape"]) == 2]
    reference = {
        result["shape"]: result
        for result in images
        if result["formulation"] == REFERENCE[0]
    }
    summary = {}
    for formulation in dict.fromkeys(result["formulation"] for result in images):
        rows = [result for result in images if result["formulation"] == formulation]
        custom_over_generic = mean(
            [
                row["forward_backward_seconds"]["custom"]
                / row["forward_backward_seconds"]["generic"]
                for row in rows
            ]
        )
        gradients = (
            "custom" if custom_over_generic < CUSTOM_GRADIENT_MARGIN else "generic"
        )
        summary[formulation] = {
            "custom_over_generic": custom_over_generic,
            "gradients": gradients,
            "forward": mean(
                [
                    row["forward_seconds"] / reference[row["shape"]]["forward_seconds"]
                    for row in rows
                ]
            ),
            "forward_backward": mean(
                [
                    row["forward_backward_seconds"][gradients]
                    / reference[row["shape"]]["forward_backward_seconds"][REFERENCE[1]]
                    for row in rows
                ]
            ),
        }
    fastest = min(summary, key=lambda name: summary[name]["forward_backward"])
    return summary, fastest


def profile_formulations(batch, repeats, shapes, command_arguments, write=True):
    """Times every formulation on this backend; writes its report.

    With `write=False` (a --quick smoke run) the tables are printed only:
    the reports are the measurements the cost table is checked against.
    """
    import keras

    from lambda_keras.ops import CONV_FORMULATIONS
    from lambda_keras.ops import backend_platform

    backend = keras.backend.backend()
    platform = backend_platform(backend)
    results = []
    for shape_name in shapes:
        spatial_shape, dim_v, dim_u = SHAPES[shape_name]
        seconds, timed_once = time_formulations(
            spatial_shape, dim_v, dim_u, batch, repeats
        )
        for formulation in CONV_FORMULATIONS:
            results.append(
                {
                    "shape": shape_name,
                    "spatial_shape": list(spatial_shape),
                    "dim_v": dim_v,
                    "dim_u": dim_u,
                    "formulation": formulation,
                    "forward_seconds": seconds[formulation, "forward", None],
                    "forward_backward_seconds": {
                        gradients: seconds[formulation, "forward+backward", gradients]
                        for gradients in ("generic", "custom")
                    },
                    "timed_once": sorted(
                        key[2] or key[1] for key in timed_once if key[0] == formulation
                    ),
                }
            )
            print(results[-1], flush=True)
    images = any(len(SHAPES[name][0]) == 2 for name in shapes)
    summary, fastest = recommend(results) if images else ({}, None)
    markdown = formulations_markdown(backend, platform, batch, results)
    print()
    print(markdown)
    if not write:
        return
    # The CPU reports fill the cost table's CPU rows; others keep their own.
    suffix = backend if platform == "cpu" else f"{backend}_{platform}"
    write_report(
        f"lambda_conv_profile_{suffix}",
        {
            "title": f"The lambda convolution's formulations on {backend} ({platform})",
            "command": f"KERAS_BACKEND={backend} python -m "
            f"benchmarks.lambda_conv_profile {command_arguments}",
            "markdown": markdown,
            "backend": backend,
            "platform": platform,
            "batch": batch,
            "fastest": fastest,
            "summary": summary,
            "results": results,
        },
    )


def formulations_markdown(backend, platform, batch, results):
    """The report's tables: every measurement, then `recommend`'s summary."""
    from lambda_keras.ops import CONV_FORMULATIONS
    from lambda_keras.ops import conv_formulation
    from lambda_keras.ops import uses_custom_gradients

    def milliseconds(result, key, seconds):
        mark = " (once)" if key in result["timed_once"] else ""
        return f"{1000 * seconds:.1f}{mark}"

    reference = {
        result["shape"]: result
        for result in results
        if result["formulation"] == REFERENCE[0]
    }
    rows = []
    for result in results:
        forward = result["forward_seconds"]
        generic, custom = (
            result["forward_backward_seconds"][name] for name in ("generic", "custom")
        )
        base = reference[result["shape"]]
        base_backward = base["forward_backward_seconds"][REFERENCE[1]]
        rows.append(
            [
                result["shape"],
                result["formulation"],
                milliseconds(result, "forward", forward),
                f"{forward / base['forward_seconds']:.2f}",
                milliseconds(result, "generic", generic),
                milliseconds(result, "custom", custom),
                f"{generic / base_backward:.2f}",
                f"{custom / base_backward:.2f}",
            ]
        )
    table = markdown_table(
        [
            "shape",
            "formulation",
            "fwd ms",
            "fwd / conv3d",
            "fwd+bwd generic ms",
            "fwd+bwd custom ms",
            "generic / conv3d custom",
            "custom / conv3d custom",
        ],
        rows,
    )
    parts = [
        f"{backend} on {platform}, batch {batch}, scope {FORMULATION_SCOPE}, "
        f"|k| = {FORMULATION_DIM_K}: forward and forward+backward (the "
        "gradients of the values and the kernel) of the lambda convolution "
        "in each formulation, with the backend's generic gradients and with "
        'lambda_keras\' custom ones, timed alternately ("once": slower than '
        f"{SLOW_CALL_SECONDS:.0f} s, timed once). Ratios are to conv3d's "
        "forward, and to conv3d's forward+backward with custom gradients "
        "(the layer before the formulations).",
        table,
    ]
    if any(len(result["spatial_shape"]) == 2 for result in results):
        summary, fastest = recommend(results)
        custom = [
            name
            for name in CONV_FORMULATIONS
            if uses_custom_gradients(name, backend, platform)
        ]
        parts.append(
            "Geometric means over the image shapes: custom gradients are kept "
            f"where they take under {CUSTOM_GRADIENT_MARGIN} times the generic "
            "ones' time; the fastest forward+backward with the kept gradients "
            f"is the cost table's row: **{fastest}**. lambda_keras uses now: "
            f"{conv_formulation(backend, platform)}, custom gradients for "
            f"{', '.join(custom) or 'none'}."
        )
        parts.append(
            markdown_table(
                [
                    "formulation",
                    "custom / generic",
                    "gradients kept",
                    "fwd / conv3d",
                    "fwd+bwd / conv3d custom",
                ],
                [
                    [
                        name,
                        f"{entry['custom_over_generic']:.2f}",
                        entry["gradients"],
                        f"{entry['forward']:.2f}",
                        f"{entry['forward_backward']:.2f}",
                    ]
                    for name, entry in summary.items()
                ],
            )
        )
    return "\n\n".join(parts)


def profile_gradients(repeats):
    """TensorFlow's Conv3D ops and both backward passes; writes the report."""
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1, help="formulations' batch")
    parser.add_argument(
        "--quick", action="store_true", help="2 shapes, batch 1, 1 round"
    )
    parser.add_argument(
        "--only",
        choices=("formulations", "gradients"),
        help="one part (gradients: TensorFlow only)",
    )
    args = parser.parse_args(argv)
    repeats, batch = (1, 1) if args.quick else (args.repeats, args.batch)
    shapes = QUICK_SHAPES if args.quick else tuple(SHAPES)

    import keras

    if args.only != "gradients":
        arguments = sys.argv[1:] if argv is None else argv
        profile_formulations(
            batch, repeats, shapes, " ".join(arguments), write=not args.quick
        )
    if args.only == "gradients" or (
        args.only is None and keras.backend.backend() == "tensorflow"
    ):
        profile_gradients(repeats)


if __name__ == "__main__":
    main()
