"""The optional dependencies and the `pip install` extra that brings each.

`require` imports one, or fails with one message naming the extra, so a
user of the base install learns what to install, not a bare
`ModuleNotFoundError`.
"""

import importlib

# Module -> the extra of setup.py that installs it.
EXTRA_OF_MODULE = {
    "tensorflow_datasets": "train",
    "tensorboard": "train",
    "tf2onnx": "export",
    "onnx": "export",
    "onnxruntime": "export",
    "keras_hub": "hub",
}


class MissingExtraError(ImportError):
    """An optional dependency is not installed."""


def require(module, purpose):
    """Imports an optional dependency.

    Args:
        module: its module name, a key of `EXTRA_OF_MODULE`.
        purpose: what needs it, e.g. "ONNX export", for the message.

    Returns:
        The imported module.

    Raises:
        MissingExtraError: it is not installed; the message names the
            extra to install.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name != module:
            raise  # Installed, but broken: its own error says why.
        extra = EXTRA_OF_MODULE[module]
        raise MissingExtraError(
            f"{purpose} needs the package '{module}', which is not installed. "
            f'Install the extra: pip install "lambda_keras[{extra}]"'
        ) from None
