"""Callbacks that make training resumable and its files safe to kill.

Every file is written under a temporary name in its final folder and moved
into place with `os.replace`, so a run killed at any instant leaves each
file either as it was or complete; the temporaries a killed run leaves are
removed when it starts again (`remove_temporaries`).

The trainer records each completed epoch in this order, so that a kill -9
at any instant loses at most the epoch in progress:

1. `ResumableBackup` writes the epoch's state (weights and optimizer), at
   the head of the callbacks, before `SwapEMAWeights` swaps the moving
   averages in;
2. `BestWeights` writes the evaluated weights when they improved;
3. `TrainingLog` rewrites `training_log.csv` with the epoch's row and then
   commits the backup: its metadata names the new state.

A rerun resumes after the last committed epoch: it drops the log rows of
later (uncommitted) epochs, and each epoch's row was written before its
commit, so none is lost.
"""

import csv
import errno
import json
import math
import os
import re
import shutil

import h5py
import keras
import numpy as np

from lambda_keras._compat import save_weights_without_optimizer
from lambda_keras.weights import sha256_of

# What `write_atomically` names its temporary files with.
TEMPORARY_PREFIX = ".tmp-"
# The metadata of `ResumableBackup` since it keeps checksums and two states.
BACKUP_FORMAT = 2


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class WriteError(OSError):
    """A file of a training run could not be written (a full disk, a folder
    made read-only); the files of the last completed epoch are intact."""


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
    temporary = os.path.join(folder, f"{TEMPORARY_PREFIX}{os.getpid()}-{name}")
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


def write_run_file(path, write):
    """`write_atomically` for a training run's own files.

    Raises:
        WriteError: the file could not be written (`path` is left as it
            was), naming it and saying how to resume.
    """
    try:
        write_atomically(path, write)
    except (OSError, RuntimeError) as error:
        # HDF5 reports a failed write as an OSError or, from a flush, a
        # RuntimeError, both with the system's errno in their text.
        system = re.search(r"errno = (\d+), error message = '([^']*)'", str(error))
        if isinstance(error, RuntimeError) and not system:
            raise
        if system:
            raise _write_error(path, system.group(2), int(system.group(1))) from error
        raise _write_error(path, error.strerror or error, error.errno) from error


def _write_error(path, reason, error_number):
    failure = WriteError(
        f"Could not write {path} ({reason}). Training stopped; the files of "
        "the last completed epoch are intact: free space (or make the folder "
        "writable) and rerun the same command to resume from that epoch. "
        f"Received: path={path}"
    )
    failure.errno = error_number
    return failure


def weights_file_size(variables):
    """About how many bytes a `.weights.h5` file of `variables` takes: their
    arrays and HDF5's records of each (a few KiB at most)."""
    arrays = sum(
        math.prod(v.shape) * np.dtype(keras.backend.standardize_dtype(v.dtype)).itemsize
        for v in variables
    )
    return arrays + 4096 * len(variables) + 65536


def _require_room(path, size):
    """Raises `WriteError` (ENOSPC) unless `size` bytes fit beside `path`.

    HDF5 cannot fail cleanly on a full disk: a file whose flush failed can
    never be closed, and the process crashes as it exits (h5py issues 914
    and 2160; seen here on a full tmpfs). So a weights file is not begun
    without room for it.
    """
    free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
    if free < size:
        reason = f"No space left on device: {size} bytes needed, {free} free"
        raise _write_error(path, reason, errno.ENOSPC)


def write_run_json(path, data):
    """`write_run_file` of a JSON document."""

    def write(temporary):
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)

    write_run_file(path, write)


def remove_temporaries(folder):
    """Removes the temporary files a killed `write_atomically` left in `folder`."""
    if not os.path.isdir(folder):
        return
    for name in os.listdir(folder):
        if name.startswith(TEMPORARY_PREFIX):
            os.remove(os.path.join(folder, name))


def save_model_weights(model, path):
    """Writes the model's weights, without its optimizer state, atomically.

    `model.save_weights` also stores the optimizer's slots (momentum, EMA),
    tripling the file; shipped weights need only the model's.

    Raises:
        WriteError: the file could not be written, or there is no room for
            it (checked first).
    """
    _require_room(path, weights_file_size(model.weights))
    write_run_file(
        path, lambda temporary: save_weights_without_optimizer(model, temporary)
    )


class ResumableBackup(keras.callbacks.Callback):
    """Backs up the training state after each epoch; a rerun resumes from it.

    Each save writes `epoch-N.weights.h5` (weights and optimizer state)
    under a temporary name and renames it; the commit then atomically
    replaces `training_metadata.json`, which names it with its size and
    SHA-256 and names the previous epoch's file too, then removes the older
    files. A rerun resumes from the newest state whose file is intact, else
    from the previous one (a truncated or damaged file is reported and left
    out, never failing every rerun). Pass `resume_epoch()` as
    `initial_epoch` to `fit`; the weights are restored when training
    begins.

    Why not `keras.callbacks.BackupAndRestore(double_checkpoint=True)`:
    it writes `latest.weights.h5` and then the metadata in place, so a kill
    between the two writes resumes the new weights at the old epoch (an
    epoch trained twice, shown by
    `tests/train/test_callbacks.py::test_keras_backup_and_restore_fails_a_kill_between_its_writes`),
    and a kill while the metadata is written leaves a file that fails every
    rerun.

    Args:
        backup_dir: folder of the backup (one per worker).
        run: what the state belongs to (a JSON-able dict: model, batch
            size...), stored in the metadata; a rerun compares it with
            `mismatches`.
        commit_each_epoch: commit at the end of each epoch; False when a
            `TrainingLog` commits after writing the epoch's row.
    """

    def __init__(self, backup_dir, run=None, commit_each_epoch=True):
        super().__init__()
        self.backup_dir = backup_dir
        self.metadata_path = os.path.join(backup_dir, "training_metadata.json")
        self.run = run
        self.commit_each_epoch = commit_each_epoch
        self._committed = None  # the intact states, newest first (read once)
        self._stored_run = None
        self._saved = None  # this epoch's state: written, not committed yet

    def _read_metadata(self):
        """The recorded states, newest first, and the stored `run`."""
        if not os.path.exists(self.metadata_path):
            return [], None
        try:
            with open(self.metadata_path, encoding="utf-8") as f:
                metadata = json.load(f)
            if "generations" in metadata:
                states = metadata["generations"]
            else:  # written before the checksums (one state)
                states = [{"epoch": metadata["epoch"], "weights": metadata["weights"]}]
            for state in states:
                if not isinstance(state["epoch"], int) or "/" in state["weights"]:
                    raise ValueError(f"not a backup state: {state!r}")
            return states, metadata.get("run")
        except (OSError, ValueError, KeyError, TypeError) as error:
            print(
                f"The backup metadata {self.metadata_path} is damaged ({error}): "
                "training starts over.",
                flush=True,
            )
            return [], None

    def _damage(self, state):
        """Why the file of `state` cannot be resumed from, or None."""
        path = os.path.join(self.backup_dir, state["weights"])
        if not os.path.isfile(path):
            return f"{path} is missing"
        if "sha256" not in state:  # written before the checksums
            try:
                with h5py.File(path, "r") as f:
                    return None if "layers" in f else f"{path} holds no layers"
            except OSError as error:
                return f"{path} does not open: {error}"
        size = os.path.getsize(path)
        if size != state["size"]:
            return f"{path} has {size} bytes, {state['size']} were written"
        if sha256_of(path) != state["sha256"]:
            return f"{path} does not match its checksum"
        return None

    def _states(self):
        """The committed states whose files are intact, newest first."""
        if self._committed is None:
            remove_temporaries(self.backup_dir)
            recorded, self._stored_run = self._read_metadata()
            self._committed = []
            for index, state in enumerate(recorded):
                damage = self._damage(state)
                if damage is None:
                    self._committed.append(state)
                    continue
                if self._committed:
                    fallback = "it is left out"
                elif index + 1 < len(recorded):
                    fallback = "resuming from an older one"
                else:
                    fallback = "no older one is left, training starts over"
                print(
                    f"The backup of epoch {state['epoch']} is damaged ({damage}): "
                    f"{fallback}.",
                    flush=True,
                )
        return self._committed

    def resume_epoch(self):
        """The epoch a rerun starts at (0 when there is no intact backup)."""
        states = self._states()
        return states[0]["epoch"] if states else 0

    def mismatches(self, run):
        """`{key: (in the backup, in run)}` of the values of `run` that differ
        from those stored with the state a rerun would resume from."""
        if not self._states() or not self._stored_run:
            return {}
        run = json.loads(json.dumps(run))  # tuples as the stored lists
        return {
            key: (self._stored_run[key], value)
            for key, value in run.items()
            if key in self._stored_run and self._stored_run[key] != value
        }

    def on_train_begin(self, logs=None):
        states = self._states()
        if not states:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(os.path.join(self.backup_dir, states[0]["weights"]))

    def on_epoch_end(self, epoch, logs=None):
        self.save(epoch)
        if self.commit_each_epoch:
            self.commit()

    def save(self, epoch):
        """Writes the state after `epoch` (from 0); `commit` records it."""
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"epoch-{epoch + 1}.weights.h5"
        path = os.path.join(self.backup_dir, name)
        states = self._states()
        if states and "size" in states[0]:  # each state is as large as the last
            size = states[0]["size"]
        else:
            optimizer = self.model.optimizer
            extra = optimizer.variables if optimizer is not None else []
            size = weights_file_size([*self.model.weights, *extra])
        _require_room(path, size)
        write_run_file(path, self.model.save_weights)
        self._saved = {
            "epoch": epoch + 1,
            "weights": name,
            "size": os.path.getsize(path),
            "sha256": sha256_of(path),
        }

    def commit(self):
        """Records the saved state (and the one before it) in the metadata,
        then removes the files of older states."""
        if self._saved is None:
            return
        older = [s for s in self._states() if s["epoch"] < self._saved["epoch"]]
        states = [self._saved, *older[:1]]
        write_run_json(
            self.metadata_path,
            {"format": BACKUP_FORMAT, "run": self.run, "generations": states},
        )
        self._committed, self._stored_run, self._saved = states, self.run, None
        kept = {state["weights"] for state in states}
        for name in os.listdir(self.backup_dir):
            if name.startswith("epoch-") and name.endswith(".weights.h5"):
                if name not in kept:
                    os.remove(os.path.join(self.backup_dir, name))


class TrainingLog(keras.callbacks.Callback):
    """Writes the learning curve, one CSV row per completed epoch, atomically.

    Each epoch's row is written (the whole file, renamed into place) before
    `backup` commits that epoch, so a kill never loses a committed epoch's
    row; the rows of epochs after `backup`'s resume epoch (a killed
    attempt's) are dropped when training begins. The columns are `epoch`
    and the sorted names of the logs, as `keras.callbacks.CSVLogger`
    writes them.

    Args:
        path: the CSV file.
        backup: the run's `ResumableBackup`, made with
            `commit_each_epoch=False`; None keeps every row.
    """

    def __init__(self, path, backup=None):
        super().__init__()
        self.path = path
        self.backup = backup
        self.rows = []

    def _read(self):
        if not os.path.exists(self.path):
            return []
        with open(self.path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        # A row cut short (an old append killed mid-line) has missing cells.
        complete = [r for r in rows if None not in r.values() and r["epoch"].isdigit()]
        return sorted(
            {int(row["epoch"]): row for row in complete}.values(),
            key=lambda row: int(row["epoch"]),
        )

    def _write(self):
        keys = sorted({key for row in self.rows for key in row} - {"epoch"})

        def write(temporary):
            with open(temporary, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, ["epoch", *keys], restval="")
                writer.writeheader()
                writer.writerows(self.rows)

        write_run_file(self.path, write)

    def on_train_begin(self, logs=None):
        rows = self._read()
        first = None if self.backup is None else self.backup.resume_epoch()
        self.rows = [r for r in rows if first is None or int(r["epoch"]) < first]
        if len(self.rows) != len(rows):
            self._write()

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch, **(logs or {})}
        self.rows = [r for r in self.rows if int(r["epoch"]) < epoch] + [row]
        self._write()
        if self.backup is not None:
            self.backup.commit()


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
    the saved weights are the evaluated (EMA) ones. An improvement is
    written to `pending-<name>` first, then `state_path` records its value
    and checksum, then the file is renamed onto `path`: the state always
    describes `path`, and a kill before the rename is finished (or the
    unrecorded file removed) when training begins again.

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
        folder, name = os.path.split(os.fspath(path))
        self.pending_path = os.path.join(folder, f"pending-{name}")

    def _state(self):
        try:
            with open(self.state_path, encoding="utf-8") as f:
                state = json.load(f)
        except (OSError, ValueError):  # none yet, or damaged: no best
            return None
        return state if isinstance(state, dict) else None

    def _best(self):
        state = self._state()
        if state is None or not os.path.exists(self.path):
            return -math.inf
        return state.get("value", -math.inf)

    def on_train_begin(self, logs=None):
        if not os.path.exists(self.pending_path):
            return
        state = self._state()
        if state is not None and state.get("sha256") == sha256_of(self.pending_path):
            os.replace(self.pending_path, self.path)
        else:
            os.remove(self.pending_path)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not value > self._best():
            return
        save_model_weights(self.model, self.pending_path)
        state = {
            "monitor": self.monitor,
            "value": float(value),
            "epoch": epoch + 1,
            "sha256": sha256_of(self.pending_path),
        }
        try:
            write_run_json(self.state_path, state)
        except WriteError:
            os.remove(self.pending_path)  # unrecorded: the old best stays
            raise
        os.replace(self.pending_path, self.path)
