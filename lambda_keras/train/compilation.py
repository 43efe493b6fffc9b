"""Whether the training step is compiled (`--jit-compile`), per platform.

Keras compiles a step with XLA (`tf.function(jit_compile=True)`) on
TensorFlow, with `jax.jit` on JAX and with `torch.compile` on PyTorch when
`jit_compile=True`. `lambda-keras train` chooses by default from
`JIT_COMPILE_DEFAULTS`, prints the choice and what decided it at start, and
records it in the model card; `--jit-compile` / `--no-jit-compile` choose.
"""

from lambda_keras.errors import UsageError

# (Keras backend, device kind) -> (jit_compile, what decided it).
#
# CPU rows: measured by `python -m benchmarks.jit_compile`
# (benchmarks/results/jit_compile.json): LambdaResNet26T, 128 px, batch 16,
# `train_on_batch` with SGD, compiled and uncompiled timed alternately in
# one process per backend on a 2-core AMD EPYC. The figure is compiled /
# uncompiled images/s; a row compiles when it is at least 1.05 (a smaller
# gain is within this machine's noise, and compiling makes the first step
# longer: 37 s against 20 s on TensorFlow, 100 s against 3 s on PyTorch).
#
# GPU rows: not measured (no GPU was lent to this project's sessions).
# TensorFlow follows Keras' own `jit_compile="auto"`, which leaves XLA off
# under tf.distribute (every run of the training script has a strategy);
# JAX compiles, as Keras' default does on every device; PyTorch stays eager,
# as Keras' default does.
#
# TPUs always compile: TPUStrategy runs each replicated step as one XLA
# program whatever Keras' flag says (so TensorFlow is given False, which
# keeps Keras from wrapping the step in a second XLA function); on JAX the
# step runs under `jax.jit`, as Keras' own default does on every device.
JIT_COMPILE_DEFAULTS = {
    ("tensorflow", "cpu"): (
        False,
        "measured on a 2-core CPU, XLA trains LambdaResNet26T at 1.02x graph "
        "mode's images/s, after a first step of 37 s against 20 s "
        "(python -m benchmarks.jit_compile)",
    ),
    ("jax", "cpu"): (
        True,
        "measured on a 2-core CPU, jax.jit trains LambdaResNet26T at 1.50x the "
        "uncompiled step's images/s (python -m benchmarks.jit_compile)",
    ),
    ("torch", "cpu"): (
        False,
        "measured on a 2-core CPU, torch.compile trains LambdaResNet26T at "
        "0.73x eager's images/s (python -m benchmarks.jit_compile)",
    ),
    ("tensorflow", "gpu"): (
        False,
        "not measured on a GPU; Keras' own default under tf.distribute",
    ),
    ("jax", "gpu"): (True, "not measured on a GPU; Keras' own default"),
    ("torch", "gpu"): (False, "not measured on a GPU; Keras' own default"),
    ("tensorflow", "tpu"): (
        False,
        "a TPU always compiles: TPUStrategy runs each step as one XLA program",
    ),
    ("jax", "tpu"): (True, "a TPU always compiles: the step runs under jax.jit"),
}


def choose_jit_compile(requested, backend, device):
    """Keras' `jit_compile` for the training step, and why.

    Args:
        requested: `--jit-compile` (True), `--no-jit-compile` (False) or
            neither (None: the default of `JIT_COMPILE_DEFAULTS`).
        backend: the Keras backend, "tensorflow", "jax" or "torch".
        device: "cpu", "gpu" or "tpu" (`select_strategy`'s device kind).

    Returns:
        `(jit_compile, message)`: the value for `model.compile` and one
        line saying what was chosen and what decided it.

    Raises:
        UsageError: `--no-jit-compile` on a TPU.
    """
    if (backend, device) not in JIT_COMPILE_DEFAULTS:
        raise ValueError(
            f"Training on a {device} with the {backend} backend is not "
            f"supported. Received: backend={backend!r}, device={device!r}"
        )
    default, reason = JIT_COMPILE_DEFAULTS[backend, device]
    if device == "tpu":
        if requested is False:
            raise UsageError(
                "A TPU runs compiled steps only: drop --no-jit-compile. "
                "Received: --no-jit-compile on a TPU"
            )
        return default, f"The training step is compiled: {reason}."
    jit_compile = default if requested is None else requested
    choice = "compiled" if jit_compile else "not compiled"
    if requested is None:
        return jit_compile, (
            f"The training step is {choice} by default on {backend} on a "
            f"{device}: {reason}. --jit-compile / --no-jit-compile choose."
        )
    flag = "--jit-compile" if requested else "--no-jit-compile"
    return jit_compile, f"The training step is {choice} ({flag})."
