"""Hostile inputs to `lambda-keras train` and `evaluate` (issue 15): datasets
that do not hold together, numeric flags out of range, model folders that
cannot be written or hold a damaged or foreign backup, weights with another
classifier, a full disk, and kill -9 at any write."""

import contextlib
import csv
import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from quick_run import MODEL
from quick_run import TINY_MODEL
from quick_run import tiny_test_net
from quick_run import train_tiny

from lambda_keras.__main__ import main
from lambda_keras.errors import run_reporting_errors
from lambda_keras.train import callbacks
from lambda_keras.train import data
from lambda_keras.train import trainer
from lambda_keras.train.callbacks import ResumableBackup
from lambda_keras.train.callbacks import TrainingLog
from lambda_keras.train.callbacks import WriteError
from lambda_keras.train.callbacks import remove_temporaries
from lambda_keras.weights import sha256_of


def _one_line_error(capsys):
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def _copy(folder_dataset, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(folder_dataset, root)
    return root


def _train_command(dataset, model_dir, *extra, model=MODEL):
    return [
        "train", "--model", model, "--dataset", str(dataset),
        "--model-dir", str(model_dir), "--image-size", "32", *extra,
    ]  # fmt: skip


def _epochs(model_dir):
    with open(model_dir / "training_log.csv", newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def _leftovers(model_dir):
    """Temporary and unpublished files anywhere in a run's folder."""
    return [
        os.path.join(folder, name)
        for folder, _, names in os.walk(model_dir)
        for name in names
        if name.startswith((".tmp-", "pending-"))
    ]


# 1. Datasets are checked before the first step.


def test_held_out_class_folders_other_than_the_training_ones_are_refused(
    folder_dataset, tmp_path, capsys
):
    # Before: the val labels were the sorted positions of val's own folders,
    # so a renamed folder trained (exit 0) against the wrong classes.
    root = _copy(folder_dataset, tmp_path)
    (root / "val" / "n03888257").rename(root / "val" / "n09999999")
    assert main(_train_command(root, tmp_path / "run")) == 2
    line = _one_line_error(capsys)
    assert "missing in val: ['n03888257']" in line
    assert "not in the training split: ['n09999999']" in line
    assert line.endswith(f"Received: --dataset={root}")


def test_held_out_labels_follow_the_training_class_names(folder_dataset):
    names = ["n03888257", "n01440764", "n03028079"]  # not the sorted order
    source = data.load_source(str(folder_dataset), "val", class_names=names)
    assert source.class_names == names
    labels = [int(label) for _, label in source.dataset]
    folders = [os.path.basename(os.path.dirname(path)) for path in source.paths]
    assert labels == [names.index(folder) for folder in folders]
    assert sorted(set(zip(folders, labels))) == [
        ("n01440764", 1),
        ("n03028079", 2),
        ("n03888257", 0),
    ]


@pytest.mark.parametrize("content", [None, "notes.txt"])
def test_an_empty_class_folder_is_named(folder_dataset, tmp_path, capsys, content):
    # Before: the folder was left out, making a model with fewer classes.
    root = _copy(folder_dataset, tmp_path)
    empty = root / "train" / "n09999999"
    empty.mkdir()
    if content:
        (empty / content).write_text("no image")
    assert main(_train_command(root, tmp_path / "run")) == 2
    line = _one_line_error(capsys)
    assert f"The class folder {empty} holds no images" in line


def _spoil(folder):
    """Spoils three images of `folder` in three ways; returns their paths."""
    truncated, html, empty, followed = sorted(folder.iterdir())[:4]
    truncated.write_bytes(truncated.read_bytes()[:300])
    html.write_bytes(b"<html><body>404 Not Found</body></html>")
    empty.write_bytes(b"")
    # A complete JPEG followed by other data (a motion photo) stays usable.
    followed.write_bytes(followed.read_bytes() + b"\x00\x00\x00\x18ftypmp42" * 8)
    return [str(truncated), str(html), str(empty)]


def test_unreadable_images_are_named_before_the_first_step(
    folder_dataset, tmp_path, capsys
):
    # Before: a TensorFlow traceback mid-epoch that named no file.
    root = _copy(folder_dataset, tmp_path)
    spoiled = _spoil(root / "train" / "n03028079")
    with pytest.raises(ValueError) as info:
        data.load_source(str(root), "train")
    message = str(info.value)
    assert message.startswith(f"3 image files of {root / 'train'} cannot be decoded")
    assert f"{spoiled[0]} (truncated: no JPEG end marker)" in message
    assert f"{spoiled[1]} (not a JPEG, PNG, GIF or BMP file)" in message
    assert f"{spoiled[2]} (empty file)" in message
    assert "--skip-unreadable" in message

    source = data.load_source(str(root), "train", skip_unreadable=True)
    assert [path for path, _ in source.skipped] == spoiled
    assert source.num_examples == 21 and not set(spoiled) & set(source.paths)
    # Every file the check kept decodes: three full batches of seven.
    assert len(list(data.make_pipeline(source, 32, 7, training=False))) == 3

    assert main(_train_command(root, tmp_path / "run")) == 2
    line = _one_line_error(capsys)
    assert spoiled[0] in line and line.endswith(f"Received: path={spoiled[0]}")
    # --skip-unreadable trains without them, saying which (this run then
    # stops at its batch of 100, after the data are read).
    command = _train_command(root, tmp_path / "run", "--skip-unreadable")
    assert main([*command, "--batch-size", "100"]) == 2
    output = capsys.readouterr()
    assert "Skipped 3 unreadable image files of folder" in output.out
    assert all(path in output.out for path in spoiled)
    assert "fewer than one global batch" in output.err


def _corrupt_but_complete(path):
    """A JPEG's signature and end marker around data that do not decode."""
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8 + b"\xff\xd9")


def test_an_image_that_fails_to_decode_in_the_pipeline_is_named(
    folder_dataset, tmp_path, tiny_model, capsys
):
    root = _copy(folder_dataset, tmp_path)
    corrupt = sorted((root / "val" / "n03028079").iterdir())[1]
    _corrupt_but_complete(corrupt)
    source = data.load_source(str(root), "val")
    assert str(corrupt) in source.paths  # the check before training passes it
    pipeline = data.make_pipeline(source, 32, 4, training=False)
    with pytest.raises(ValueError) as info:
        with data.naming_undecodable_images(source):
            list(pipeline)
    assert str(info.value).startswith("1 image file(s) passed the check")
    assert str(info.value).endswith(f"Received: path={corrupt}")

    # The same through `lambda-keras evaluate` (before: an internal error).
    weights = tmp_path / "tiny.weights.h5"
    tiny_test_net().save_weights(weights)
    command = ["evaluate", "--model", TINY_MODEL, "--weights", str(weights)]
    assert main([*command, "--dataset", str(root), "--image-size", "32"]) == 2
    assert _one_line_error(capsys).endswith(f"Received: path={corrupt}")


# 2. Every numeric flag is checked, with one line naming it.

OUT_OF_RANGE = [
    ("--epochs", "0"),
    ("--epochs", "-1"),
    ("--image-size", "0"),  # before: silently the model's default size
    ("--steps-per-epoch", "0"),
    ("--validation-steps", "0"),
    ("--learning-rate", "-1.0"),
    ("--learning-rate", "nan"),
    ("--batch-size", "0"),
    ("--crop-fraction", "0.0"),
    ("--crop-fraction", "1.5"),
    ("--crop-area-min", "0.0"),
    ("--crop-area-min", "1.01"),
    ("--warmup-epochs", "-1.0"),
    ("--weight-decay", "-0.1"),
    ("--label-smoothing", "1.0"),
    ("--label-smoothing", "-0.1"),
    ("--ema-momentum", "1.0"),
    ("--bn-momentum", "-0.5"),
    ("--randaugment-magnitude", "31.0"),
    ("--randaugment-magnitude", "-1.0"),
    ("--dropout-rate", "1.0"),
    ("--stochastic-depth-rate", "-0.1"),
    ("--verbose", "3"),
]


@pytest.mark.parametrize("flag, value", OUT_OF_RANGE)
def test_train_flags_out_of_range(folder_dataset, tmp_path, capsys, flag, value):
    model_dir = tmp_path / "run"
    assert main(_train_command(folder_dataset, model_dir, flag, value)) == 2
    line = _one_line_error(capsys)
    assert line.startswith(f"lambda-keras train: error: {flag} must be ")
    assert line.endswith(f"Received: {flag}={value}")
    assert not model_dir.exists()  # refused before anything was made


def test_warmup_longer_than_the_training_is_refused(folder_dataset, tmp_path, capsys):
    command = _train_command(folder_dataset, tmp_path / "run", "--epochs", "2")
    assert main([*command, "--warmup-epochs", "2.5"]) == 2
    line = _one_line_error(capsys)
    assert "--warmup-epochs must be in [0, 2]. Received: --warmup-epochs=2.5" in line


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--batch-size", "0"),
        ("--image-size", "0"),
        ("--crop-fraction", "0.0"),
        ("--crop-fraction", "1.5"),
    ],
)
def test_evaluate_flags_out_of_range(folder_dataset, tmp_path, capsys, flag, value):
    command = ["evaluate", "--model", MODEL, "--weights", str(tmp_path / "w.h5")]
    assert main([*command, "--dataset", str(folder_dataset), flag, value]) == 2
    line = _one_line_error(capsys)
    assert line.startswith(f"lambda-keras evaluate: error: {flag} must be ")
    assert line.endswith(f"Received: {flag}={value}")


def test_an_unknown_model_option_is_named_with_the_accepted_ones(
    folder_dataset, tmp_path, capsys
):
    # Before: a TypeError from the constructor, an internal error.
    command = _train_command(folder_dataset, tmp_path / "run")
    assert main([*command, "--model-option", "widht_multiplier=0.5"]) == 2
    line = _one_line_error(capsys)
    assert f"Unknown --model-option key 'widht_multiplier': the options of {MODEL}" in (
        line
    )
    assert "'width_multiplier'" in line and "'scope'" in line
    assert line.endswith("Received: --model-option=widht_multiplier=0.5")


# 3. The model folder: writable, a damaged backup, fine-tuning weights.


@contextlib.contextmanager
def _read_only(folder):
    """Makes `folder` refuse new files, for root too (immutable then)."""
    os.chmod(folder, 0o555)
    probe = folder / "probe"
    try:
        probe.touch()
    except PermissionError:
        immutable = False
    else:  # root: permissions do not apply
        probe.unlink()
        subprocess.run(["chattr", "+i", str(folder)], check=True)
        immutable = True
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        os.chmod(folder, 0o755)


def test_an_unwritable_model_dir_is_refused_before_anything_is_built(
    folder_dataset, tmp_path, capsys, monkeypatch
):
    # Before: a read-only folder failed after the first epoch, or in
    # TensorBoard's writer with a TensorFlow traceback.
    monkeypatch.setattr(trainer, "select_strategy", lambda *_: pytest.fail("built"))
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    under_a_file = tmp_path / "file" / "run"
    under_a_file.parent.write_text("")
    for model_dir in (read_only, read_only / "run", under_a_file):
        with _read_only(read_only):
            assert main(_train_command(folder_dataset, model_dir)) == 2
        line = _one_line_error(capsys)
        assert f"--model-dir {model_dir} is not a writable folder" in line
        assert line.endswith(f"Received: --model-dir={model_dir}")
    assert os.listdir(read_only) == []


def _stand_in():
    """A one-layer model compiled as the trainer compiles, with an EMA."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(3, activation="softmax")]
    )
    optimizer = keras.optimizers.SGD(0.5, momentum=0.9, use_ema=True, ema_momentum=0.5)
    trainer.compile_model(model, optimizer)
    model.run_eagerly = True  # each rerun is a new model: tracing would dominate
    return model


_X = np.random.default_rng(0).normal(size=(12, 3)).astype("float32")
_Y = keras.utils.to_categorical(np.arange(12) % 3, 3)


def _fit(model_dir, epochs):
    """What a run (or rerun) of one command does with the trainer's
    callbacks, on the stand-in model; returns its backup."""
    remove_temporaries(model_dir)
    backup = ResumableBackup(
        os.path.join(model_dir, "backup"),
        run={"--model": "stand-in"},
        commit_each_epoch=False,  # the chief's: its TrainingLog commits
    )
    _stand_in().fit(
        _X,
        _Y,
        validation_data=(_X, _Y),
        initial_epoch=backup.resume_epoch(),
        epochs=epochs,
        batch_size=4,
        callbacks=trainer.epoch_callbacks(str(model_dir), backup, True, True),
        verbose=0,
    )
    return backup


def _states(model_dir):
    with open(model_dir / "backup" / "training_metadata.json") as f:
        return [state["epoch"] for state in json.load(f)["generations"]]


def test_a_damaged_backup_falls_back_to_the_previous_epoch(tmp_path, capsys):
    # Before: a truncated backup failed every rerun (h5py's "truncated file").
    _fit(tmp_path, 2)
    newest = tmp_path / "backup" / "epoch-2.weights.h5"
    newest.write_bytes(newest.read_bytes()[:1000])
    assert _fit(tmp_path, 3).resume_epoch() == 3
    out = capsys.readouterr().out
    assert f"The backup of epoch 2 is damaged ({newest} has 1000 bytes" in out
    assert "resuming from an older one" in out
    assert _epochs(tmp_path) == [0, 1, 2] and _states(tmp_path) == [3, 2]

    # Damaged metadata: training starts over (said so), the reruns after work.
    metadata = tmp_path / "backup" / "training_metadata.json"
    metadata.write_text(metadata.read_text()[:40])
    _fit(tmp_path, 2)
    assert "is damaged" in capsys.readouterr().out
    assert _epochs(tmp_path) == [0, 1] and _states(tmp_path) == [2, 1]
    _fit(tmp_path, 3)
    assert "damaged" not in capsys.readouterr().out
    assert _epochs(tmp_path) == [0, 1, 2]
    assert sorted(os.listdir(tmp_path / "backup")) == [
        "epoch-2.weights.h5",
        "epoch-3.weights.h5",
        "training_metadata.json",
    ]
    # The older state damaged, the newer intact: resumed from the newer; and
    # a best.json without its value counts as no best yet.
    older = tmp_path / "backup" / "epoch-2.weights.h5"
    older.write_bytes(b"")
    (tmp_path / "best.json").write_text('{"monitor": "val_top1"}')
    assert _fit(tmp_path, 4).resume_epoch() == 4
    out = capsys.readouterr().out
    assert "The backup of epoch 2 is damaged" in out and "it is left out" in out
    assert _epochs(tmp_path) == [0, 1, 2, 3] and _states(tmp_path) == [4, 3]
    assert json.loads((tmp_path / "best.json").read_text())["epoch"] == 4


def test_a_backup_written_before_the_checksums_resumes(tmp_path, capsys):
    _fit(tmp_path, 1)
    metadata = tmp_path / "backup" / "training_metadata.json"
    metadata.write_text(json.dumps({"epoch": 1, "weights": "epoch-1.weights.h5"}))
    assert _fit(tmp_path, 2).resume_epoch() == 2
    assert "damaged" not in capsys.readouterr().out
    # Truncated, it is found out all the same (it must open in h5py).
    metadata.write_text(json.dumps({"epoch": 2, "weights": "epoch-2.weights.h5"}))
    weights = tmp_path / "backup" / "epoch-2.weights.h5"
    weights.write_bytes(weights.read_bytes()[:1000])
    _fit(tmp_path, 2)
    assert "training starts over" in capsys.readouterr().out
    assert _epochs(tmp_path) == [0, 1]


def test_fine_tuning_from_a_weights_file_with_other_classes(
    tmp_path, capsys, tiny_model
):
    # Before: the constructor's load failed on the classifier's shape.
    source = trainer.build_model(MODEL, 5, 32)
    rng = np.random.default_rng(0)
    for variable in source.weights:
        variable.assign(rng.normal(size=variable.shape).astype(variable.dtype))
    path = str(tmp_path / "five.weights.h5")
    source.save_weights(path)
    model = trainer.build_model(MODEL, 3, 32, weights=path)
    assert model.output.shape == (None, 3)
    assert (
        f"Fine-tuning from {path}: loaded every layer but predictions"
        in capsys.readouterr().out
    )
    for pretrained, tuned in zip(source.layers, model.layers):
        if pretrained.name == "predictions":
            assert tuned.get_weights()[0].shape == (1024, 3)
            continue
        for a, b in zip(pretrained.get_weights(), tuned.get_weights()):
            np.testing.assert_array_equal(a, b)
    # Evaluating needs the classifier the weights were trained for.
    with pytest.raises(ValueError, match=f"{path} does not fit .* with 3 classes"):
        trainer.build_model(MODEL, 3, 32, weights=path, new_classifier=False)
    # Another network's weights fit nowhere: refused, not half loaded.
    other = str(tmp_path / "tiny.weights.h5")
    tiny_test_net(classes=5).save_weights(other)
    with pytest.raises(ValueError, match="its layers differ, not only its classifier"):
        trainer.build_model(MODEL, 3, 32, weights=other)


# 4. Every write is atomic and ordered: a kill loses at most one epoch.


def _files(model_dir):
    return {
        os.path.relpath(os.path.join(folder, name), model_dir): open(
            os.path.join(folder, name), "rb"
        ).read()
        for folder, _, names in os.walk(model_dir)
        for name in names
        if "logs" not in folder
    }


_BACKUP_FILES = ("epoch-2.weights.h5", "training_metadata.json")


# How HDF5 reports a full disk from a flush (h5py raises it as is).
_HDF5_FULL = RuntimeError(
    "Can't decrement id ref count (file write failed: time = Tue Dec 1 2026, "
    "filename = 'x.h5', file descriptor = 5, errno = 28, error message = 'No "
    "space left on device', buf = 0x5, total write size = 2048, offset = 4)"
)


@pytest.mark.parametrize(
    "target, error",
    [
        *[
            (name, OSError(errno.ENOSPC, "No space left on device"))
            for name in (
                *_BACKUP_FILES,
                "pending-best.weights.h5",
                "best.json",
                "training_log.csv",
            )
        ],
        ("epoch-2.weights.h5", _HDF5_FULL),
    ],
)
def test_a_full_disk_stops_with_a_message_and_keeps_the_last_epoch(
    tmp_path, monkeypatch, capsys, target, error
):
    # Before: ENOSPC while checkpointing ended in a segfault.
    _fit(tmp_path, 1)
    # Epoch 2 improves on any accuracy: its best weights are written too.
    best = tmp_path / "best.json"
    best.write_text(json.dumps({**json.loads(best.read_text()), "value": -1.0}))
    before = _files(tmp_path)
    write_atomically = callbacks.write_atomically

    def disk_full_at_target(path, write):
        if os.path.basename(path) != target:
            return write_atomically(path, write)

        def half_then_full(temporary):
            with open(temporary, "wb") as f:
                f.write(b"half")
            raise error

        return write_atomically(path, half_then_full)

    monkeypatch.setattr(callbacks, "write_atomically", disk_full_at_target)
    assert run_reporting_errors("lambda-keras train", lambda: _fit(tmp_path, 2)) == 2
    line = _one_line_error(capsys)
    folder = tmp_path / "backup" if target in _BACKUP_FILES else tmp_path
    assert f"Could not write {folder / target} (No space left on device)" in line
    assert "rerun the same command to resume" in line
    after = _files(tmp_path)
    assert not _leftovers(tmp_path)
    # The last completed epoch's state and its records are as they were.
    for name in ("backup/training_metadata.json", "backup/epoch-1.weights.h5"):
        assert after[name] == before[name]
    assert after["training_log.csv"].startswith(before["training_log.csv"])

    monkeypatch.undo()
    _fit(tmp_path, 2)  # the same command resumes once there is space
    assert _epochs(tmp_path) == [0, 1] and _states(tmp_path) == [2, 1]


def test_no_weights_file_is_begun_without_room_for_it(tmp_path, monkeypatch):
    # HDF5 cannot fail cleanly: a file whose flush failed on a full disk can
    # never be closed, and the process crashed as it exited (a segfault
    # after the message; h5py issue 914). So the room is checked first.
    _fit(tmp_path, 1)
    before = _files(tmp_path)
    disk_usage = shutil.disk_usage
    monkeypatch.setattr(
        callbacks.shutil, "disk_usage", lambda p: disk_usage(p)._replace(free=1000)
    )
    begun = []
    monkeypatch.setattr(keras.Model, "save_weights", lambda *a: begun.append(a))
    needed = r"\(No space left on device: \d+ bytes needed, 1000 free\)"
    with pytest.raises(WriteError, match=f"epoch-2.weights.h5 {needed}"):
        _fit(tmp_path, 2)
    assert not begun and _files(tmp_path) == before
    # The estimate is an upper bound of the files written.
    model = _stand_in()
    model.optimizer.build(model.trainable_variables)
    variables = [*model.weights, *model.optimizer.variables]
    state = tmp_path / "backup" / "epoch-1.weights.h5"
    assert state.stat().st_size <= callbacks.weights_file_size(variables)


@pytest.mark.slow
def test_a_kill_at_any_write_loses_at_most_the_epoch_in_progress(tmp_path, monkeypatch):
    # Before: a kill while best.weights.h5 was written lost that epoch's
    # log row for good (the backup was committed first), and temporaries
    # were never removed. Each state a kill -9 could leave, copied before
    # and after every rename and removal, is rerun to the end.
    run = tmp_path / "run"
    states = []
    replace, remove = os.replace, os.remove

    def copy_state():
        files = _files(run)
        if not states or files != states[-1][1]:
            target = tmp_path / f"state-{len(states):02d}"
            shutil.copytree(run, target)
            states.append((target, files))

    def replacing(source, destination):
        copy_state()
        replace(source, destination)
        copy_state()

    def removing(path):
        copy_state()
        remove(path)

    monkeypatch.setattr(os, "replace", replacing)
    monkeypatch.setattr(os, "remove", removing)
    _fit(run, 2)
    monkeypatch.undo()
    assert len(states) > 12
    for state, _ in states:
        _fit(state, 2)
        assert _epochs(state) == [0, 1], state
        assert _states(state) == [2, 1], state
        assert not _leftovers(state), state
        recorded = json.loads((state / "best.json").read_text())["sha256"]
        assert sha256_of(state / "best.weights.h5") == recorded, state


# A child that runs the tiny training and, at the N-th rename onto a file
# called NAME, kills itself with SIGKILL (before or after the rename) or
# fails as a full disk does.
_CHILD = """
import errno, os, signal, sys
sys.path.insert(0, {tests!r})
from quick_run import register_tiny_model, train_tiny

dataset, model_dir, when, name, count = sys.argv[1:6]
renames = 0
replace = os.replace

def replacing(source, destination):
    global renames
    if os.path.basename(destination) == name:
        renames += 1
    if renames == int(count) and when == "enospc":
        raise OSError(errno.ENOSPC, "No space left on device")
    if renames == int(count) and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    replace(source, destination)
    if renames == int(count) and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)

os.replace = replacing
register_tiny_model()
sys.exit(train_tiny(dataset, model_dir, "--epochs", "3"))
"""


@pytest.mark.slow
def test_kill_9_at_the_trainers_writes_then_the_same_command_completes(
    folder_dataset, tmp_path
):
    script = textwrap.dedent(_CHILD).format(tests=os.path.dirname(__file__))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_CONFIG", None)

    def run(when, name, count):
        command = [sys.executable, "-c", script, str(folder_dataset), str(tmp_path)]
        return subprocess.run(
            [*command, when, name, str(count)], env=env, capture_output=True, text=True
        )

    # Epoch 1's row written under its temporary name, not renamed.
    assert run("before", "training_log.csv", 1).returncode == -9
    assert not (tmp_path / "backup" / "training_metadata.json").exists()
    # Epoch 1 committed, the process killed right after.
    assert run("after", "training_metadata.json", 1).returncode == -9
    assert _states(tmp_path) == [1]
    # A full disk at epoch 2's commit: one line, exit code 2, no crash.
    full = run("enospc", "training_metadata.json", 1)
    assert full.returncode == 2, full.stderr[-3000:]
    (line,) = full.stderr.strip().splitlines()[-1:]
    assert "No space left on device" in line and "rerun the same command" in line
    # Every epoch done, the final weights written, the model card not.
    assert run("before", "model_card.json", 1).returncode == -9
    assert not (tmp_path / "model_card.json").exists()

    done = run("none", "", 0)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Resuming from the backup of epoch 3." in done.stdout
    assert _epochs(tmp_path) == [0, 1, 2]
    assert _states(tmp_path) == [3, 2] and not _leftovers(tmp_path)
    card = json.loads((tmp_path / "model_card.json").read_text())
    assert card["epochs_completed"] == 3


# 5. A rerun with another command in the same folder.


@pytest.mark.slow
def test_a_rerun_with_other_settings_is_refused(
    folder_dataset, tmp_path, capsys, tiny_model
):
    assert train_tiny(folder_dataset, tmp_path) == 0
    capsys.readouterr()
    # Before: the rerun resumed the backup into the new settings.
    assert train_tiny(folder_dataset, tmp_path, "--batch-size", "4") == 2
    line = _one_line_error(capsys)
    assert f"{tmp_path} holds the backup of a run with other settings" in line
    assert "--batch-size 6 there, 4 now" in line
    assert line.endswith("Received: --batch-size=4")
    command = _train_command(folder_dataset, tmp_path, "--batch-size", "6")
    assert main(command) == 2
    assert f"--model '{TINY_MODEL}' there, '{MODEL}' now" in _one_line_error(capsys)
    # Fewer epochs than the backup holds.
    assert train_tiny(folder_dataset, tmp_path, "--epochs", "1") == 2
    assert _one_line_error(capsys).endswith("Received: --epochs=1")
    # A stale temporary of a killed run is removed by the next start.
    stale = [tmp_path / ".tmp-99-best.weights.h5", tmp_path / "backup" / ".tmp-99-x"]
    for path in stale:
        path.write_bytes(b"half")
    assert train_tiny(folder_dataset, tmp_path, "--epochs", "3") == 0
    assert _epochs(tmp_path) == [0, 1, 2] and not _leftovers(tmp_path)


def test_training_log_drops_the_rows_of_uncommitted_epochs(tmp_path):
    # Rows after the committed epoch (a killed attempt's) and a row cut
    # short by a kill mid-append (the old CSVLogger's) are dropped.
    _fit(tmp_path, 2)
    log = tmp_path / "training_log.csv"
    log.write_text("epoch,loss\n0,1.5\n1,1.25\n2,1.0\n3,0.")
    backup = ResumableBackup(str(tmp_path / "backup"))
    TrainingLog(str(log), backup).on_train_begin()
    assert log.read_text().splitlines() == ["epoch,loss", "0,1.5", "1,1.25"]
