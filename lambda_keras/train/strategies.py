"""Choosing where to train: TPU, GPUs, several workers or one device.

On the TensorFlow backend `select_strategy` returns a `tf.distribute`
strategy; on the JAX backend it sets a `keras.distribution.DataParallel`
over the local devices and returns a do-nothing scope.
"""

import contextlib
import glob
import json
import os

import keras

STRATEGIES = ("auto", "tpu", "mirrored", "multiworker", "one_device")


class _NoStrategy:
    """Stands in for a strategy on the JAX backend (Keras distributes)."""

    def __init__(self, num_replicas):
        self.num_replicas_in_sync = num_replicas

    def scope(self):
        return contextlib.nullcontext()


def find_tpu(tpu=None):
    """Where a TPU is, without probing the network.

    Args:
        tpu: `--tpu`: a TPU name or grpc:// address, or None.

    Returns:
        `(resolver_tpu, found)`: the `tpu` argument for `TPUClusterResolver`
        and what said there is a TPU (a flag, a variable or device files),
        or `(None, None)` when nothing does.
    """
    if tpu:
        return tpu, f"--tpu={tpu}"
    if os.environ.get("TPU_NAME"):
        # TPUClusterResolver(tpu=None) reads TPU_NAME itself (Cloud route).
        return None, f"TPU_NAME={os.environ['TPU_NAME']}"
    if os.environ.get("COLAB_TPU_ADDR"):
        # The legacy Colab TPU node, a worker reached over gRPC.
        address = os.environ["COLAB_TPU_ADDR"]
        return f"grpc://{address}", f"COLAB_TPU_ADDR={address}"
    devices = sorted(glob.glob("/dev/accel*") + glob.glob("/dev/vfio/[0-9]*"))
    if devices:
        # Chips attached to this VM (Colab's TPU runtime, Cloud TPU VMs).
        # TPUClusterResolver's docstring: "local" is for a TPU directly
        # connected to the VM; tpu=None would take the Cloud TPU client route.
        return "local", ", ".join(devices)
    return None, None


def select_strategy(name="auto", tpu=None):
    """Builds the distribution strategy named on the command line.

    Args:
        name: "auto" (TPU, then GPUs, then the CPU), "tpu", "mirrored" (all
            local GPUs, or all logical CPU devices when there is no GPU),
            "multiworker" (MultiWorkerMirroredStrategy from `TF_CONFIG`) or
            "one_device".
        tpu: TPU name or grpc:// address for "tpu" and "auto" (Colab and TPU
            VMs need none: their chips are found as devices, see `find_tpu`).

    Returns:
        `(strategy, device, message)`: the strategy (with `scope()` and
        `num_replicas_in_sync`), "tpu", "gpu" or "cpu", and a sentence
        saying what was chosen.

    Raises:
        ValueError: an unknown name, a TF-only strategy on another backend,
            "multiworker" without `TF_CONFIG`, or a TPU that is named or
            found but cannot be initialised ("auto" too stops then, rather
            than train on the CPU).
    """
    if name not in STRATEGIES:
        raise ValueError(f"--strategy must be one of {STRATEGIES}. Received: {name!r}")
    backend = keras.backend.backend()
    if backend == "jax":
        return _jax_distribution(name)
    if backend != "tensorflow":
        if name not in ("auto", "one_device"):
            raise ValueError(
                f"--strategy {name} needs the tensorflow backend (or data "
                f"parallelism on jax). Received: backend={backend!r}"
            )
        return (
            _NoStrategy(1),
            _device_kind(),
            f"Training on one device with the {backend} backend.",
        )

    import tensorflow as tf

    resolver_tpu, found = find_tpu(tpu)
    if name == "tpu" or (name == "auto" and found):
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
                tpu=resolver_tpu
            )
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            strategy = tf.distribute.TPUStrategy(resolver)
        # OSError: a name the Cloud TPU client cannot look up (URLError).
        except (ImportError, OSError, ValueError, RuntimeError, tf.errors.OpError) as e:
            reason = " ".join(f"{type(e).__name__}: {e}".split())
            what = (
                f"A TPU is named or attached ({found}) but could not be initialised"
                if found
                else "No TPU could be reached"
            )
            raise ValueError(
                f"{what} ({reason}). TensorFlow on a TPU VM needs "
                "TensorFlow's TPU build; the JAX backend "
                "(KERAS_BACKEND=jax, keras.distribution.DataParallel) is the "
                "other route, and --strategy one_device trains on the CPU. "
                f"Received: --strategy={name}, --tpu={tpu!r}"
            ) from e
        return (
            strategy,
            "tpu",
            (
                f"Training on TPU ({strategy.num_replicas_in_sync} cores) with "
                "TPUStrategy."
            ),
        )
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "--strategy multiworker reads the cluster from the TF_CONFIG "
                "environment variable, which is not set. Received: TF_CONFIG=None"
            )
        # Before anything lists devices: collectives are configured at startup.
        strategy = _reduce_structures(tf.distribute.MultiWorkerMirroredStrategy())
        gpus = tf.config.list_logical_devices("GPU")
        workers = len(json.loads(os.environ["TF_CONFIG"])["cluster"].get("worker", []))
        return (
            strategy,
            "gpu" if gpus else "cpu",
            (
                f"Training on {workers} workers ({strategy.num_replicas_in_sync} "
                "replicas) with MultiWorkerMirroredStrategy."
            ),
        )
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        devices = [d.name for d in gpus] or [
            d.name for d in tf.config.list_logical_devices("CPU")
        ]
        strategy = tf.distribute.MirroredStrategy(devices)
        return (
            strategy,
            "gpu" if gpus else "cpu",
            (
                f"Training on {len(devices)} devices ({', '.join(devices)}) with "
                "MirroredStrategy."
            ),
        )
    device = gpus[0].name if gpus else "/cpu:0"
    strategy = tf.distribute.OneDeviceStrategy(device)
    if name == "auto" and not gpus:
        return strategy, "cpu", "No TPU or GPU found: training on the CPU."
    kind = "gpu" if gpus else "cpu"
    return strategy, kind, f"Training on {device} with OneDeviceStrategy."


def _reduce_structures(strategy):
    """Makes `strategy.reduce` accept what Keras' `fit` gives it.

    MultiWorkerMirroredStrategy reduces one tensor at a time, along `axis`,
    while `fit` (Keras 3.15) passes it a whole `(images, labels)` batch
    before training ("Attempt to convert a value (PerReplica ...)") and
    then its scalar logs with `axis=0` ("Invalid reduction dimension 0").
    The strategy is given a `reduce` that maps over the structure and
    reduces scalars across the replicas only.
    """
    import tensorflow as tf

    reduce = strategy.reduce

    def reduce_one(reduce_op, value, axis):
        values = getattr(value, "values", (value,))
        if axis is not None and values[0].shape.rank == 0:
            axis = None
        return reduce(reduce_op, value, axis)

    def reduce_each(reduce_op, value, axis):
        return tf.nest.map_structure(lambda v: reduce_one(reduce_op, v, axis), value)

    strategy.reduce = reduce_each
    return strategy


def _jax_distribution(name):
    if name not in ("auto", "one_device"):
        raise ValueError(
            f"--strategy {name} is a tf.distribute strategy; on the jax backend "
            "use auto (DataParallel over the local devices) or one_device. "
            f"Received: --strategy={name}"
        )
    devices = keras.distribution.list_devices()
    kind = _device_kind()
    if name == "one_device" or len(devices) == 1:
        return _NoStrategy(1), kind, f"Training on {devices[0]} with the jax backend."
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=devices)
    )
    return (
        _NoStrategy(len(devices)),
        kind,
        (f"Training on {len(devices)} devices with keras.distribution.DataParallel."),
    )


def _device_kind():
    """ "tpu", "gpu" or "cpu": the kind of Keras' first device."""
    first = keras.distribution.list_devices()[0].lower()
    return (
        "gpu"
        if ("gpu" in first or "cuda" in first)
        else ("tpu" if "tpu" in first else "cpu")
    )
