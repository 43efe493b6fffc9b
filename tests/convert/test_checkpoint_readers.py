"""The checkpoint readers against torch and safetensors as independent writers.

torch and safetensors are only used here, to write the files; the readers
under test import neither.
"""

import collections
import os
import pickle
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import safetensors.numpy
import safetensors.torch
import torch
from forged_checkpoints import forge_checkpoint
from forged_checkpoints import write_torch_zip

from lambda_keras.convert import UnsafeCheckpointError
from lambda_keras.convert import read_checkpoint
from lambda_keras.convert import read_safetensors
from lambda_keras.convert import read_torch_checkpoint

DTYPES = [
    torch.float64,
    torch.float32,
    torch.float16,
    torch.bfloat16,
    torch.int64,
    torch.int32,
    torch.int16,
    torch.int8,
    torch.uint8,
    torch.bool,
]
DTYPE_IDS = [str(dtype).removeprefix("torch.") for dtype in DTYPES]


def random_tensor(shape, dtype, seed=0):
    generator = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=generator).bool()
    if dtype.is_floating_point:
        return (torch.randn(shape, generator=generator) * 100).to(dtype)
    info = torch.iinfo(dtype)
    low, high = max(info.min, -(2**40)), min(info.max, 2**40)
    return torch.randint(low, high, shape, generator=generator, dtype=dtype)


def expected(tensor):
    """The numpy array a reader must return for `tensor` (bf16 -> float32)."""
    if tensor.dtype == torch.bfloat16:
        return tensor.float().numpy()
    return tensor.numpy()


def assert_same(arrays, tensors):
    assert list(arrays) == list(tensors)
    for name, tensor in tensors.items():
        np.testing.assert_array_equal(
            arrays[name], expected(tensor), strict=True, err_msg=name
        )
        assert arrays[name].flags.owndata, name
        assert arrays[name].flags.writeable, name


def tensors_with_layouts(dtype):
    """Contiguous, 0-d, empty, transposed and offset views of shared storage."""
    big = random_tensor((5, 6), dtype)
    tensors = {
        "matrix": random_tensor((3, 4), dtype, seed=1),
        "vector": random_tensor((7,), dtype, seed=2),
        "scalar": random_tensor((), dtype, seed=3),
        "empty": random_tensor((0, 3), dtype),
        "conv_kernel": random_tensor((4, 3, 2, 2), dtype, seed=4),
        "big": big,
        "transposed": big.t(),
        "offset_slice": big[2:, 1:4],
        "offset_row": big[3],
    }
    assert not tensors["transposed"].is_contiguous()
    assert tensors["offset_slice"].storage_offset() == 13
    assert tensors["offset_slice"].untyped_storage().data_ptr() == big.data_ptr()
    return tensors


def conv_bn_state_dict():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))
    model(torch.randn(2, 3, 9, 9))  # Training mode: updates the BN statistics.
    return model.state_dict()


# --------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_torch_save_round_trip(tmp_path, dtype):
    tensors = tensors_with_layouts(dtype)
    path = tmp_path / "weights.pth"
    torch.save(tensors, path)

    assert_same(read_torch_checkpoint(path), tensors)
    assert_same(read_checkpoint(str(path)), tensors)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_safetensors_torch_writer_round_trip(tmp_path, dtype):
    # safetensors.torch only saves contiguous, unshared tensors.
    tensors = {
        name: tensor.contiguous().clone()
        for name, tensor in tensors_with_layouts(dtype).items()
    }
    path = tmp_path / "weights.safetensors"
    safetensors.torch.save_file(tensors, path, metadata={"format": "pt"})

    # The writer sorts the tensors by name; compare in the original order.
    for arrays in (read_safetensors(path), read_checkpoint(path)):
        assert sorted(arrays) == sorted(tensors)
        assert_same({name: arrays[name] for name in tensors}, tensors)


@pytest.mark.parametrize(
    "dtype",
    [dtype for dtype in DTYPES if dtype != torch.bfloat16],  # numpy has no bf16.
    ids=[name for name in DTYPE_IDS if name != "bfloat16"],
)
def test_safetensors_numpy_writer_round_trip(tmp_path, dtype):
    # safetensors.numpy.save_file needs C-contiguous arrays: given a
    # transposed one, it silently writes the bytes in memory order (0.8.0).
    arrays = {
        name: np.ascontiguousarray(tensor.numpy())
        for name, tensor in tensors_with_layouts(dtype).items()
    }
    path = tmp_path / "weights.safetensors"
    safetensors.numpy.save_file(arrays, path)

    read = read_safetensors(path)
    assert sorted(read) == sorted(arrays)
    for name, array in arrays.items():
        np.testing.assert_array_equal(read[name], array, strict=True, err_msg=name)


def test_bfloat16_special_values(tmp_path):
    values = torch.tensor(
        [0.0, -0.0, 1.0, -1.5, 3.140625, 1e38, 1e-40, float("inf"), float("-inf")],
        dtype=torch.bfloat16,
    )
    torch.save({"v": values}, tmp_path / "v.pt")
    safetensors.torch.save_file({"v": values}, tmp_path / "v.safetensors")

    for name in ("v.pt", "v.safetensors"):
        array = read_checkpoint(tmp_path / name)["v"]
        np.testing.assert_array_equal(array, values.float().numpy(), strict=True)
        assert np.signbit(array[1])


def test_conv_bn_state_dict_both_formats(tmp_path):
    state_dict = conv_bn_state_dict()
    assert state_dict["1.num_batches_tracked"].dtype == torch.int64
    torch.save(state_dict, tmp_path / "model.pth")
    safetensors.torch.save_file(dict(state_dict), tmp_path / "model.safetensors")

    from_torch = read_checkpoint(tmp_path / "model.pth")
    from_safetensors = read_checkpoint(tmp_path / "model.safetensors")

    assert_same(from_torch, state_dict)
    assert sorted(from_safetensors) == sorted(state_dict)
    assert_same({name: from_safetensors[name] for name in state_dict}, state_dict)
    assert from_torch["1.num_batches_tracked"].dtype == np.int64
    assert from_torch["1.num_batches_tracked"].shape == ()
    assert from_torch["1.num_batches_tracked"] == 1
    assert from_torch["0.weight"].shape == (8, 3, 3, 3)


def test_parameters_and_ordered_dicts(tmp_path):
    weight = torch.nn.Parameter(torch.randn(4, 3))
    checkpoint = collections.OrderedDict(w=weight, b=torch.zeros(4))
    torch.save(checkpoint, tmp_path / "params.bin")

    arrays = read_checkpoint(tmp_path / "params.bin")

    np.testing.assert_array_equal(arrays["w"], weight.detach().numpy(), strict=True)
    np.testing.assert_array_equal(arrays["b"], np.zeros(4, np.float32), strict=True)


def test_big_endian_checkpoint(tmp_path):
    tensors = {
        "f": random_tensor((3, 4), torch.float32),
        "i": random_tensor((5,), torch.int64),
        "h": random_tensor((2, 2), torch.float16).t(),
        "b": random_tensor((3,), torch.bfloat16),
        "q": random_tensor((4,), torch.bool),
    }
    torch.save(tensors, tmp_path / "little.pt")
    # torch numbers the storages "0", "1", ... in the order it pickles them.
    itemsizes = {
        str(key): tensor.element_size() for key, tensor in enumerate(tensors.values())
    }
    with (
        zipfile.ZipFile(tmp_path / "little.pt") as source,
        zipfile.ZipFile(tmp_path / "big.pt", "w") as target,
    ):
        for name in source.namelist():
            data = source.read(name)
            if name.endswith("/byteorder"):
                data = b"big"
            elif "/data/" in name:
                unsigned = np.dtype(f"<u{itemsizes[name.rsplit('/', 1)[1]]}")
                data = np.frombuffer(data, unsigned).byteswap().tobytes()
            target.writestr(name, data)

    assert_same(read_torch_checkpoint(tmp_path / "big.pt"), tensors)


# --------------------------------------------------------------------------
# Training checkpoints
# --------------------------------------------------------------------------


def test_timm_training_checkpoint(tmp_path):
    state_dict = conv_bn_state_dict()
    checkpoint = {
        "epoch": 3,
        "arch": "resnet50",
        "state_dict": state_dict,
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]},
        "state_dict_ema": {name: t + 1 for name, t in state_dict.items()},
        "version": 2,
    }
    torch.save(checkpoint, tmp_path / "checkpoint.pth.tar.pth")

    assert_same(read_checkpoint(tmp_path / "checkpoint.pth.tar.pth"), state_dict)


def test_data_parallel_prefix_is_dropped(tmp_path):
    state_dict = conv_bn_state_dict()
    prefixed = {f"module.{name}": tensor for name, tensor in state_dict.items()}
    torch.save({"epoch": 3, "state_dict": prefixed}, tmp_path / "a.pth")
    torch.save(prefixed, tmp_path / "b.pth")

    assert_same(read_checkpoint(tmp_path / "a.pth"), state_dict)
    assert_same(read_checkpoint(tmp_path / "b.pth"), state_dict)


def test_state_dict_lookup_order(tmp_path):
    first = {"w": torch.ones(2)}
    second = {"w": torch.zeros(2)}
    torch.save({"model": first, "state_dict_ema": second}, tmp_path / "m.pt")
    torch.save({"epoch": 1, "state_dict_ema": second}, tmp_path / "e.pt")
    torch.save({"state_dict_ema": second, "state_dict": first}, tmp_path / "s.pt")

    assert_same(read_checkpoint(tmp_path / "m.pt"), first)
    assert_same(read_checkpoint(tmp_path / "e.pt"), second)
    assert_same(read_checkpoint(tmp_path / "s.pt"), first)


def test_non_tensor_in_state_dict_is_named(tmp_path):
    path = tmp_path / "bad.pth"
    torch.save({"state_dict": {"w": torch.ones(2), "step": 7}}, path)

    with pytest.raises(ValueError, match=r"\['step'\] is a int, not a tensor"):
        read_checkpoint(path)
    # A plain state dict with a non-tensor next to the tensors.
    torch.save({"w": torch.ones(2), "epoch": 3}, path)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*'epoch'"):
        read_checkpoint(path)


def test_colliding_module_prefix(tmp_path):
    path = tmp_path / "twice.pth"
    torch.save({"module.w": torch.ones(1), "w": torch.ones(1)}, path)

    with pytest.raises(ValueError, match="'w' twice"):
        read_checkpoint(path)


def test_not_a_dict(tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save(torch.ones(3), path)

    with pytest.raises(ValueError, match="holds a tensor, not a state dict"):
        read_checkpoint(path)


# --------------------------------------------------------------------------
# Security
# --------------------------------------------------------------------------


class RunsShellCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class RunsEval:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.mark.parametrize(
    ("payload", "refused"),
    [(RunsShellCommand, r"(os|posix)\.system"), (RunsEval, r"builtins\.eval")],
    ids=["os.system", "builtins.eval"],
)
def test_crafted_pickle_is_refused_before_running(tmp_path, payload, refused):
    marker = tmp_path / "pwned"
    state = {"weight": torch.ones(2), "evil": payload(marker)}
    hand_made = tmp_path / "hand_made.pth"
    write_torch_zip(hand_made, pickle.dumps(state["evil"], protocol=2))
    via_torch = tmp_path / "via_torch.pth"
    torch.save(state, via_torch)
    via_torch_nested = tmp_path / "nested.pth"
    torch.save({"epoch": 1, "state_dict": state}, via_torch_nested)

    for path in (hand_made, via_torch, via_torch_nested):
        with pytest.raises(UnsafeCheckpointError, match=refused) as error:
            read_checkpoint(path)
        assert isinstance(error.value, ValueError)
        assert str(path) in str(error.value)
        assert "malicious" in str(error.value)
        assert not marker.exists()
    # The payload does work when unpickled without the allowlist.
    pickle.loads(pickle.dumps(payload(marker), protocol=2))
    assert marker.exists()


def test_pickled_module_is_refused(tmp_path):
    path = tmp_path / "whole_model.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), path)

    with pytest.raises(UnsafeCheckpointError, match=r"torch\.nn\.modules\.\S+"):
        read_checkpoint(path)


def test_forged_layout_in_range_is_read(tmp_path):
    path = tmp_path / "forged.pt"
    forge_checkpoint(path, {"w": (1, (2, 2), (1, 3))})

    np.testing.assert_array_equal(
        read_checkpoint(path)["w"],
        np.array([[1, 4], [2, 5]], np.float32),
        strict=True,
    )


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ((0, (7,), (1,)), "runs past the end of its 6-element storage"),
        ((2, (2, 2), (1, 3)), "runs past the end"),
        ((6, (1,), (1,)), "runs past the end"),
        ((0, (2, 2), (-1, 1)), "invalid tensor layout"),
        ((-1, (2,), (1,)), "invalid tensor layout"),
        ((0, (2, 2), (1,)), "invalid tensor layout"),
    ],
)
def test_forged_layout_out_of_range_is_refused(tmp_path, layout, message):
    path = tmp_path / "forged.pt"
    forge_checkpoint(path, {"w": layout})

    with pytest.raises(ValueError, match=re.escape(message)) as error:
        read_checkpoint(path)
    assert str(path) in str(error.value)


def test_storage_record_shorter_than_declared(tmp_path):
    path = tmp_path / "short.pt"
    forge_checkpoint(path, {"w": (0, (2,), (1,))}, numel=6, stored=3)

    with pytest.raises(ValueError, match="holds 12 bytes, fewer than 6 elements"):
        read_checkpoint(path)


def test_reader_imports_neither_torch_nor_safetensors(tmp_path):
    torch.save(conv_bn_state_dict(), tmp_path / "model.pth")
    safetensors.torch.save_file(conv_bn_state_dict(), tmp_path / "model.safetensors")
    script = (
        "import sys\n"
        "sys.modules['torch'] = sys.modules['safetensors'] = None\n"
        "from lambda_keras.convert import read_checkpoint\n"
        f"a = read_checkpoint({str(tmp_path / 'model.pth')!r})\n"
        f"b = read_checkpoint({str(tmp_path / 'model.safetensors')!r})\n"
        "assert sorted(a) == sorted(b) and len(a) == 7, (a, b)\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


# --------------------------------------------------------------------------
# Unsupported and corrupt files
# --------------------------------------------------------------------------


def test_legacy_torch_format_is_rejected(tmp_path):
    path = tmp_path / "legacy.pth"
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)

    with pytest.raises(ValueError, match=r"legacy.*torch>=1\.6") as error:
        read_checkpoint(path)
    assert str(path) in str(error.value)


def test_torchscript_archive_is_rejected(tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)

    with pytest.raises(ValueError, match="TorchScript"):
        read_checkpoint(path)


@pytest.mark.parametrize("name", ["garbage.pth", "garbage.safetensors"])
def test_garbage_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00this is not json" + b"!" * 64)

    with pytest.raises(ValueError, match=re.escape(str(path))):
        read_checkpoint(path)


def test_zip_without_data_pkl(tmp_path):
    path = tmp_path / "other.zip.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")

    with pytest.raises(ValueError, match="data.pkl"):
        read_checkpoint(path)


@pytest.fixture
def safetensors_bytes(tmp_path):
    path = tmp_path / "good.safetensors"
    safetensors.torch.save_file(dict(conv_bn_state_dict()), path)
    return path.read_bytes()


def write_safetensors(tmp_path, header, buffer=b""):
    raw = header.encode() if isinstance(header, str) else header
    path = tmp_path / "bad.safetensors"
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + buffer)
    return path


def test_truncated_safetensors(tmp_path, safetensors_bytes):
    path = tmp_path / "truncated.safetensors"
    path.write_bytes(safetensors_bytes[: len(safetensors_bytes) // 2])

    with pytest.raises(ValueError, match="out of range") as error:
        read_safetensors(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "file too short"),
        (b"\x01\x02\x03", "file too short"),
        ((1000).to_bytes(8, "little") + b"{}", "runs past the end of the file"),
        ((2**64 - 1).to_bytes(8, "little"), "runs past the end of the file"),
        ((4).to_bytes(8, "little") + b"\xff\xfe{}", "not valid JSON"),
        ((6).to_bytes(8, "little") + b"[1, 2]", "not an object"),
    ],
    ids=["empty", "3 bytes", "long header", "huge header", "not utf-8", "list"],
)
def test_broken_safetensors_framing(tmp_path, content, message):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(content)

    with pytest.raises(ValueError, match=message) as error:
        read_safetensors(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('{"dtype": "F32", "shape": [2], "data_offsets": [0, 12]}', "out of range"),
        ('{"dtype": "F32", "shape": [2], "data_offsets": [4, 2]}', "out of range"),
        ('{"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}', "out of range"),
        ('{"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}', "need 12"),
        ('{"dtype": "F64", "shape": [2], "data_offsets": [0, 8]}', "need 16"),
        ('{"dtype": "F32", "shape": [2], "data_offsets": [0]}', "data_offsets"),
        ('{"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}', "shape"),
        ('{"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}', "shape"),
        ('{"dtype": "F8_E4M3", "shape": [8], "data_offsets": [0, 8]}', "F8_E4M3"),
        ('"F32"', "not an object"),
    ],
)
def test_inconsistent_safetensors_header(tmp_path, entry, message):
    path = write_safetensors(tmp_path, f'{{"w": {entry}}}', buffer=bytes(8))

    with pytest.raises(ValueError, match=re.escape(message)) as error:
        read_safetensors(path)
    assert str(path) in str(error.value)
    assert "'w'" in str(error.value)


def test_duplicate_safetensors_keys(tmp_path):
    entry = '{"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}'
    path = write_safetensors(tmp_path, f'{{"w": {entry}, "w": {entry}}}', b"\x01")

    with pytest.raises(ValueError, match="duplicate"):
        read_safetensors(path)


def test_hand_written_safetensors_with_metadata_and_padding(tmp_path):
    header = (
        '{"__metadata__": {"format": "pt"}, '
        '"a": {"dtype": "BOOL", "shape": [3], "data_offsets": [0, 3]}, '
        '"b": {"dtype": "I16", "shape": [], "data_offsets": [3, 5]}, '
        '"c": {"dtype": "BF16", "shape": [1, 2], "data_offsets": [5, 9]}}   '
    )
    buffer = b"\x00\x01\x02" + (-2).to_bytes(2, "little", signed=True)
    buffer += b"\x80\x3f\x20\xc0"  # bfloat16 1.0 and -2.5
    path = write_safetensors(tmp_path, header, buffer)

    arrays = read_safetensors(path)

    assert list(arrays) == ["a", "b", "c"]
    np.testing.assert_array_equal(arrays["a"], [False, True, True], strict=False)
    assert arrays["a"].dtype == bool
    np.testing.assert_array_equal(arrays["b"], np.array(-2, np.int16), strict=True)
    np.testing.assert_array_equal(
        arrays["c"], np.array([[1.0, -2.5]], np.float32), strict=True
    )


@pytest.mark.parametrize("name", ["weights.npz", "weights.h5", "weights", "w.pth.tar"])
def test_unsupported_extension(tmp_path, name):
    path = tmp_path / name
    torch.save({"w": torch.ones(1)}, path)

    with pytest.raises(ValueError, match="unsupported extension") as error:
        read_checkpoint(path)
    assert str(path) in str(error.value)
    assert ".safetensors" in str(error.value) and ".pth" in str(error.value)
