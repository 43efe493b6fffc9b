"""Hand-made torch.save zip archives, with any tensor layout, for the reader
tests (torch only writes them)."""

import collections
import io
import pickle
import zipfile

import numpy as np
import torch


def write_torch_zip(path, pickled, records=(), byteorder=b"little"):
    """Writes a zip archive laid out like torch.save's."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/byteorder", byteorder)
        for key, data in dict(records).items():
            archive.writestr(f"archive/data/{key}", data)
        archive.writestr("archive/version", b"3\n")


class FakeStorage:
    pass


class FakeTensor:
    """Pickles as torch does, with any layout, to forge tensor records."""

    def __init__(self, offset, size, stride):
        self.layout = (offset, size, stride)

    def __reduce__(self):
        hooks = collections.OrderedDict()
        rebuild = torch._utils._rebuild_tensor_v2
        return (rebuild, (FakeStorage(), *self.layout, False, hooks))


class ForgingPickler(pickle.Pickler):
    """Pickles every `FakeTensor` as a view of one float32 storage, "0"."""

    def __init__(self, file, numel):
        super().__init__(file, protocol=2)
        self.numel = numel

    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            return ("storage", torch.FloatStorage, "0", "cpu", self.numel)
        return None


def forged_pickle(layouts, numel=6):
    """The data.pkl of a state dict {name: (offset, size, stride)} of views
    of a `numel`-element storage."""
    buffer = io.BytesIO()
    state_dict = {name: FakeTensor(*layout) for name, layout in layouts.items()}
    ForgingPickler(buffer, numel).dump(state_dict)
    return buffer.getvalue()


def forge_checkpoint(path, layouts, numel=6, stored=6):
    """Writes a checkpoint whose storage "0" holds `stored` float32 values
    0, 1, ... and declares `numel` (see `forged_pickle`)."""
    data = np.arange(stored, dtype="<f4").tobytes()
    write_torch_zip(path, forged_pickle(layouts, numel), records={"0": data})
