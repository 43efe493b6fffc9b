"""Hostile weights files: the readers refuse what a file cannot honestly hold.

A small file must not make the reader allocate more than its size allows
(stride tricks, shared views, zip bombs), and every refusal is a
`ValueError` naming the file and the tensor. Memory is measured with
tracemalloc, which counts numpy's and zlib's buffers. Bad files given to
`lambda-keras convert-timm` are one-line errors, and a weights file that
fails to load leaves the model's weights as they were.
"""

import json
import re
import tracemalloc
import zipfile

import keras
import numpy as np
import pytest
import safetensors.numpy
import torch
from forged_checkpoints import forge_checkpoint
from forged_checkpoints import forged_pickle
from forged_checkpoints import write_torch_zip

from lambda_keras import weights
from lambda_keras.__main__ import main
from lambda_keras.applications import LambdaResNet26T
from lambda_keras.convert import read_checkpoint
from lambda_keras.convert import read_safetensors
from lambda_keras.convert.checkpoint_readers import ALLOCATION_LIMIT_FACTOR

MIB = 1 << 20


def refusal_and_peak(path, reader=read_checkpoint):
    """The ValueError that reading `path` raises, and the peak bytes the
    attempt allocated."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as error:
            reader(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return str(error.value), peak


# --------------------------------------------------------------------------
# torch.save: declared sizes against what the file holds
# --------------------------------------------------------------------------


def test_stride_zero_view_is_refused_before_allocating(tmp_path):
    # One stored float, viewed as 15000 x 15000: 900 MB from a 500-byte file.
    path = tmp_path / "stride0.pth"
    forge_checkpoint(path, {"w": (0, (15000, 15000), (0, 0))}, numel=1, stored=1)
    assert path.stat().st_size < 1000

    message, peak = refusal_and_peak(path)

    assert str(path) in message and "'w'" in message
    assert "225000000 elements, more than its 1-element storage" in message
    assert peak < MIB


def test_views_sharing_a_storage_are_capped_in_total(tmp_path):
    # 100 full views of one 256 KiB storage would return 25 MiB.
    numel = 64 * 1024
    path = tmp_path / "shared.pth"
    layouts = {f"w{i}": (0, (numel,), (1,)) for i in range(100)}
    forge_checkpoint(path, layouts, numel=numel, stored=numel)

    message, peak = refusal_and_peak(path)

    assert str(path) in message
    assert re.search(r"tensor 'w\d+' needs \d+ bytes", message)
    assert f"({ALLOCATION_LIMIT_FACTOR} times its size)" in message
    assert peak < 4 * numel  # refused before the storage was read


def test_shared_views_within_the_limit_are_read(tmp_path):
    path = tmp_path / "tied.pth"
    layouts = {"embedding": (0, (2, 3), (3, 1)), "head": (0, (3, 2), (1, 3))}
    forge_checkpoint(path, layouts)

    arrays = read_checkpoint(path)

    np.testing.assert_array_equal(arrays["head"], arrays["embedding"].T)
    assert not np.shares_memory(arrays["head"], arrays["embedding"])


def deflated_zeros(archive, name, nbytes):
    """Writes `nbytes` zero bytes as a deflated member, 1 MiB at a time."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(info, "w") as member:
        for _ in range(nbytes // MIB):
            member.write(bytes(MIB))


@pytest.mark.parametrize("bomb", ["storage record", "pickle"])
def test_deflate_bomb_is_refused_before_inflating(tmp_path, bomb):
    # 64 MiB of zeros deflate to about 64 KiB: far more than 4 times the file.
    path = tmp_path / "bomb.pth"
    with zipfile.ZipFile(path, "w") as archive:
        if bomb == "pickle":
            info = zipfile.ZipInfo("archive/data.pkl")
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as member:
                member.write(forged_pickle({"w": (0, (6,), (1,))}))
                # Bytes after the pickle's STOP opcode are never unpickled.
                for _ in range(64):
                    member.write(bytes(MIB))
            archive.writestr("archive/data/0", bytes(24))
        else:
            numel = 16 * MIB
            pickled = forged_pickle({"w": (0, (numel,), (1,))}, numel=numel)
            archive.writestr("archive/data.pkl", pickled)
            deflated_zeros(archive, "archive/data/0", 4 * numel)
    assert path.stat().st_size < MIB

    message, peak = refusal_and_peak(path)

    assert str(path) in message
    assert "needs 67" in message and "zip bomb" in message
    assert peak < MIB


def set_declared_size(path, name, size):
    """Rewrites the uncompressed size the zip's central directory declares
    for the member `name` (4 bytes at offset 24 of its entry; the name is
    at offset 46)."""
    raw = bytearray(path.read_bytes())
    entry = next(
        match.start()
        for match in re.finditer(re.escape(b"PK\x01\x02"), raw)
        if raw[match.start() + 46 :].startswith(name.encode())
    )
    raw[entry + 24 : entry + 28] = size.to_bytes(4, "little")
    path.write_bytes(bytes(raw))


def test_member_inflating_past_its_declared_size_stops_there(tmp_path):
    # The central directory says 24 bytes; the deflate stream holds 64 MiB.
    path = tmp_path / "liar.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", forged_pickle({"w": (0, (6,), (1,))}))
        deflated_zeros(archive, "archive/data/0", 64 * MIB)
    set_declared_size(path, "archive/data/0", 24)
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("archive/data/0").file_size == 24

    message, peak = refusal_and_peak(path)

    assert str(path) in message
    assert "corrupt zip member 'archive/data/0'" in message  # its CRC
    assert peak < MIB


# --------------------------------------------------------------------------
# torch.save: layouts and dtypes
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layout", "problem"),
    [
        ((0, (2**64, 0), (1, 1)), "too large for an array"),
        ((0, (2**62, 4, 0), (1, 1, 1)), "too large for an array"),
        ((0, (1,) * 100, (1,) * 100), "100 dimensions, more than 32"),
        ((0, (-2,), (1,)), "invalid tensor layout"),
    ],
    ids=["2**64", "int64 overflow", "100 dims", "negative"],
)
def test_impossible_sizes_name_the_file_and_tensor(tmp_path, layout, problem):
    path = tmp_path / "sizes.pth"
    forge_checkpoint(path, {"w": layout})

    with pytest.raises(ValueError, match=re.escape(problem)) as error:
        read_checkpoint(path)
    assert str(path) in str(error.value) and "'w'" in str(error.value)


def test_huge_stride_of_a_length_one_dimension_is_unused(tmp_path):
    path = tmp_path / "stride.pth"
    forge_checkpoint(path, {"w": (2, (1, 3), (2**80, 1))})

    np.testing.assert_array_equal(
        read_checkpoint(path)["w"], np.array([[2, 3, 4]], np.float32), strict=True
    )


@pytest.mark.parametrize(
    ("dtype", "storage"),
    [
        (torch.complex64, "torch.ComplexFloatStorage"),
        (torch.uint16, "_rebuild_tensor_v3"),
    ],
)
def test_unsupported_dtype_is_named_not_called_malicious(tmp_path, dtype, storage):
    path = tmp_path / "dtype.pth"
    torch.save({"w": torch.zeros(2, dtype=dtype)}, path)

    with pytest.raises(ValueError, match=storage) as error:
        read_checkpoint(path)
    message = str(error.value)
    assert str(path) in message
    assert "does not support" in message and "torch.FloatStorage" in message
    assert "malicious" not in message


def test_pickle_declaring_a_huge_bytes_object(tmp_path):
    # BINBYTES8 with a length of 2**40: the C unpickler tries to allocate it.
    path = tmp_path / "binbytes.pth"
    write_torch_zip(path, b"\x80\x04\x8e" + (2**40).to_bytes(8, "little") + b"abc")

    message, peak = refusal_and_peak(path)

    assert str(path) in message and "pickle" in message
    assert peak < MIB


def test_optimizer_state_of_a_training_checkpoint_is_not_read(tmp_path):
    path = tmp_path / "training.pth"
    state_dict = {"w": torch.arange(4.0)}
    torch.save({"state_dict": state_dict, "optimizer": torch.zeros(256, 1024)}, path)

    tracemalloc.start()
    try:
        arrays = read_checkpoint(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    np.testing.assert_array_equal(arrays["w"], np.arange(4, dtype=np.float32))
    assert peak < MIB // 2  # the 1 MiB optimizer tensor was never read


# --------------------------------------------------------------------------
# safetensors
# --------------------------------------------------------------------------


def write_safetensors(path, header, buffer=b""):
    raw = header.encode() if isinstance(header, str) else header
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + buffer)
    return path


def test_deeply_nested_safetensors_header(tmp_path):
    path = write_safetensors(
        tmp_path / "deep.safetensors", "[" * 100_000 + "]" * 100_000
    )

    with pytest.raises(ValueError, match="nests too deeply") as error:
        read_safetensors(path)
    assert str(path) in str(error.value)


def test_safetensors_integer_of_too_many_digits(tmp_path):
    entry = {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}
    header = json.dumps({"w": entry}).replace("[0, 1]", f"[0, {'1' * 5000}]")
    path = write_safetensors(tmp_path / "digits.safetensors", header, b"\x01")

    with pytest.raises(ValueError, match="not valid JSON") as error:
        read_safetensors(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    ("shape", "problem"),
    [
        ([2**64, 0], "too large for an array"),
        ([2**62, 4, 0], "too large for an array"),
        ([1] * 100, "100 dimensions, more than 32"),
    ],
    ids=["2**64", "int64 overflow", "100 dims"],
)
def test_impossible_safetensors_shapes(tmp_path, shape, problem):
    entry = {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}
    if problem.startswith("100"):
        entry["data_offsets"] = [0, 4]
    path = write_safetensors(
        tmp_path / "shape.safetensors", json.dumps({"w": entry}), bytes(4)
    )

    with pytest.raises(ValueError, match=re.escape(problem)) as error:
        read_safetensors(path)
    assert str(path) in str(error.value) and "'w'" in str(error.value)


def test_overlapping_safetensors_tensors_are_refused(tmp_path):
    # 1000 tensors over one 1 MiB buffer would return 1 GiB.
    entry = {"dtype": "U8", "shape": [MIB], "data_offsets": [0, MIB]}
    header = json.dumps({f"w{i}": entry for i in range(1000)})
    path = write_safetensors(tmp_path / "overlap.safetensors", header, bytes(MIB))

    message, peak = refusal_and_peak(path, read_safetensors)

    assert str(path) in message
    assert "'w0' and 'w1' overlap" in message
    assert peak < MIB


def test_adjacent_and_empty_safetensors_tensors_are_read(tmp_path):
    header = {
        "b": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]},
        "a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
        "e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [4, 4]},
    }
    path = write_safetensors(
        tmp_path / "adjacent.safetensors", json.dumps(header), b"\x01\x02\x03\x04"
    )

    arrays = read_safetensors(path)

    np.testing.assert_array_equal(arrays["a"], np.array([1, 2], np.uint8))
    np.testing.assert_array_equal(arrays["b"], np.array([3, 4], np.uint8))
    assert arrays["e"].shape == (0, 3)


# --------------------------------------------------------------------------
# lambda-keras convert-timm
# --------------------------------------------------------------------------


@pytest.fixture
def good_checkpoint(tmp_path):
    path = tmp_path / "good.safetensors"
    safetensors.numpy.save_file({"w": np.ones(2, np.float32)}, path)
    return path


def convert_timm(capsys, *flags):
    """Runs `lambda-keras convert-timm --model LambdaResNet26T ...flags`;
    returns the exit code and the lines on stderr."""
    code = main(["convert-timm", "--model", "LambdaResNet26T", *map(str, flags)])
    return code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize(
    ("case", "received", "problem"),
    [
        ("missing", "--checkpoint", "there is none"),
        ("garbage", "--checkpoint", "not a zip-format torch.save file"),
        ("stride 0", "--checkpoint", "more than its 1-element storage"),
        ("extension", "--checkpoint", "unsupported extension"),
        ("no folder", "--output", "is not one"),
        ("size 0", "--input-size=0", "positive"),
        ("size -3", "--input-size=-3", "positive"),
    ],
)
def test_convert_timm_bad_input_is_one_line(
    tmp_path, capsys, good_checkpoint, case, received, problem
):
    checkpoint, output, size = good_checkpoint, tmp_path / "out.weights.h5", 32
    if case == "missing":
        checkpoint = tmp_path / "absent.pth"
    elif case == "garbage":
        checkpoint = tmp_path / "garbage.pth"
        checkpoint.write_bytes(b"garbage" * 10)
    elif case == "stride 0":
        checkpoint = tmp_path / "stride0.pth"
        forge_checkpoint(checkpoint, {"w": (0, (15000, 15000), (0, 0))}, 1, 1)
    elif case == "extension":
        checkpoint = tmp_path / "weights.npz"
        checkpoint.write_bytes(good_checkpoint.read_bytes())
    elif case == "no folder":
        output = tmp_path / "missing" / "out.weights.h5"
    else:
        size = int(received.split("=")[1])

    code, lines = convert_timm(
        capsys, "--checkpoint", checkpoint, "--output", output, "--input-size", size
    )

    assert code == 2
    assert len(lines) == 1, lines
    assert problem in lines[0] and f"Received: {received}" in lines[0]
    if received == "--checkpoint":
        assert f"Received: --checkpoint={checkpoint}" in lines[0]
    assert not output.exists()


def test_convert_timm_checkpoint_of_another_architecture(
    tmp_path, capsys, good_checkpoint
):
    output = tmp_path / "out.weights.h5"

    code, lines = convert_timm(
        capsys, "--checkpoint", good_checkpoint, "--output", output, "--input-size", 32
    )

    assert code == 2
    assert len(lines) == 1, lines
    assert "lacks" in lines[0] and "another architecture" in lines[0]
    assert f"Received: --checkpoint={good_checkpoint}" in lines[0]
    assert not output.exists()


# --------------------------------------------------------------------------
# Keras weights files and load_weights_file
# --------------------------------------------------------------------------


def tiny_model(classes=2):
    return keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4, name="hidden"),
            keras.layers.Dense(classes, name="out"),
        ]
    )


@pytest.mark.parametrize("case", ["truncated", "not hdf5", "other architecture"])
def test_bad_keras_weights_file_leaves_the_model_unchanged(tmp_path, case):
    path = tmp_path / "bad.weights.h5"
    if case == "other architecture":
        # Its "hidden" layer fits, its "out" layer does not.
        tiny_model(classes=3).save_weights(path)
    elif case == "truncated":
        tiny_model().save_weights(path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(b"not an HDF5 file" * 100)
    model = tiny_model()
    before = model.get_weights()

    with pytest.raises(ValueError) as error:
        weights.load_weights_file(model, path)

    assert str(path) in str(error.value)
    assert str(error.value).endswith(f"Received: path={str(path)!r}")
    for expected, after in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(after, expected)


def test_bad_weights_file_through_a_constructor(tmp_path):
    path = tmp_path / "bad.weights.h5"
    path.write_bytes(b"not an HDF5 file" * 100)
    assert weights.resolve_weights(str(path), "LambdaResNet26T") == str(path)

    with pytest.raises(ValueError, match=re.escape(f"Received: path={str(path)!r}")):
        LambdaResNet26T(weights=str(path), input_shape=(32, 32, 3))


def test_timm_checkpoint_of_another_architecture_names_the_file(
    tmp_path, good_checkpoint
):
    model = LambdaResNet26T(input_shape=(32, 32, 3))
    before = model.get_weights()

    with pytest.raises(ValueError, match="lacks") as error:
        weights.load_weights_file(model, good_checkpoint)

    assert str(good_checkpoint) in str(error.value)
    for expected, after in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(after, expected)
