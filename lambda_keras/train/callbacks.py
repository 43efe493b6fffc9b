"""Callbacks that make training resumable and its files safe to kill.

Every file is written under a temporary name in its final folder and moved
into place with `os.replace`, so a run killed at any instant leaves each
file either as it was or complete.
"""

import json
import math
import os

import keras

# Keras' weights writer, which can leave the optimizer out of the file.
from keras.src.saving import saving_lib


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

    def write(temporary):
        saving_lib.save_weights_only(
            model, temporary, objects_to_skip=[model.optimizer]
        )

    write_atomically(path, write)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` whose saves survive a kill.

    Keras writes `latest.weights.h5` and then `training_metadata.json` in
    place, so a kill during the write leaves a broken file, and a kill
    between the two leaves new weights with the old epoch. Here each save
    writes `epoch-N.weights.h5` (weights and optimizer state) under a
    temporary name and renames it, then atomically replaces the metadata
    that names it, then removes the previous file: the metadata always
    names a complete checkpoint, and a rerun resumes at the epoch it gives.

    Args:
        backup_dir: folder of the backup (one per worker).
    """

    def __init__(self, backup_dir):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=False)

    def _metadata(self):
        if not os.path.exists(self._training_metadata_path):
            return None
        with open(self._training_metadata_path, encoding="utf-8") as f:
            return json.load(f)

    def _load_model(self):
        metadata = self._metadata()
        if metadata is None:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(os.path.join(self.backup_dir, metadata["weights"]))
        self.model._initial_epoch = metadata["epoch"]

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        previous = self._metadata()
        weights = f"epoch-{self._current_epoch}.weights.h5"
        write_atomically(
            os.path.join(self.backup_dir, weights), self.model.save_weights
        )
        write_json_atomically(
            self._training_metadata_path,
            {"epoch": self._current_epoch, "weights": weights},
        )
        if previous is not None and previous["weights"] != weights:
            stale = os.path.join(self.backup_dir, previous["weights"])
            if os.path.exists(stale):
                os.remove(stale)

    def resume_epoch(self):
        """The epoch a rerun starts at (0 when there is no backup)."""
        metadata = self._metadata()
        return 0 if metadata is None else metadata["epoch"]


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite.

    It raises `NonFiniteLossError` from the batch's end, before the epoch
    ends, so no callback saves the broken weights: the backup of the last
    completed epoch stays the newest checkpoint.
    """

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise NonFiniteLossError(
                f"The training loss became {float(loss)} at batch {batch} of epoch "
                f"{self._epoch}. Training stopped; the last good checkpoint (the "
                "backup of the previous epoch) was kept. Lower the learning rate "
                "(--learning-rate) or check the input data."
            )

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch


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
