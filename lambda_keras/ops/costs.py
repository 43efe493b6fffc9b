"""What the position term of the lambda interaction costs, and how to compute it.

`y^p_n = (sum_m E_nm V_m^T) q_n` (Eq. 4) has three methods, all equal:

- "queries_first": `w_nm = q_n E_nm` (b, n, h, m, u), then `sum_m w_nm V_m`;
- "lambdas_first": the position lambdas `sum_m E_nm V_m^T` (b, n, k, v), as
  the paper writes it, then applied to the queries;
- "convolution": the same lambdas by the lambda convolution of Eq. 3, for
  a local scope only, in one of three formulations (`CONV_FORMULATIONS`).

`position_method` picks one from the sizes; `lambda_interaction` runs it.
`conv_formulation` picks the convolution's formulation for the backend and
platform from a measured table (`CONV_FORMULATION_TABLE`).
"""

import math

# How the lambda convolution is computed (`lambda_keras.ops.lambda_convolution`):
# a Conv3D over (*S, v) with a 1-tap v axis; a Conv2D (Conv1D for sequences)
# with v folded into the batch; a depthwise convolution of the v u channels.
CONV_FORMULATIONS = ("conv3d", "conv2d", "depthwise")
# "conv" is the lambda convolution in the formulation of the cost table; the
# formulations name one explicitly.
IMPLEMENTATIONS = ("auto", "einsum", "conv") + CONV_FORMULATIONS
POSITION_METHODS = ("queries_first", "lambdas_first", "convolution")

# `implementation="auto"` uses the lambda convolution once the einsum needs
# more than this many times its multiply-adds (`position_costs`): where
# their forward+backward times cross (the geometric mean of the crossings
# in `python -m benchmarks.implementation_crossover`). It is measured, not
# 1, because the two run their multiply-adds at different rates. The paper
# switches above 85^2 positions on TPUs (Appendix D).
CONV_COST_RATIO = 4.7


def validate_implementation(implementation, scope):
    """Checks a layer's `implementation` against its `scope`.

    Args:
        implementation: one of `IMPLEMENTATIONS`.
        scope: odd local scope r, or None for a global context.

    Returns:
        `implementation`.
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"`implementation` must be one of {IMPLEMENTATIONS}. "
            f"Received: implementation={implementation!r}"
        )
    if implementation not in ("auto", "einsum") and scope is None:
        raise ValueError(
            f"`implementation={implementation!r}` (the lambda convolution) "
            "needs a local `scope`; use 'einsum' or 'auto' for a global "
            f"context. Received: implementation={implementation!r}, scope=None"
        )
    return implementation


def position_contraction_order(heads, dim_k, dim_v, dim_u, context):
    """The einsum order of the position term: the smaller intermediate.

    Queries first holds `|h| |m| |u|` numbers per query against `|k| |v|`
    for the position lambdas, and then also needs fewer multiply-adds
    (`|h| (|k| + |v|) < |k| |v|` for the paper's settings): small feature
    maps such as the c4 and c5 stages of a LambdaResNet. Otherwise, and
    whenever a size is unknown, the lambdas come first, which keeps the
    memory of the position term at the paper's Theta(bnkv).

    Args:
        heads: |h|, queries per position.
        dim_k: |k|, query/key depth.
        dim_v: |v|, value depth.
        dim_u: |u|, intra-depth.
        context: |m|, context positions (an int, or None / a tensor when
            unknown).

    Returns:
        "queries_first" or "lambdas_first".
    """
    sizes = (heads, dim_k, dim_v, dim_u, context)
    if all(isinstance(size, int) for size in sizes):
        if heads * context * dim_u < dim_k * dim_v:
            return "queries_first"
    return "lambdas_first"


def position_costs(spatial_shape, heads, dim_k, dim_v, dim_u=1, scope=None):
    """Multiply-adds per example of the position term, by method.

    The einsum methods write the relative embeddings E (n m k u numbers,
    counted as multiply-adds) and contract them; the lambda convolution
    computes n k v u r^rank products. Every method then applies its
    lambdas (or weights) to the n h queries.

    Args:
        spatial_shape: (L,) or (H, W) of the input, ints.
        heads: |h|.
        dim_k: |k|.
        dim_v: |v|.
        dim_u: |u|.
        scope: odd local scope r, or None for a global context (no
            convolution).

    Returns:
        {"queries_first": ..., "lambdas_first": ...} and, with a `scope`,
        "convolution": ....
    """
    positions = math.prod(spatial_shape)
    embeddings = positions * positions * dim_k * dim_u
    applied = positions * heads * dim_k * dim_v
    costs = {
        "queries_first": embeddings
        + positions * heads * positions * dim_u * (dim_k + dim_v),
        "lambdas_first": embeddings
        + positions * positions * dim_k * dim_v * dim_u
        + applied,
    }
    if scope is not None:
        taps = scope ** len(spatial_shape)
        costs["convolution"] = positions * dim_k * dim_v * dim_u * taps + applied
    return costs


def position_method(
    spatial_shape, heads, dim_k, dim_v, dim_u=1, scope=None, implementation="auto"
):
    """How the lambda layer computes its position term.

    Args:
        spatial_shape: (L,) or (H, W); entries may be None or tensors when
            unknown.
        heads: |h|.
        dim_k: |k|.
        dim_v: |v|.
        dim_u: |u|.
        scope: odd local scope r, or None for a global context.
        implementation: "einsum" (the einsum in the order of
            `position_contraction_order`), "conv" or one of
            `CONV_FORMULATIONS` (the lambda convolution; needs a `scope`) or
            "auto": the convolution for a local scope
            once the einsum needs more than `CONV_COST_RATIO` times its
            multiply-adds (`position_costs`), or when the size is unknown.

    Returns:
        One of `POSITION_METHODS`.
    """
    validate_implementation(implementation, scope)
    if scope is None:
        implementation = "einsum"
    if implementation == "conv" or implementation in CONV_FORMULATIONS:
        return "convolution"
    known = all(isinstance(size, int) for size in spatial_shape)
    context = math.prod(spatial_shape) if known else None
    order = position_contraction_order(heads, dim_k, dim_v, dim_u, context)
    if implementation == "einsum":
        return order
    if not known:
        return "convolution"
    costs = position_costs(spatial_shape, heads, dim_k, dim_v, dim_u, scope)
    if costs[order] > CONV_COST_RATIO * costs["convolution"]:
        return "convolution"
    return order


# The formulation of the lambda convolution that `implementation="auto"`
# and "conv" use, by (Keras backend, platform). Every formulation gives the
# same lambdas from the same kernel (the layer's weights do not depend on
# it); they differ in speed only.
#
# CPU rows: measured, the fastest forward+backward (with the gradients of
# `CUSTOM_GRADIENT_TABLE`), geometric mean over the LambdaResNet shapes at
# 224 px (28x28 and 14x14, |v| = 64, |u| = 1 and 4, scope 23, |k| = 16) of
# `KERAS_BACKEND=<backend> python -m benchmarks.lambda_conv_profile`
# (benchmarks/results/lambda_conv_profile_<backend>.json, 2-core AMD EPYC
# under load), as a ratio to the Conv3D with custom gradients that the
# layer used before: TensorFlow conv2d 0.49 (conv3d 1.00, depthwise 1.16),
# JAX conv2d 0.13 (conv3d 0.49, depthwise 0.96), PyTorch conv2d 0.36
# (conv3d 1.00, depthwise 0.49). For sequences (a 784-long one) the
# folded form is fastest on TensorFlow and JAX too, but PyTorch runs the
# 3-D form (a Conv2D over (L, v)) faster; the table is per backend and
# platform and follows the images.
#
# GPU rows: not measured here (no GPU); `python -m benchmarks.accelerator`
# times every formulation in whole models on one. The default is the
# folded Conv2D: a plain 2-D convolution of u channels into k over a batch
# of b v, the most common convolution shape, which cuDNN and XLA's
# autotuner serve best, whereas XLA has picked a 3-D convolution
# algorithm 30x slower than PyTorch's (openxla/xla#34273,
# jax-ml/jax#31662) and the depthwise form is a grouped convolution of
# v u groups with r x r taps (with JAX's generic gradients its
# forward+backward on the CPU took 6-74x the Conv3D's). TensorFlow on a
# GPU compiles with XLA too (Keras' `jit_compile="auto"`). timm's own
# layer is a Conv3d.
#
# TPU rows: the folded Conv2D as well. TPUs tile the batch and feature
# dimensions of a convolution to the matrix unit, so the 3-D form's one
# input channel is padded (pytorch/xla#3180: a one-channel Conv3d lost
# 27% of its time to padding); folding v into the batch gives the
# convolution a large batch instead.
CONV_FORMULATION_TABLE = {
    ("tensorflow", "cpu"): "conv2d",
    ("jax", "cpu"): "conv2d",
    ("torch", "cpu"): "conv2d",
    ("tensorflow", "gpu"): "conv2d",
    ("jax", "gpu"): "conv2d",
    ("torch", "gpu"): "conv2d",
    ("tensorflow", "tpu"): "conv2d",
    ("jax", "tpu"): "conv2d",
}
# Backends and platforms without a row (OpenVINO, NumPy, Apple's MPS, ...):
# the folded Conv2D, fastest on every CPU measured and a plain 2-D
# convolution everywhere.
DEFAULT_CONV_FORMULATION = "conv2d"

# The formulations that run with lambda_keras' custom gradients
# (`_lambda_convolution_gradients`: a depthwise convolution for the values,
# a "valid" convolution for the kernel) instead of the backend's own, by
# (backend, platform). CPU rows: where they took under 0.9 times the
# generic gradients' forward+backward time (`recommend` in
# benchmarks/lambda_conv_profile.py, geometric mean over the same shapes):
# TensorFlow conv3d 0.34 and depthwise 0.47, not conv2d (1.77: its
# generic Conv2D gradients are fast, unlike its Conv3D gradient with
# respect to a one-channel input); JAX depthwise 0.06, not conv3d (2.05)
# or conv2d (7.37); PyTorch conv3d 0.56 and depthwise 0.41, not conv2d
# (1.16: the custom ones win with |u| = 1, the generic ones with |u| = 4).
# GPUs and TPUs: none, so the compilers' autotuned convolution gradients;
# the custom kernel gradient is a convolution by an input-sized
# (*S, b v, k) kernel, a shape they are not tuned for.
CUSTOM_GRADIENT_TABLE = {
    ("tensorflow", "cpu"): ("conv3d", "depthwise"),
    ("jax", "cpu"): ("depthwise",),
    ("torch", "cpu"): ("conv3d", "depthwise"),
}


def validate_formulation(formulation):
    """Checks a lambda-convolution `formulation`; returns it."""
    if formulation not in CONV_FORMULATIONS:
        raise ValueError(
            f"`formulation` must be one of {CONV_FORMULATIONS}. "
            f"Received: formulation={formulation!r}"
        )
    return formulation


def conv_formulation(backend=None, platform=None):
    """The lambda convolution's formulation from `CONV_FORMULATION_TABLE`.

    Args:
        backend: a Keras backend name; defaults to the current one.
        platform: "cpu", "gpu" or "tpu"; defaults to where the backend
            runs (`backend_platform`).

    Returns:
        One of `CONV_FORMULATIONS`.
    """
    backend, platform = _backend_and_platform(backend, platform)
    return CONV_FORMULATION_TABLE.get((backend, platform), DEFAULT_CONV_FORMULATION)


def uses_custom_gradients(formulation, backend=None, platform=None):
    """Whether `formulation` runs with lambda_keras' custom gradients.

    Args:
        formulation: one of `CONV_FORMULATIONS`.
        backend: a Keras backend name; defaults to the current one.
        platform: defaults to where the backend runs (`backend_platform`).

    Returns:
        True where `CUSTOM_GRADIENT_TABLE` lists it.
    """
    backend, platform = _backend_and_platform(backend, platform)
    return formulation in CUSTOM_GRADIENT_TABLE.get((backend, platform), ())


def _backend_and_platform(backend, platform):
    """`backend` (default: Keras') and `platform` (default: its own)."""
    if backend is None:
        import keras

        backend = keras.backend.backend()
    if platform is None:
        platform = backend_platform(backend)
    return backend, platform


def backend_platform(backend):
    """Where `backend` places its computations: "cpu", "gpu", "tpu", ....

    TensorFlow runs on a TPU or GPU when it has one (logical devices);
    JAX on its default backend; Keras' PyTorch backend on CUDA when it is
    available, else on Apple's MPS ("mps") or the CPU.
    """
    if backend == "jax":
        import jax

        platform = jax.default_backend()
        return "gpu" if platform in ("cuda", "rocm") else platform
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return "gpu"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        kinds = {device.device_type for device in tf.config.list_logical_devices()}
        return "tpu" if "TPU" in kinds else "gpu" if "GPU" in kinds else "cpu"
    return "cpu"
