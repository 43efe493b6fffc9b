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


def tpu_reachable(tpu=None):
    """Whether a TPU may be reached without probing the network: a name or
    address given, Colab's or Cloud's TPU variables set, or TPU VM devices
    (/dev/accel*, /dev/vfio) present."""
    return bool(
        tpu
        or os.environ.get("TPU_NAME")
        or os.environ.get("COLAB_TPU_ADDR")
        or glob.glob("/dev/accel*")
        or glob.glob("/dev/vfio/[0-9]*")
    )


def select_strategy(name="auto", tpu=None):
    """Builds the distribution strategy named on the command line.

    Args:
        name: "auto" (TPU, then GPUs, then the CPU), "tpu", "mirrored" (all
            local GPUs, or all logical CPU devices when there is no GPU),
            "multiworker" (MultiWorkerMirroredStrategy from `TF_CONFIG`) or
            "one_device".
        tpu: TPU name or grpc:// address for "tpu" and "auto" (Colab and TPU
            VMs need none).

    Returns:
        `(strategy, device, message)`: the strategy (with `scope()` and
        `num_replicas_in_sync`), "tpu", "gpu" or "cpu", and a sentence
        saying what was chosen.

    Raises:
        ValueError: an unknown name, a TF-only strategy on another backend,
            or "multiworker" without `TF_CONFIG`.
        RuntimeError: "tpu" when no TPU can be reached.
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

    if name == "tpu" or (name == "auto" and tpu_reachable(tpu)):
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            strategy = tf.distribute.TPUStrategy(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as e:
            if name == "tpu":
                raise ValueError(
                    f"No TPU could be reached ({type(e).__name__}: {e}). "
                    f"Received: --tpu={tpu!r}"
                ) from e
        else:
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
