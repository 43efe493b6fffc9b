"""Readers of PyTorch checkpoint files into numpy, without torch.

Two formats are read, each into a flat `dict` of name -> `numpy.ndarray`:

- `.safetensors` files, parsed by hand: an 8-byte little-endian header
  length N, N bytes of JSON describing each tensor, then the raw bytes.
- `torch.save` files in the zip format of torch >= 1.6 (`.pth`, `.pt`,
  `.bin`): `<prefix>/data.pkl` is unpickled with a strict allowlist of
  globals, and the tensors are rebuilt by small numpy stand-ins from the
  `<prefix>/data/<key>` storage records. Any global outside the allowlist
  (`os.system`, `builtins.eval`, a pickled `nn.Module`, ...) is refused with
  an `UnsafeCheckpointError` before anything is called, so a malicious file
  cannot run code. Neither torch nor safetensors is imported.

Every returned array owns its memory. bfloat16 tensors come back as float32
(exactly: bfloat16 is the top half of a float32). Bad files raise a
`ValueError` naming the file and the problem.
"""

import collections
import io
import json
import math
import os
import pickle
import re
import reprlib
import zipfile

import numpy as np
from numpy.lib.stride_tricks import as_strided

SAFETENSORS_EXTENSIONS = (".safetensors",)
TORCH_EXTENSIONS = (".pth", ".pt", ".bin")

# safetensors dtype name -> little-endian numpy dtype of the stored bytes.
# BF16 is read as raw uint16 and BOOL as uint8, then converted.
_SAFETENSORS_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("u1"),
}

# torch storage type name -> (numpy dtype of one stored element, kind), where
# kind is "bf16" or "bool" for the elements converted after reading.
_TORCH_STORAGES = {
    "DoubleStorage": ("f8", None),
    "FloatStorage": ("f4", None),
    "HalfStorage": ("f2", None),
    "BFloat16Storage": ("u2", "bf16"),
    "LongStorage": ("i8", None),
    "IntStorage": ("i4", None),
    "ShortStorage": ("i2", None),
    "CharStorage": ("i1", None),
    "ByteStorage": ("u1", None),
    "BoolStorage": ("u1", "bool"),
}

# Keys under which training checkpoints (timm's among them) keep the state
# dict, in order of preference. The top-level dict is used when none is.
_STATE_DICT_KEYS = ("state_dict", "model", "state_dict_ema")


class UnsafeCheckpointError(ValueError):
    """A checkpoint's pickle asks for a global outside the allowlist."""


def read_checkpoint(path):
    """Reads a PyTorch checkpoint file into numpy arrays.

    Dispatches on the extension: `.safetensors` to `read_safetensors`, and
    `.pth`, `.pt` or `.bin` to `read_torch_checkpoint`.

    Args:
        path: str or path-like, the checkpoint file.

    Returns:
        dict of tensor name -> `numpy.ndarray`.

    Raises:
        ValueError: the extension is not supported, or the file is not a
            valid checkpoint (see the two readers).
    """
    extension = os.path.splitext(os.fspath(path))[1].lower()
    if extension in SAFETENSORS_EXTENSIONS:
        return read_safetensors(path)
    if extension in TORCH_EXTENSIONS:
        return read_torch_checkpoint(path)
    supported = ", ".join(SAFETENSORS_EXTENSIONS + TORCH_EXTENSIONS)
    raise ValueError(
        f"Cannot read checkpoint {os.fspath(path)!r}: unsupported extension "
        f"{extension or '(none)'!r}. Supported extensions: {supported}."
    )


# --------------------------------------------------------------------------
# safetensors
# --------------------------------------------------------------------------


def read_safetensors(path):
    """Reads a `.safetensors` file into numpy arrays, without safetensors.

    The header is validated before any tensor is read: every tensor needs a
    supported dtype (F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL), a
    shape of non-negative integers and `data_offsets` inside the byte buffer
    spanning exactly `itemsize * prod(shape)` bytes. The optional
    `__metadata__` entry is ignored.

    Args:
        path: str or path-like, the `.safetensors` file.

    Returns:
        dict of tensor name -> `numpy.ndarray` in native byte order, in the
        order of the header. BF16 tensors are returned as float32 and BOOL
        tensors as bool.

    Raises:
        ValueError: the file is too short, its header length runs past the
            end of the file, the header is not valid JSON or does not
            describe the tensors correctly, or a dtype is not supported.
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        file_size = os.fstat(file.fileno()).st_size
        if file_size < 8:
            _fail(path, f"file too short ({file_size} bytes) for a safetensors file")
        header_size = int.from_bytes(file.read(8), "little")
        if header_size > file_size - 8:
            _fail(
                path,
                f"header length {header_size} runs past the end of the file "
                f"({file_size} bytes); the file is truncated or not safetensors",
            )
        header = _parse_safetensors_header(path, file.read(header_size))
        buffer_start = 8 + header_size
        buffer_size = file_size - buffer_start
        entries = [
            (name, *_check_safetensors_entry(path, name, entry, buffer_size))
            for name, entry in header.items()
            if name != "__metadata__"
        ]
        tensors = {}
        for name, dtype_name, shape, begin, end in entries:
            array = np.empty(shape, _SAFETENSORS_DTYPES[dtype_name])
            if end > begin:
                file.seek(buffer_start + begin)
                read = file.readinto(memoryview(array.reshape(-1).view(np.uint8)))
                if read != end - begin:
                    _fail(path, f"tensor {name!r}: could not read its bytes")
            tensors[name] = _to_native(array, dtype_name)
    return tensors


def _parse_safetensors_header(path, raw):
    def no_duplicates(pairs):
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys):
            _fail(path, f"header has duplicate keys {sorted(keys)!r}")
        return dict(pairs)

    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _error(path, f"header is not valid JSON ({error})") from None
    if not isinstance(header, dict):
        _fail(path, f"header is a JSON {type(header).__name__}, not an object")
    return header


def _check_safetensors_entry(path, name, entry, buffer_size):
    """Returns (dtype name, shape, begin, end) of a valid header entry."""
    if not isinstance(entry, dict):
        _fail(path, f"tensor {name!r}: header entry is not an object: {entry!r}")
    dtype_name = entry.get("dtype")
    if dtype_name not in _SAFETENSORS_DTYPES:
        _fail(
            path,
            f"tensor {name!r}: unsupported dtype {dtype_name!r}; supported: "
            f"{', '.join(_SAFETENSORS_DTYPES)}",
        )
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        _fail(path, f"tensor {name!r}: invalid shape {shape!r}")
    offsets = entry.get("data_offsets")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_int(offset) for offset in offsets)
    ):
        _fail(path, f"tensor {name!r}: invalid data_offsets {offsets!r}")
    begin, end = offsets
    if not 0 <= begin <= end <= buffer_size:
        _fail(
            path,
            f"tensor {name!r}: data_offsets {offsets} out of range of the "
            f"{buffer_size}-byte data buffer (truncated file?)",
        )
    nbytes = _SAFETENSORS_DTYPES[dtype_name].itemsize * math.prod(shape)
    if end - begin != nbytes:
        _fail(
            path,
            f"tensor {name!r}: data_offsets {offsets} span {end - begin} bytes "
            f"but dtype {dtype_name} and shape {shape} need {nbytes}",
        )
    return dtype_name, tuple(shape), begin, end


# --------------------------------------------------------------------------
# torch.save zip format
# --------------------------------------------------------------------------


def read_torch_checkpoint(path):
    """Reads a `torch.save` checkpoint into numpy arrays, without torch.

    Only the zip format written by torch >= 1.6 is read. Its pickle may only
    use these globals, replaced by numpy stand-ins:
    `torch._utils._rebuild_tensor_v2`, `torch._utils._rebuild_tensor`,
    `torch._utils._rebuild_parameter`, `collections.OrderedDict` and the
    storage types `torch.{Double,Float,Half,BFloat16,Long,Int,Short,Char,
    Byte,Bool}Storage`. Any other global is refused before anything is
    called.

    The checkpoint may be a state dict, or a training checkpoint (as timm
    writes) holding it under "state_dict", "model" or "state_dict_ema",
    looked up in that order; the other entries of such a checkpoint (epoch,
    optimizer state, ...) are ignored. A leading "module." (from
    `DataParallel`) is dropped from the names.

    Args:
        path: str or path-like, the checkpoint file.

    Returns:
        dict of tensor name -> `numpy.ndarray` in native byte order. bfloat16
        tensors are returned as float32.

    Raises:
        UnsafeCheckpointError: (a `ValueError`) the pickle asks for a global
            outside the allowlist; the file may be malicious.
        ValueError: the file is not a zip-format torch checkpoint, is
            corrupt, or its state dict holds a value that is not a tensor.
    """
    path = os.fspath(path)
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as file:
            start = file.read(2)
        if start[:1] == b"\x80":
            _fail(
                path,
                "legacy (non-zip) torch.save format; re-save it with "
                "torch>=1.6: torch.save(torch.load(f), f)",
            )
        _fail(path, "not a zip-format torch.save file")
    try:
        with zipfile.ZipFile(path) as archive:
            checkpoint = _unpickle_archive(path, archive)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as error:
        raise _error(path, f"corrupt zip archive ({error})") from None
    return _select_state_dict(path, checkpoint)


def _unpickle_archive(path, archive):
    names = archive.namelist()
    pickles = [name for name in names if re.fullmatch(r"[^/]+/data\.pkl", name)]
    if any(re.fullmatch(r"[^/]+/constants\.pkl", name) for name in names):
        _fail(
            path,
            "TorchScript archive (torch.jit.save), not a torch.save file; "
            "save the model's state_dict with torch.save instead",
        )
    if len(pickles) != 1:
        _fail(
            path,
            f"expected one '<prefix>/data.pkl' in the zip archive, found "
            f"{len(pickles)}: not a torch.save file",
        )
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in names:
        byteorder = archive.read(prefix + "byteorder").decode("ascii", "replace")
        if byteorder not in ("little", "big"):
            _fail(path, f"unknown byteorder {byteorder!r}")
    unpickler = _RestrictedUnpickler(path, archive, prefix, byteorder)
    try:
        return unpickler.load()
    except UnsafeCheckpointError:
        raise
    except _MalformedPickleError as problem:
        raise _error(path, str(problem)) from None
    except Exception as error:
        # Any other failure is a malformed pickle (bad opcodes, a stand-in
        # called with the wrong arguments, a storage type called, ...).
        raise _error(
            path,
            f"corrupt or unsupported pickle in {pickles[0]!r} "
            f"({type(error).__name__}: {error})",
        ) from None


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only resolves the allowlisted torch globals."""

    def __init__(self, path, archive, prefix, byteorder):
        super().__init__(io.BytesIO(archive.read(prefix + "data.pkl")))
        self._path = path
        self._archive = archive
        self._prefix = prefix
        self._byte_prefix = ">" if byteorder == "big" else "<"
        self._records = {}

    def find_class(self, module, name):
        if module == "torch" and name in _TORCH_STORAGES:
            return _StorageType(name)
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            # Protocol 0-2 pickles spell some modules as Python 2 did.
            python3 = _PYTHON2_MODULES.get(module, module)
            spelled = f" (written `{module}.{name}`)" if python3 != module else ""
            raise UnsafeCheckpointError(
                f"Refusing to load checkpoint {self._path!r}: its pickle asks "
                f"for the global `{python3}.{name}`{spelled}, which is not "
                "allowed in a tensor checkpoint. The file may be malicious (or "
                "it pickles objects other than tensors, such as a whole model: "
                "save its state_dict instead)."
            )
        return allowed

    def persistent_load(self, pid):
        if (
            not isinstance(pid, tuple)
            or len(pid) != 5
            or pid[0] != "storage"
            or not isinstance(pid[1], _StorageType)
            or not isinstance(pid[2], str)
            or not _is_int(pid[4])
            or pid[4] < 0
        ):
            raise _MalformedPickleError(f"unsupported persistent id {_short(pid)}")
        _, storage_type, key, _, numel = pid
        if key not in self._records:
            record = f"{self._prefix}data/{key}"
            try:
                self._records[key] = self._archive.read(record)
            except KeyError:
                problem = f"missing storage record {record!r}"
                raise _MalformedPickleError(problem) from None
        data = self._records[key]
        dtype = np.dtype(self._byte_prefix + storage_type.code)
        if len(data) < numel * dtype.itemsize:
            raise _MalformedPickleError(
                f"storage record {key!r} holds {len(data)} bytes, fewer than "
                f"{numel} elements of {storage_type!r}"
            )
        return _Storage(np.frombuffer(data, dtype, count=numel), storage_type.kind)


class _MalformedPickleError(Exception):
    """A structural problem found while unpickling; names no file."""


class _Frozen:
    """Base of the stand-ins: a pickle's BUILD opcode cannot alter them."""

    __slots__ = ()

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __setstate__(self, state):
        raise _MalformedPickleError(f"the pickle tries to set the state of {self!r}")


class _StorageType(_Frozen):
    """Stand-in for a `torch.<Type>Storage` class: just its element type."""

    __slots__ = ("name", "code", "kind")

    def __init__(self, name):
        code, kind = _TORCH_STORAGES[name]
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "kind", kind)

    def __repr__(self):
        return f"torch.{self.name}"


class _Storage(_Frozen):
    """Stand-in for a loaded storage: a flat read-only numpy array."""

    __slots__ = ("array", "kind")

    def __init__(self, array, kind):
        object.__setattr__(self, "array", array)
        object.__setattr__(self, "kind", kind)

    def __repr__(self):
        return f"<storage of {self.array.size} {self.array.dtype}>"


def _rebuild_tensor(storage, storage_offset, size, stride):
    """numpy stand-in for `torch._utils._rebuild_tensor`."""
    if not isinstance(storage, _Storage):
        raise _MalformedPickleError(
            f"tensor rebuilt from a {type(storage).__name__}, not a storage"
        )
    size, stride = tuple(size), tuple(stride)
    if (
        not _is_int(storage_offset)
        or storage_offset < 0
        or len(size) != len(stride)
        or not all(_is_int(n) and n >= 0 for n in size + stride)
    ):
        raise _MalformedPickleError(
            f"invalid tensor layout (storage_offset={_short(storage_offset)}, "
            f"size={_short(size)}, stride={_short(stride)})"
        )
    array = storage.array
    if math.prod(size) == 0:
        result = np.zeros(size, array.dtype)
    else:
        last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= array.size:
            raise _MalformedPickleError(
                f"tensor of size {_short(size)} and stride {_short(stride)} at offset "
                f"{storage_offset} runs past the end of its {array.size}-element "
                "storage"
            )
        itemsize = array.dtype.itemsize
        view = as_strided(
            array[storage_offset:],
            shape=size,
            strides=tuple(s * itemsize for s in stride),
            writeable=False,
        )
        result = np.array(view, order="C")
    return _to_native(result, storage.kind)


def _rebuild_tensor_v2(
    storage, storage_offset, size, stride, requires_grad, backward_hooks, *args
):
    """numpy stand-in for `torch._utils._rebuild_tensor_v2`."""
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    """numpy stand-in for `torch._utils._rebuild_parameter`."""
    if not isinstance(data, np.ndarray):
        raise _MalformedPickleError(f"parameter rebuilt from {type(data).__name__}")
    return data


_PYTHON2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}

_ALLOWED_GLOBALS = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


def _select_state_dict(path, checkpoint):
    if not isinstance(checkpoint, dict):
        _fail(
            path,
            f"holds a {type(checkpoint).__name__}, not a state dict (a dict of "
            "name -> tensor)",
        )
    state_dict, where = checkpoint, "checkpoint"
    for key in _STATE_DICT_KEYS:
        if isinstance(checkpoint.get(key), dict):
            state_dict, where = checkpoint[key], f"checkpoint[{key!r}]"
            break
    tensors = {}
    for name, value in state_dict.items():
        if not isinstance(name, str):
            _fail(path, f"{where} has a non-string key {_short(name)}")
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            _fail(
                path,
                f"{where}[{name!r}] is a {type(value).__name__}, not a tensor",
            )
        name = name.removeprefix("module.")
        if name in tensors:
            _fail(path, f"{where} has {name!r} twice once 'module.' is dropped")
        tensors[name] = value
    return tensors


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _to_native(array, kind):
    """Converts stored elements to native numpy: bf16 -> float32, bool."""
    if kind in ("BF16", "bf16"):
        # bfloat16 is the high half of a float32: shift its bits up.
        result = np.empty(array.shape, np.float32)
        np.left_shift(array, 16, out=result.view(np.uint32), dtype=np.uint32)
        return result
    if kind in ("BOOL", "bool"):
        # np.asarray: operators on 0-d arrays return numpy scalars.
        return np.asarray(array != 0)
    if not array.dtype.isnative:
        return array.astype(array.dtype.newbyteorder("="))
    return array


def _short(value):
    """repr() of a value read from a pickle, abridged if it is large."""
    return reprlib.repr(value)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _error(path, problem):
    return ValueError(f"Cannot read checkpoint {path!r}: {problem}")


def _fail(path, problem):
    raise _error(path, problem)
