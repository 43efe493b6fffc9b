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
`ValueError` naming the file, the tensor when there is one, and the problem.

What a file declares is checked against what it holds before anything of
that size is allocated, so that a small hostile file cannot claim gigabytes:

- safetensors: the tensors' byte ranges must lie in the file and must not
  overlap, so the arrays read total at most the file's size (twice that for
  bfloat16, returned as float32).
- torch.save: a tensor may not have more elements than its storage holds
  (no stride-0 or overlapping views), and the zip members read (the pickle
  and the storage records, at their declared uncompressed sizes) plus the
  arrays returned may total at most `ALLOCATION_LIMIT_FACTOR` (4) times the
  file's size. torch.save stores its members uncompressed, so a checkpoint
  needs about twice its size (three times in bfloat16); a deflate bomb
  declares far more and is refused before a byte is inflated. Members are
  inflated in chunks of at most `READ_CHUNK_BYTES`, never more than their
  declared size. Only the tensors of the selected state dict are read (not,
  say, a training checkpoint's optimizer state).

The Python objects parsed from the JSON header or the pickle are in
proportion to their size in the file.
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

# What reading a torch.save file may allocate, in multiples of its size (see
# the module docstring).
ALLOCATION_LIMIT_FACTOR = 4
# Zip members are inflated this many bytes at a time, at most.
READ_CHUNK_BYTES = 1 << 20
# numpy < 2 allows 32 dimensions (numpy 2: 64); weights have at most 5.
_MAX_NDIM = 32
# numpy's limit on an array's size in bytes (zero-length dimensions aside).
_MAX_ARRAY_BYTES = 2**63 - 1

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
    shape of at most 32 non-negative integers that numpy can hold, and
    `data_offsets` inside the byte buffer spanning exactly
    `itemsize * prod(shape)` bytes, not overlapping another tensor's. The
    optional `__metadata__` entry is ignored.

    Args:
        path: str or path-like, the `.safetensors` file.

    Returns:
        dict of tensor name -> `numpy.ndarray` in native byte order, in the
        order of the header. BF16 tensors are returned as float32 and BOOL
        tensors as bool.

    Raises:
        ValueError: the file is too short, its header length runs past the
            end of the file, the header is not valid JSON (or nests too
            deeply) or does not describe the tensors correctly, or a dtype
            is not supported.
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
        _check_disjoint(path, entries)
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
    duplicates = []

    def find_duplicates(pairs):
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys):
            duplicates.append(keys)
        return dict(pairs)

    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=find_duplicates)
    except RecursionError:
        raise _error(path, "header nests too deeply for a safetensors header") from None
    except ValueError as error:
        # Invalid JSON or UTF-8, or an integer of too many digits.
        raise _error(path, f"header is not valid JSON ({error})") from None
    if duplicates:
        _fail(path, f"header has duplicate keys {_short(sorted(duplicates[0]))}")
    if not isinstance(header, dict):
        _fail(path, f"header is a JSON {type(header).__name__}, not an object")
    return header


def _check_safetensors_entry(path, name, entry, buffer_size):
    """Returns (dtype name, shape, begin, end) of a valid header entry."""
    if not isinstance(entry, dict):
        _fail(path, f"tensor {name!r}: header entry is not an object: {_short(entry)}")
    dtype_name = entry.get("dtype")
    if dtype_name not in _SAFETENSORS_DTYPES:
        _fail(
            path,
            f"tensor {name!r}: unsupported dtype {_short(dtype_name)}; supported: "
            f"{', '.join(_SAFETENSORS_DTYPES)}",
        )
    itemsize = _SAFETENSORS_DTYPES[dtype_name].itemsize
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        _fail(path, f"tensor {name!r}: invalid shape {_short(shape)}")
    problem = _shape_problem(shape, itemsize)
    if problem:
        _fail(path, f"tensor {name!r}: invalid shape {_short(shape)}: {problem}")
    offsets = entry.get("data_offsets")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_int(offset) for offset in offsets)
    ):
        _fail(path, f"tensor {name!r}: invalid data_offsets {_short(offsets)}")
    begin, end = offsets
    if not 0 <= begin <= end <= buffer_size:
        _fail(
            path,
            f"tensor {name!r}: data_offsets {_short(offsets)} out of range of the "
            f"{buffer_size}-byte data buffer (truncated file?)",
        )
    nbytes = itemsize * math.prod(shape)
    if end - begin != nbytes:
        _fail(
            path,
            f"tensor {name!r}: data_offsets {_short(offsets)} span {end - begin} bytes "
            f"but dtype {dtype_name} and shape {shape} need {nbytes}",
        )
    return dtype_name, tuple(shape), begin, end


def _check_disjoint(path, entries):
    """Refuses tensors sharing bytes: each byte of the buffer is read once."""
    previous = None
    for name, _, _, begin, end in sorted(entries, key=lambda entry: entry[3:]):
        # Without an overlap so far, the ends grow with the begins.
        if previous is not None and begin < previous[2]:
            _fail(
                path,
                f"tensors {previous[0]!r} and {name!r} overlap: data_offsets "
                f"[{previous[1]}, {previous[2]}] and [{begin}, {end}]",
            )
        previous = (name, begin, end)


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
    optimizer state, ...) are ignored and their tensors not read. A leading
    "module." (from `DataParallel`) is dropped from the names.

    Every tensor's layout is checked before any is read: it must lie inside
    its storage and have no more elements than the storage holds. What is
    read and returned may total at most `ALLOCATION_LIMIT_FACTOR` times the
    file's size (see the module docstring).

    Args:
        path: str or path-like, the checkpoint file.

    Returns:
        dict of tensor name -> `numpy.ndarray` in native byte order. bfloat16
        tensors are returned as float32.

    Raises:
        UnsafeCheckpointError: (a `ValueError`) the pickle asks for a global
            outside the allowlist; the file may be malicious.
        ValueError: the file is not a zip-format torch checkpoint, is
            corrupt, declares more data than it holds, has a tensor of an
            unsupported dtype or layout, or its state dict holds a value
            that is not a tensor.
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
            members = _ZipMembers(path, archive)
            checkpoint = _unpickle_archive(members)
            return _read_tensors(members, _select_state_dict(path, checkpoint))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as error:
        raise _error(path, f"corrupt zip archive ({error})") from None


class _ZipMembers:
    """Reads the members of a checkpoint's zip archive, and counts what the
    reader allocates against the file's limit."""

    def __init__(self, path, archive):
        self.path = path
        self.archive = archive
        self.file_size = os.path.getsize(path)
        self.limit = ALLOCATION_LIMIT_FACTOR * self.file_size
        self.allocated = 0

    def names(self):
        return self.archive.namelist()

    def declared_size(self, name):
        """The member's uncompressed size, as the zip declares it."""
        return self.archive.getinfo(name).file_size

    def reserve(self, nbytes, what):
        """Counts `nbytes` about to be allocated for `what` against the limit."""
        if self.allocated + nbytes > self.limit:
            _fail(
                self.path,
                f"{what} needs {nbytes} bytes, more than the "
                f"{self.limit - self.allocated} bytes left of what a "
                f"{self.file_size}-byte checkpoint may allocate "
                f"({ALLOCATION_LIMIT_FACTOR} times its size): the file declares "
                "more data than it holds (forged sizes or a zip bomb)",
            )
        self.allocated += nbytes

    def read(self, name):
        """The member's bytes, inflated chunk by chunk up to its declared size
        (reserve it first)."""
        info = self.archive.getinfo(name)
        # A stored member (as torch.save writes them) is read at once: it is
        # no larger than its bytes in the file.
        stored = info.compress_type == zipfile.ZIP_STORED
        chunk_size = info.file_size if stored else READ_CHUNK_BYTES
        chunks, filled = [], 0
        try:
            with self.archive.open(info) as member:
                while filled < info.file_size:
                    chunk = member.read(min(chunk_size, info.file_size - filled))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    filled += len(chunk)
        except Exception as error:
            # zipfile's errors for a corrupt member are many: BadZipFile (a
            # bad CRC), zlib.error, EOFError, NotImplementedError (unknown
            # compression), RuntimeError (encrypted), ...
            raise _error(
                self.path,
                f"corrupt zip member {name!r} ({type(error).__name__}: {error})",
            ) from None
        if filled < info.file_size:
            _fail(
                self.path,
                f"zip member {name!r} holds {filled} bytes, fewer than the "
                f"{info.file_size} it declares (truncated file?)",
            )
        return b"".join(chunks)  # One chunk is returned as it is, not copied.


def _unpickle_archive(members):
    path, names = members.path, members.names()
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
        record = prefix + "byteorder"
        members.reserve(members.declared_size(record), f"zip member {record!r}")
        byteorder = members.read(record).decode("ascii", "replace")
        if byteorder not in ("little", "big"):
            _fail(path, f"unknown byteorder {_short(byteorder)}")
    members.reserve(members.declared_size(pickles[0]), f"the pickle {pickles[0]!r}")
    pickled = io.BytesIO(members.read(pickles[0]))
    unpickler = _RestrictedUnpickler(pickled, members, prefix, byteorder)
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

    def __init__(self, file, members, prefix, byteorder):
        super().__init__(file)
        self._members = members
        self._path = members.path
        self._prefix = prefix
        self._byte_prefix = ">" if byteorder == "big" else "<"

    def find_class(self, module, name):
        if module == "torch" and name in _TORCH_STORAGES:
            return _StorageType(name)
        if (module == "torch" and name.endswith("Storage")) or (
            (module, name) in _UNSUPPORTED_DTYPE_GLOBALS
        ):
            supported = ", ".join(f"torch.{storage}" for storage in _TORCH_STORAGES)
            raise _MalformedPickleError(
                "it holds a tensor of a dtype this reader does not support (its "
                f"pickle asks for `{module}.{name}`); supported storages: "
                f"{supported}"
            )
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
        record = f"{self._prefix}data/{key}"
        try:
            stored = self._members.declared_size(record)
        except KeyError:
            raise _MalformedPickleError(
                f"missing storage record {_short(record)}"
            ) from None
        dtype = np.dtype(self._byte_prefix + storage_type.code)
        if stored < numel * dtype.itemsize:
            raise _MalformedPickleError(
                f"storage record {key!r} holds {stored} bytes, fewer than "
                f"{numel} elements of {storage_type!r}"
            )
        # Read later, once the tensors of the state dict are known and
        # checked: `_read_tensors`.
        return _Storage(record, dtype, numel, storage_type.kind)


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
    """Stand-in for a storage: its zip record, element type and count."""

    __slots__ = ("record", "dtype", "numel", "kind")

    def __init__(self, record, dtype, numel, kind):
        object.__setattr__(self, "record", record)
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "numel", numel)
        object.__setattr__(self, "kind", kind)

    def __repr__(self):
        return f"<storage {self.record!r} of {self.numel} {self.dtype}>"


class _Tensor(_Frozen):
    """Stand-in for a tensor: a layout in a storage, read by `_read_tensors`."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        object.__setattr__(self, "storage", storage)
        object.__setattr__(self, "offset", offset)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "stride", stride)

    def __repr__(self):
        return f"<tensor of size {_short(self.size)} in {self.storage!r}>"


def _rebuild_tensor(storage, storage_offset, size, stride):
    """numpy stand-in for `torch._utils._rebuild_tensor`."""
    if not isinstance(storage, _Storage):
        raise _MalformedPickleError(
            f"tensor rebuilt from a {type(storage).__name__}, not a storage"
        )
    return _Tensor(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_tensor_v2(
    storage, storage_offset, size, stride, requires_grad, backward_hooks, *args
):
    """numpy stand-in for `torch._utils._rebuild_tensor_v2`."""
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    """numpy stand-in for `torch._utils._rebuild_parameter`."""
    if not isinstance(data, _Tensor):
        raise _MalformedPickleError(f"parameter rebuilt from {type(data).__name__}")
    return data


# How torch pickles the tensors of the dtypes it has no typed storage for
# (float8, uint16, ...).
_UNSUPPORTED_DTYPE_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v3"),
    ("torch.storage", "UntypedStorage"),
}

_PYTHON2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}

_ALLOWED_GLOBALS = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


def _select_state_dict(path, checkpoint):
    """The checkpoint's state dict: name -> `_Tensor`, names checked."""
    if not isinstance(checkpoint, dict):
        held = (
            "tensor" if isinstance(checkpoint, _Tensor) else type(checkpoint).__name__
        )
        _fail(
            path,
            f"holds a {held}, not a state dict (a dict of name -> tensor)",
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
        if not isinstance(value, _Tensor):
            _fail(
                path,
                f"{where}[{name!r}] is a {type(value).__name__}, not a tensor",
            )
        name = name.removeprefix("module.")
        if name in tensors:
            _fail(path, f"{where} has {name!r} twice once 'module.' is dropped")
        tensors[name] = value
    return tensors


def _read_tensors(members, tensors):
    """Checks every tensor, counts them against the limit, then reads them.

    Args:
        members: the archive's `_ZipMembers`.
        tensors: dict of name -> `_Tensor`.

    Returns:
        dict of name -> `numpy.ndarray`.
    """
    elements = {
        name: _check_layout(members.path, name, tensor)
        for name, tensor in tensors.items()
    }
    uses = collections.Counter()
    for name, tensor in tensors.items():
        record = tensor.storage.record
        if elements[name]:
            if record not in uses:
                members.reserve(
                    members.declared_size(record),
                    f"tensor {name!r}: its storage record {record!r}",
                )
            uses[record] += 1
        members.reserve(
            elements[name] * _native_itemsize(tensor.storage), f"tensor {name!r}"
        )
    records, arrays = {}, {}
    for name, tensor in tensors.items():
        storage = tensor.storage
        if not elements[name]:
            arrays[name] = _to_native(
                np.zeros(tensor.size, storage.dtype), storage.kind
            )
            continue
        if storage.record not in records:
            records[storage.record] = members.read(storage.record)
        stored = np.frombuffer(records[storage.record], storage.dtype, storage.numel)
        # A dimension of one is never stepped along: its stride (which may
        # be any size) is not used.
        strides = tuple(
            step * storage.dtype.itemsize if length > 1 else 0
            for length, step in zip(tensor.size, tensor.stride)
        )
        view = as_strided(
            stored[tensor.offset :],
            shape=tensor.size,
            strides=strides,
            writeable=False,
        )
        array = _to_native(view, storage.kind)
        arrays[name] = view.copy() if array is view else array
        uses[storage.record] -= 1
        if not uses[storage.record]:
            del records[storage.record]  # No other tensor reads it: free it.
    return arrays


def _check_layout(path, name, tensor):
    """Returns the number of elements of a tensor inside its storage."""
    storage, offset = tensor.storage, tensor.offset
    size, stride = tensor.size, tensor.stride
    if (
        not _is_int(offset)
        or offset < 0
        or len(size) != len(stride)
        or not all(_is_int(n) and n >= 0 for n in size + stride)
    ):
        _fail(
            path,
            f"tensor {name!r}: invalid tensor layout (storage_offset="
            f"{_short(offset)}, size={_short(size)}, stride={_short(stride)})",
        )
    problem = _shape_problem(size, storage.dtype.itemsize)
    if problem:
        _fail(
            path,
            f"tensor {name!r}: invalid tensor layout: size {_short(size)}: {problem}",
        )
    elements = math.prod(size)
    if not elements:
        return 0
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.numel:
        _fail(
            path,
            f"tensor {name!r} of size {_short(size)} and stride {_short(stride)} "
            f"at offset {_short(offset)} runs past the end of its "
            f"{storage.numel}-element storage",
        )
    if elements > storage.numel:
        _fail(
            path,
            f"tensor {name!r} of size {_short(size)} and stride {_short(stride)} "
            f"has {elements} elements, more than its {storage.numel}-element "
            "storage holds: an expanded (stride-0) or overlapping view, which a "
            "state dict does not hold (save tensor.contiguous() instead)",
        )
    return elements


def _native_itemsize(storage):
    """Bytes of one element as returned: bfloat16 becomes float32."""
    return 4 if storage.kind == "bf16" else storage.dtype.itemsize


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _to_native(array, kind):
    """Stored elements as numpy: bf16 -> float32, bool, native byte order.

    A new array; `array` itself when it needs no conversion.
    """
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


def _shape_problem(shape, itemsize):
    """Why numpy cannot make an array of `shape` (ints >= 0), or None."""
    if len(shape) > _MAX_NDIM:
        return f"{len(shape)} dimensions, more than {_MAX_NDIM}"
    if any(n > _MAX_ARRAY_BYTES for n in shape) or (
        math.prod(n for n in shape if n) * itemsize > _MAX_ARRAY_BYTES
    ):
        return "too large for an array (the dimensions' product overflows int64)"
    return None


def _short(value):
    """repr() of a value read from a pickle, abridged if it is large."""
    return reprlib.repr(value)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _error(path, problem):
    return ValueError(f"Cannot read checkpoint {path!r}: {problem}")


def _fail(path, problem):
    raise _error(path, problem)
