"""The pretrained-weights registry and its hash-checked download.

The registry is the package's `lambda_keras.checkpoints/manifest.json`
(`checkpoints/` at the top of the repository; its schema is in
`checkpoints/README.md`), followed by the user's own registries: manifest
files, or folders holding a `manifest.json`, named in the environment
variable `LAMBDA_KERAS_REGISTRY` (separated by `os.pathsep`) or added with
`add_registry`. `load_manifest` reads and validates them, `find_checkpoint`
resolves a name or an alias to an entry and `download` fetches one of the
entry's files into the Keras cache (`$KERAS_HOME`, else `~/.keras`),
checking its SHA-256, with a timeout (`LAMBDA_KERAS_DOWNLOAD_TIMEOUT`
seconds, default 60) and bounded retries. Files shipped beside a manifest
are hash-checked in place.

Example:

```python
from lambda_keras import weights

entry = weights.find_checkpoint("imagenet", architecture="LambdaResNet26T")
path = weights.download(entry["files"][0])
weights.add_registry("/team/checkpoints")  # our fine-tuned weights, by name
```
"""

import hashlib
import http.client
import importlib.metadata
import importlib.resources
import json
import math
import os
import re
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import keras

from lambda_keras.convert import read_checkpoint
from lambda_keras.convert.checkpoint_readers import SAFETENSORS_EXTENSIONS
from lambda_keras.convert.checkpoint_readers import TORCH_EXTENSIONS
from lambda_keras.convert.timm import load_timm_state_dict

REGISTRY_VARIABLE = "LAMBDA_KERAS_REGISTRY"
MANIFEST_NAME = "manifest.json"
# Seconds a download waits to connect and for each read.
DOWNLOAD_TIMEOUT_VARIABLE = "LAMBDA_KERAS_DOWNLOAD_TIMEOUT"
DEFAULT_DOWNLOAD_TIMEOUT_S = 60.0
DOWNLOAD_ATTEMPTS = 3
# Seconds waited before the second and the third attempt.
RETRY_DELAYS_S = (1.0, 2.0)
_DOWNLOAD_CHUNK_BYTES = 1 << 20


def _package_manifest():
    """The manifest installed with the package, as `lambda_keras.checkpoints`.

    Found as that module; or, where a source tree of lambda_keras shadows the
    installed package on `sys.path` (the quick start's `pip install . &&
    python -m lambda_keras` run in the clone), in the installed
    distribution's files. None when neither has one (a bare checkout).
    """
    try:
        return Path(
            importlib.resources.files("lambda_keras.checkpoints") / MANIFEST_NAME
        )
    except ModuleNotFoundError:
        pass
    # The first installed copy that has the file: a source tree's own
    # `*.egg-info` (left by `pip install .`) names no installed files.
    for distribution in importlib.metadata.distributions(name="lambda_keras"):
        path = Path(
            distribution.locate_file(f"lambda_keras/checkpoints/{MANIFEST_NAME}")
        )
        if path.is_file():
            return path
    return None


DEFAULT_MANIFEST = _package_manifest()
FORMAT_VERSION = 1
TIMM_CHECKPOINT_EXTENSIONS = SAFETENSORS_EXTENSIONS + TORCH_EXTENSIONS
FILE_FORMATS = ("safetensors", "pth", "keras_weights_h5")
REQUIRED_KEYS = (
    "name",
    "architecture",
    "dataset",
    "classes",
    "input_size",
    "preprocessing",
    "metrics",
    "files",
    "license",
    "provenance",
)
REQUIRED_FILE_KEYS = ("sha256", "format")
MIN_PREFIX_LENGTH = 8

_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_HEX = re.compile(r"[0-9a-fA-F]+")


class WeightsDownloadError(OSError):
    """A weights file could not be fetched (network, HTTP or I/O failure)."""


def sha256_of(path, chunk_size=1 << 20):
    """Computes the SHA-256 of a file, reading it in chunks.

    Args:
        path: Path to the file.
        chunk_size: Bytes read at a time.

    Returns:
        The lower-case hex digest (64 characters).
    """
    hasher = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


_added_registries = []


def add_registry(path):
    """Adds a registry of the user's own weights to `load_manifest()`.

    Its entries are then found by name like the package's (same schema and
    hash checks); names must not repeat a registered name.

    Args:
        path: a `manifest.json` or a folder holding one.

    Raises:
        FileNotFoundError: there is no such manifest.
        ValueError: the manifest is invalid (see `load_manifest`).
    """
    manifest = _manifest_path(path, "path")
    load_manifest(manifest)  # Validated now, not at the first lookup.
    if manifest not in _added_registries:
        _added_registries.append(manifest)


def registries():
    """The manifests `load_manifest()` reads, in order: the package's (when
    present), then those of `LAMBDA_KERAS_REGISTRY`, then `add_registry`'s.
    """
    package = DEFAULT_MANIFEST
    paths = [Path(package)] if package is not None and Path(package).is_file() else []
    variable = os.environ.get(REGISTRY_VARIABLE, "")
    for item in filter(None, variable.split(os.pathsep)):
        paths.append(_manifest_path(item, REGISTRY_VARIABLE))
    return paths + [p for p in _added_registries if p not in paths]


def _manifest_path(path, argument):
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"No weights registry at {path}: `{argument}` must name a "
            f"{MANIFEST_NAME} or a folder holding one. Received: {argument}={path}"
        )
    return path


def load_manifest(path=None):
    """Reads and validates a checkpoint manifest, or the whole registry.

    Args:
        path: Path to a `manifest.json`. `None` reads every registry
            (`registries()`: the package's, then the user's); names are
            unique across them.

    Returns:
        The list of checkpoint entries (dicts), in file order.

    Raises:
        FileNotFoundError: If an explicit `path` does not exist.
        ValueError: If the manifest is not valid JSON, has the wrong
            `format_version`, an entry misses a required key or has a
            malformed file record, or two entries share a name (or an
            alias within one architecture).
    """
    if path is not None:
        return _read_manifest(Path(path))
    entries, sources = [], {}
    for manifest in registries():
        for entry in _read_manifest(manifest):
            keys = [f"name '{entry['name']}'"]
            if entry.get("alias"):
                keys.append(f"alias '{entry['alias']}' of '{entry['architecture']}'")
            for key in keys:
                if key in sources:
                    raise ValueError(
                        f"The checkpoint {key} in the registry {manifest} is "
                        f"already registered by {sources[key]}: names and "
                        "aliases must be unique across registries."
                    )
                sources[key] = manifest
            entries.append(entry)
    return entries


def _read_manifest(path):
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"The manifest {path} is not valid JSON: {e}") from e
    if not isinstance(manifest, dict) or not isinstance(
        manifest.get("checkpoints"), list
    ):
        raise ValueError(
            f"The manifest {path} must be a JSON object with a 'checkpoints' list."
        )
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"The manifest {path} has format_version={version!r}; this "
            f"version of lambda_keras reads format_version={FORMAT_VERSION}."
        )
    entries = manifest["checkpoints"]
    names = set()
    root = path.resolve().parent
    aliases = set()
    for index, entry in enumerate(entries):
        _validate_entry(entry, index, path)
        for entry_file in entry["files"]:
            if "path" in entry_file:
                entry_file["resolved_path"] = str(root / entry_file["path"])
        if entry["name"] in names:
            raise ValueError(
                f"Duplicate checkpoint name '{entry['name']}' in the manifest "
                f"{path}: each name must be unique."
            )
        names.add(entry["name"])
    for entry in entries:
        alias = entry.get("alias")
        if alias is None:
            continue
        if alias in names:
            raise ValueError(
                f"Checkpoint '{entry['name']}' in the manifest {path} has the "
                f"alias '{alias}', which is already a checkpoint name."
            )
        if (entry["architecture"], alias) in aliases:
            raise ValueError(
                f"Duplicate alias '{alias}' for architecture "
                f"'{entry['architecture']}' in the manifest {path} (at "
                f"checkpoint '{entry['name']}')."
            )
        aliases.add((entry["architecture"], alias))
    return entries


def find_checkpoint(name, architecture=None, manifest=None):
    """Finds a checkpoint entry by its full name or by an alias.

    Args:
        name: A full checkpoint name (e.g. `"lambda_resnet26t.c1_in1k"`) or,
            when `architecture` is given, an alias of one of its checkpoints
            (e.g. `"imagenet"`).
        architecture: Constructor name the weights must fit (e.g.
            `"LambdaResNet26T"`), or `None` for any architecture (then only
            full names are resolved).
        manifest: A list of entries as returned by `load_manifest`, a path
            to a manifest, or `None` for the repository's manifest.

    Returns:
        The matching entry (a dict).

    Raises:
        ValueError: If no checkpoint matches; the message lists the known
            names (and aliases) for `architecture`.
    """
    if manifest is None or isinstance(manifest, (str, os.PathLike)):
        manifest = load_manifest(manifest)
    for entry in manifest:
        if entry["name"] != name:
            continue
        if architecture is not None and entry["architecture"] != architecture:
            raise ValueError(
                f"The pretrained weights '{name}' are for the architecture "
                f"'{entry['architecture']}', not '{architecture}'. "
                f"Received: weights={name!r}"
            )
        return entry
    if architecture is not None:
        for entry in manifest:
            if entry["architecture"] == architecture and entry.get("alias") == name:
                return entry
    candidates = [
        entry
        for entry in manifest
        if architecture is None or entry["architecture"] == architecture
    ]
    known = {entry["name"] for entry in candidates}
    if architecture is not None:
        known |= {entry["alias"] for entry in candidates if entry.get("alias")}
    known = sorted(known)
    scope = f" for '{architecture}'" if architecture is not None else ""
    raise ValueError(
        "The `weights` argument should be the name of pretrained weights "
        f"(available{scope}: {known or 'none yet'}) or the path to a "
        f"weights file. Received: weights={name!r}"
    )


def download(entry_file, cache_subdir="lambda_keras", cache_dir=None):
    """Downloads one file of a checkpoint entry and checks its SHA-256.

    A cached file with the right hash (the full `sha256`, or the
    `sha256_prefix` when only that is known) is returned without touching
    the network; a missing or corrupted one is fetched. The file is written
    under a temporary name and renamed once complete, so the cache never
    holds a partial file.

    Connecting and each read wait at most `LAMBDA_KERAS_DOWNLOAD_TIMEOUT`
    seconds (an environment variable; default 60). A failed attempt (a
    timeout, a refused or dropped connection, an incomplete transfer, an
    HTTP 408, 429 or 5xx answer) is retried after 1 then 2 seconds:
    `DOWNLOAD_ATTEMPTS` (3) attempts in all.

    Args:
        entry_file: One item of an entry's `files` list: a dict with `url`,
            `sha256` (or `None`) and optionally `sha256_prefix` and `size`.
        cache_subdir: Subdirectory of the cache directory for the file (or
            an absolute directory).
        cache_dir: Cache directory; `None` is `$KERAS_HOME` or `~/.keras`.

    Returns:
        The local path of the verified file (a str).

    Raises:
        ValueError: If the file record is malformed, the timeout variable
            is not a positive number, or the downloaded file does not match
            its hash (the bad file is deleted from the cache).
        WeightsDownloadError: (an `OSError`) If the file could not be
            fetched (timeout, connection refused, DNS failure, HTTP error,
            incomplete transfer); the message names the URL, the cause and
            how to do without the network. No partial file is left in the
            cache.
    """
    _validate_file(entry_file, "download()", "the file record", required=("url",))
    url = entry_file["url"]
    sha256 = entry_file.get("sha256")
    prefix = entry_file.get("sha256_prefix")
    # A full hash is a 64-digit prefix of itself.
    expected = (sha256 or prefix).lower()
    timeout = _download_timeout()
    target = os.path.join(
        _cache_dir(cache_subdir, cache_dir), _cache_fname(url, expected)
    )
    if os.path.exists(target) and sha256_of(target).startswith(expected):
        return target
    _fetch(url, target, timeout, entry_file)
    if not sha256_of(target).startswith(expected):
        described = expected if sha256 else f"a hash starting with {expected}"
        _raise_hash_mismatch(url, described, target, entry_file)
    return target


def shipped_file(entry_file):
    """The verified local path of a file shipped beside the manifest.

    Args:
        entry_file: a file record with a `path` (as `load_manifest` returns
            it, with `resolved_path`).

    Returns:
        The path (a str).

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the file does not match its `sha256`.
    """
    path = entry_file["resolved_path"]
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"The shipped weights file {path} is missing (a checkout without "
            f"Git LFS, or an installed package without checkpoints/?). "
            f"Received: path={entry_file['path']!r}"
        )
    actual = sha256_of(path)
    if actual != entry_file["sha256"].lower():
        raise ValueError(
            f"The shipped weights file {path} has sha256 {actual}, not the "
            f"manifest's {entry_file['sha256']}: it is corrupted or was "
            f"changed without updating the manifest. Received: path={path!r}"
        )
    return path


def _download_timeout():
    """The seconds of `LAMBDA_KERAS_DOWNLOAD_TIMEOUT`, or the default."""
    value = os.environ.get(DOWNLOAD_TIMEOUT_VARIABLE, "")
    if not value.strip():
        return DEFAULT_DOWNLOAD_TIMEOUT_S
    try:
        timeout = float(value)
    except ValueError:
        timeout = math.nan
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(
            f"{DOWNLOAD_TIMEOUT_VARIABLE} must be a positive number of seconds. "
            f"Received: {DOWNLOAD_TIMEOUT_VARIABLE}={value}"
        )
    return timeout


def _fetch(url, target, timeout, entry_file):
    """Downloads `url` to `target`, through a temporary file in its folder,
    retrying the failures that another attempt may not meet."""
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        handle, partial = tempfile.mkstemp(
            prefix=os.path.basename(target) + ".",
            suffix=".partial",
            dir=os.path.dirname(target),
        )
        try:
            with os.fdopen(handle, "wb") as file:
                _fetch_into(url, file, timeout)
            os.replace(partial, target)
            return
        except (OSError, http.client.HTTPException) as error:
            _remove(partial)
            if attempt == DOWNLOAD_ATTEMPTS or not _worth_retrying(error):
                raise WeightsDownloadError(
                    _download_failure(url, error, attempt, timeout, entry_file)
                ) from error
        except BaseException:
            _remove(partial)  # Interrupted (Ctrl-C): leave nothing behind.
            raise
        time.sleep(RETRY_DELAYS_S[attempt - 1])


def _fetch_into(url, file, timeout):
    """One attempt: writes the body at `url` into `file`, with a progress bar."""
    print(f"Downloading data from {url}")
    with urllib.request.urlopen(url, timeout=timeout) as response:
        length = response.headers.get("Content-Length", "")
        expected = int(length) if length.isdigit() else None
        progress = keras.utils.Progbar(expected)
        received = 0
        while chunk := response.read(_DOWNLOAD_CHUNK_BYTES):
            file.write(chunk)
            received += len(chunk)
            progress.update(received)
    if expected is not None and received < expected:
        # http.client returns a body cut short without an error.
        raise urllib.error.ContentTooShortError(
            f"got only {received} of {expected} bytes", None
        )


def _worth_retrying(error):
    """Whether another attempt may succeed: the network failed, or the
    server failed for now; not a refusal (HTTP 404) nor a full disk."""
    if isinstance(error, urllib.error.HTTPError):
        return error.code in (408, 429) or error.code >= 500
    if isinstance(error, urllib.error.ContentTooShortError):
        return True
    if isinstance(error, urllib.error.URLError):
        return isinstance(error.reason, OSError)  # not "unknown url type"
    return isinstance(error, (TimeoutError, ConnectionError, http.client.HTTPException))


def _download_failure(url, error, attempts, timeout, entry_file):
    """The message of a failed download: the URL, the cause, what to do."""
    sha256 = entry_file.get("sha256")
    expected = f" (sha256 {sha256})" if sha256 else ""
    tries = f", {attempts} attempts" if attempts > 1 else ""
    return (
        f"Could not download pretrained weights from {url}: "
        f"{_failure_reason(error, timeout)}{tries}. Check the network connection "
        f"and the URL; or, offline, download the file{expected} by other means "
        "and pass its local path instead: "
        f"weights='/path/to/{_url_basename(url)}' (or register it in a "
        f"registry of your own: {REGISTRY_VARIABLE} or "
        "lambda_keras.weights.add_registry)."
    )


def _raise_hash_mismatch(url, expected, path, entry_file):
    actual = sha256_of(path)
    size = os.path.getsize(path)
    expected_size = entry_file.get("size")
    sizes = f"{size} bytes"
    if expected_size is not None:
        sizes += f", expected {expected_size} bytes"
    _remove(path)
    raise ValueError(
        f"The file downloaded from {url} does not match its sha256 hash: "
        f"expected {expected}, got {actual} ({sizes}). It is truncated or "
        "corrupted, or the file at the URL has changed; it was deleted from "
        f"the cache ({path}). Retry, or download the file by other means, "
        "check its hash and pass its local path instead: "
        "weights='/path/to/file'."
    )


def _failure_reason(error, timeout):
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP error {error.code} ({error.reason})"
    if isinstance(error, urllib.error.ContentTooShortError):
        return f"incomplete download ({error.reason})"
    cause = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(cause, TimeoutError):
        return (
            f"no answer within {timeout:g} s (set {DOWNLOAD_TIMEOUT_VARIABLE} "
            "to wait longer)"
        )
    return str(cause) or type(cause).__name__


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _url_basename(url):
    return os.path.basename(urllib.parse.urlsplit(url).path) or "weights"


def _cache_fname(url, file_hash):
    """`<stem>-<8 hash digits><suffix>`: files named alike do not clash.

    `.weights.h5` is kept whole: Keras reads a file by that suffix.
    """
    name = _url_basename(url)
    if name.endswith(".weights.h5"):
        stem, suffix = name.removesuffix(".weights.h5"), ".weights.h5"
    else:
        stem, suffix = os.path.splitext(name)
    return f"{stem}-{file_hash[:MIN_PREFIX_LENGTH]}{suffix}"


def _cache_dir(cache_subdir, cache_dir):
    """The Keras cache directory, resolved as `keras.utils.get_file` does."""
    if cache_dir is None:
        cache_dir = os.environ.get("KERAS_HOME") or os.path.join(
            os.path.expanduser("~"), ".keras"
        )
    base = os.path.expanduser(cache_dir)
    try:
        os.makedirs(base, exist_ok=True)
    except OSError:
        pass  # Not writable: fall back to /tmp/.keras below, as Keras does.
    if not os.access(base, os.W_OK):
        base = os.path.join(
            "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras"
        )
    datadir = os.path.join(base, cache_subdir)
    os.makedirs(datadir, exist_ok=True)
    return datadir


def _validate_entry(entry, index, path):
    if not isinstance(entry, dict):
        raise ValueError(
            f"Checkpoint entry #{index} in the manifest {path} must be a JSON "
            f"object. Received: {entry!r}"
        )
    label = f"'{entry['name']}'" if "name" in entry else f"#{index}"
    for key in REQUIRED_KEYS:
        if key not in entry:
            raise ValueError(
                f"Checkpoint entry {label} in the manifest {path} is missing "
                f"the required key '{key}'."
            )
    files = entry["files"]
    if not isinstance(files, list) or not files:
        raise ValueError(
            f"Checkpoint entry {label} in the manifest {path}: 'files' must be "
            f"a non-empty list. Received: files={files!r}"
        )
    for file_index, entry_file in enumerate(files):
        _validate_file(
            entry_file,
            f"checkpoint entry {label} in the manifest {path}",
            f"files[{file_index}]",
        )


def _validate_file(entry_file, where, label, required=REQUIRED_FILE_KEYS):
    def fail(problem):
        raise ValueError(f"In {where}, {label} {problem}. Received: {entry_file!r}")

    if not isinstance(entry_file, dict):
        fail("must be a JSON object")
    for key in required:
        if key not in entry_file:
            fail(f"is missing the required key '{key}'")
    if ("url" in entry_file) == ("path" in entry_file):
        fail(
            "must have either a 'url' or a 'path' (a file shipped beside the manifest)"
        )
    origin = "url" if "url" in entry_file else "path"
    if not isinstance(entry_file[origin], str) or not entry_file[origin]:
        fail(f"must have a non-empty string '{origin}'")
    if origin == "path" and (
        os.path.isabs(entry_file["path"]) or ".." in Path(entry_file["path"]).parts
    ):
        fail("must have a 'path' relative to the manifest's folder, inside it")
    if origin == "path" and not entry_file.get("sha256"):
        fail("must have a full 'sha256' (a shipped file's hash is known)")
    if "format" in entry_file and entry_file["format"] not in FILE_FORMATS:
        fail(f"has an unknown 'format' (known: {list(FILE_FORMATS)})")
    sha256 = entry_file.get("sha256")
    prefix = entry_file.get("sha256_prefix")
    if sha256 is not None and not (
        isinstance(sha256, str) and _SHA256.fullmatch(sha256)
    ):
        fail("has a 'sha256' that is not 64 hex digits (use null if unknown)")
    if prefix is not None and not (
        isinstance(prefix, str)
        and MIN_PREFIX_LENGTH <= len(prefix) <= 64
        and _HEX.fullmatch(prefix)
    ):
        fail(f"has a 'sha256_prefix' that is not {MIN_PREFIX_LENGTH} to 64 hex digits")
    if sha256 is None and prefix is None:
        fail("has neither 'sha256' nor 'sha256_prefix'; every file needs a hash")
    if sha256 is not None and prefix is not None:
        if not sha256.lower().startswith(prefix.lower()):
            fail("has a 'sha256_prefix' that disagrees with its 'sha256'")


def resolve_weights(
    weights, architecture, include_top=True, classes=None, manifest=None
):
    """Interprets a `weights` argument: the one decision of "file or name?".

    The model constructors, `lambda-keras train`, `evaluate` and `export`
    all call it. A local file that exists, or a path on a remote file
    system that Keras reads (`gs://...`), is a file; any other string is
    the name or alias of registered weights.

    Args:
        weights: None, the path of a weights file, or the name or alias of
            registered pretrained weights.
        architecture: the constructor's registry name, e.g.
            "LambdaResNet26T".
        include_top: whether the model keeps its classifier.
        classes: the model's number of classes; None accepts the weights'
            (to build the pretrained network, then replace its classifier).
        manifest: entries or a manifest path (see `find_checkpoint`); None
            for the package's registry.

    Returns:
        None, the path (a str) or the manifest entry (a dict).

    Raises:
        ValueError: for unknown names (listing the known ones) and for a
            classifier whose `classes` differ from the weights'.
    """
    if weights is None:
        return None
    if isinstance(weights, os.PathLike) or (
        isinstance(weights, str) and _is_file_path(weights)
    ):
        return os.fspath(weights)
    if not isinstance(weights, str):
        raise ValueError(
            "The `weights` argument should be None, the name of pretrained "
            f"weights or the path to a weights file. Received: weights={weights!r}"
        )
    entry = find_checkpoint(weights, architecture=architecture, manifest=manifest)
    if include_top and classes is not None and classes != entry["classes"]:
        raise ValueError(
            f"If using `weights='{weights}'` with `include_top=True`, "
            f"`classes` should be {entry['classes']}. Received: classes={classes}. "
            "Use `include_top=False` (or another `classes` and fine-tune) "
            "to train a new classifier."
        )
    return entry


def _is_file_path(weights):
    scheme = urllib.parse.urlsplit(weights).scheme
    remote = len(scheme) > 1 and scheme not in ("http", "https", "file")
    return remote or os.path.exists(weights)


def load_weights_file(model, path):
    """Loads a weights file into `model`, by its extension, all or nothing.

    A timm checkpoint (`.pth`, `.pt`, `.bin`, `.safetensors`) is read
    without torch and converted (`lambda_keras.convert.timm`); anything
    else goes to `model.load_weights` (Keras `.weights.h5`). If loading
    fails, the model's weights are left as they were.

    Args:
        model: the model.
        path: the file.

    Returns:
        The loading report of `load_timm_state_dict` for a timm
        checkpoint, else None.

    Raises:
        ValueError: naming the file, if it is truncated, corrupt, not a
            weights file, or holds the weights of another architecture.
    """
    path = os.fspath(path)
    if path.lower().endswith(TIMM_CHECKPOINT_EXTENSIONS):
        return _load_timm_checkpoint(model, path)
    _load_keras_weights(model, path)
    return None


def _load_timm_checkpoint(model, path):
    state_dict = read_checkpoint(path)  # Its errors name the file.
    try:
        # Checks every weight before assigning any.
        return load_timm_state_dict(model, state_dict)
    except ValueError as error:
        raise ValueError(
            f"Cannot load the checkpoint {path} into the model '{model.name}': "
            f"{error} Received: path={path!r}"
        ) from error


def _load_keras_weights(model, path):
    # Keras loads layer by layer, and reports the layers it could not load
    # only at the end: restore the others' weights on any failure.
    before = model.get_weights()
    try:
        model.load_weights(path)
    except Exception as error:
        model.set_weights(before)
        if not isinstance(error, (OSError, ValueError, KeyError)):
            raise
        # h5py's OSError for a truncated or non-HDF5 file names no file.
        raise ValueError(
            f"Cannot load the weights file {path} into the model "
            f"'{model.name}' (its weights are left unchanged): "
            f"{' '.join(str(error).split())} Received: path={path!r}"
        ) from error


def load_pretrained(model, entry, cache_dir=None):
    """Downloads an entry's checkpoint (once) and loads it into `model`.

    A file shipped in `checkpoints/` (a `path` record) is read in place
    after its hash is checked; nothing is downloaded. A downloaded file is
    kept in the Keras cache, hash-checked at every load, and read from
    there without torch. A classifier of another size is left as it is
    (fine-tuning).

    Args:
        model: a model built by the entry's architecture.
        entry: a manifest entry (see `find_checkpoint`).
        cache_dir: cache directory; None is `$KERAS_HOME` or `~/.keras`.

    Returns:
        The loading report of `load_timm_state_dict` (`loaded`, `unused`),
        or None for a Keras `.weights.h5` file.

    Raises:
        ValueError: see `download` and `load_weights_file`.
        WeightsDownloadError: see `download`.
    """
    file_record = entry["files"][0]
    if "path" in file_record:
        path = shipped_file(file_record)
    else:
        path = download(file_record, cache_dir=cache_dir)
        # Earlier versions cached the arrays beside the checkpoint, unchecked;
        # reading the checked checkpoint is as fast.
        _remove(path + ".npz")
    if file_record["format"] == "keras_weights_h5":
        _load_keras_weights(model, path)
        return None
    return _load_timm_checkpoint(model, path)
