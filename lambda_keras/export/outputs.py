"""The output files of every export: never replaced unless asked, never
seen half-written.

`check_can_write` is the one overwrite rule of `export_saved_model`,
`export_tflite`, `export_onnx` and `lambda-keras export` (whose labels.txt
follows it too): an existing output is replaced only with `overwrite=True`
(`--overwrite`). `write_replacing` writes a file beside its destination and
renames it into place, so that a reader never sees part of it and a failed
write leaves the old file.
"""

import os
import shutil
import tempfile


def check_can_write(path, overwrite, received):
    """Refuses to replace an existing output without `overwrite`.

    Args:
        path: the file or folder an export is about to write.
        overwrite: whether an existing one may be replaced.
        received: the argument that chose `path`, for the message's
            `Received: ...` (e.g. "version=2" or "--out=models").

    Raises:
        FileExistsError: `path` exists and `overwrite` is false.
    """
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(
            f"{path} already exists; pass overwrite=True (--overwrite) to "
            f"replace it. Received: {received}"
        )


def write_replacing(path, write):
    """Writes a file through a staging copy renamed into place.

    Args:
        path: the file to (re)place.
        write: a callable that writes the file at the path it is given.
    """
    folder = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    # A staging folder rather than a temporary file: the file is created by
    # `write` itself, so it gets the usual permissions (mkstemp's are 0600).
    staging = tempfile.mkdtemp(prefix=f".{name}.partial-", dir=folder)
    try:
        staged = os.path.join(staging, name)
        write(staged)
        os.replace(staged, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
