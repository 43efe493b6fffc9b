"""Callbacks that make training resumable and its files safe to kill.

Every file is written under a temporary name in its final folder and moved
into place with `os.replace`, so a run killed at any instant leaves each
file either as it was or complete.
"""

import json
import math
import os

import keras

from lambda_keras._compat import save_weights_without_optimizer


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


def write_atomically(path, write):
    """Calls `write(temporary_path)` and then moves the file onto `path`.

    The temporary file sits beside `path` (same file system) and keeps its
    suffixes, e.g. `final.weights.h5` is written as
    `.tmp-1234-final.weights.h5`.

    Args:
        path: the final path.
        write: a function that writes a file at the path it is given.
    """
    folder, name = os.path.split(os.fspath(path))
    temporary = os.path.join(folder, f".tmp-{os.getpid()}-{name}")
    try:
        write(temporary)
        with open(temporary, "rb") as f:
            os.fsync(f.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_json_atomically(path, data):
    def write(temporary):
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)

    write_atomically(path, write)


def save_model_weights(model, path):
    """Writes the model's weights, without its optimizer state, atomically.

    `model.save_weights` also stores the optimizer's slots (momentum, EMA),
    tripling the file; shipped weights need only the model's.
    """

    write_atomically(
        path, lambda temporary: save_weights_without_optimizer(model, temporary)
    )


class ResumableBackup(keras.callbacks.Callback):
    """Backs up the training state after each epoch; a rerun resumes from it.

    Each save writes `epoch-N.weights.h5` (weights and optimizer state)
    under a temporary name and renames it, then atomically replaces
    `training_metadata.json`, which names it, then removes the previous
    file: the metadata always names a complete checkpoint of the epoch it
    gives. Pass `resume_epoch()` as `initial_epoch` to `fit`; the weights
    are restored when training begins.

    Why not `keras.callbacks.BackupAndRestore(double_checkpoint=True)`:
    it writes `latest.weights.h5` and then the metadata in place, so a kill
    between the two writes resumes the new weights at the old epoch (an
    epoch trained twice, shown by
    `tests/train/test_callbacks.py::test_keras_backup_and_restore_fails_a_kill_between_its_writes`),
    and a kill while the metadata is written leaves a file that fails every
    rerun.

    Args:
        backup_dir: folder of the backup (one per worker).
    """

    def __init__(self, backup_dir):
        super().__init__()
        self.backup_dir = backup_dir
        self.metadata_path = os.path.join(backup_dir, "training_metadata.json")

    def _metadata(self):
        if not os.path.exists(self.metadata_path):
            return None
        with open(self.metadata_path, encoding="utf-8") as f:
            return json.load(f)

    def resume_epoch(self):
        """The epoch a rerun starts at (0 when there is no backup)."""
        metadata = self._metadata()
        return 0 if metadata is None else metadata["epoch"]

    def on_train_begin(self, logs=None):
        metadata = self._metadata()
        if metadata is None:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(os.path.join(self.backup_dir, metadata["weights"]))

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.backup_dir, exist_ok=True)
        previous = self._metadata()
        weights = f"epoch-{epoch + 1}.weights.h5"
        write_atomically(
            os.path.join(self.backup_dir, weights), self.model.save_weights
        )
        write_json_atomically(
            self.metadata_path, {"epoch": epoch + 1, "weights": weights}
        )
        if previous is not None and previous["weights"] != weights:
            stale = os.path.join(self.backup_dir, previous["weights"])
            if os.path.exists(stale):
                os.remove(stale)


def fit_until_non_finite_loss(model, *args, callbacks=(), **kwargs):
    """`model.fit` that stops at the first NaN or infinite training loss.

    Keras' `TerminateOnNaN(raise_error=True)` raises from the end of the
    batch, before the epoch ends, so no callback saves the broken weights:
    the backup of the last completed epoch stays the newest checkpoint.

    Args:
        model: a compiled model.
        *args: positional arguments of `fit`.
        callbacks: callbacks of `fit`; `TerminateOnNaN` is appended.
        **kwargs: other keyword arguments of `fit`.

    Returns:
        The `History` of `fit`.

    Raises:
        NonFiniteLossError: the loss became NaN or infinite.
    """
    try:
        return model.fit(
            *args,
            callbacks=[*callbacks, keras.callbacks.TerminateOnNaN(raise_error=True)],
            **kwargs,
        )
    except RuntimeError as error:
        # The one RuntimeError TerminateOnNaN raises (its message since
        # Keras 3.11); any other is not ours to translate.
        if not str(error).startswith("NaN or Inf loss"):
            raise
        # Epochs counted from 1, as Keras' progress bar does; `model.history`
        # lists the epochs this `fit` completed.
        completed = len(getattr(model.history, "epoch", []))
        epoch = kwargs.get("initial_epoch", 0) + completed + 1
        raise NonFiniteLossError(
            f"The training loss became NaN or infinite in epoch {epoch} "
            f"({error}). Training stopped; the last good checkpoint (the "
            "backup of the previous epoch) was kept. Lower the learning rate "
            "(--learning-rate) or check the input data."
        ) from error


class BestWeights(keras.callbacks.Callback):
    """Saves the weights of the epoch with the best `monitor` (atomically).

    Place it after `keras.callbacks.SwapEMAWeights(swap_on_epoch=True)` so
    the saved weights are the evaluated (EMA) ones.

    Args:
        path: a `.weights.h5` path.
        monitor: the logged metric, e.g. "val_top1".
        state_path: a JSON file keeping the best value across restarts.
    """

    def __init__(self, path, monitor, state_path):
        super().__init__()
        self.path = path
        self.monitor = monitor
        self.state_path = state_path

    def _best(self):
        if not os.path.exists(self.state_path) or not os.path.exists(self.path):
            return -math.inf
        with open(self.state_path, encoding="utf-8") as f:
            return json.load(f)["value"]

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not value > self._best():
            return
        save_model_weights(self.model, self.path)
        write_json_atomically(
            self.state_path,
            {"monitor": self.monitor, "value": float(value), "epoch": epoch + 1},
        )
