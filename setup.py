"""Packaging for lambda_keras.

`checkpoints/` (the weights registry and our own checkpoints) stays at the
top of the repository and is installed as the package
`lambda_keras.checkpoints`, where `lambda_keras.weights` finds it with
`importlib.resources`.
"""

import re
from pathlib import Path

from setuptools import find_packages
from setuptools import setup

ROOT = Path(__file__).parent
VERSION = re.search(
    r'^__version__ = "([^"]+)"',
    (ROOT / "lambda_keras" / "__init__.py").read_text(encoding="utf-8"),
    re.M,
).group(1)

EXTRAS = {
    # `--dataset <tensorflow-datasets name>` and TensorBoard to read the logs.
    "train": ["tensorflow-datasets", "tensorboard"],
    # `lambda-keras export --format onnx` and onnxruntime to run the file.
    "export": ["tf2onnx>=1.16", "onnx", "onnxruntime"],
    # `lambda_keras.hub`: keras-hub backbones, classifiers and presets.
    "hub": ["keras-hub>=0.32"],
}
EXTRAS["test"] = [
    *EXTRAS["train"],
    *EXTRAS["export"],
    *EXTRAS["hub"],
    "pytest>=8",
    # Two test processes (`-n 2`): most tests are single-threaded tracing,
    # imports and subprocesses, which overlap on two cores.
    "pytest-xdist>=3.6",
    "ruff>=0.6",
    # The layer tests also run on the JAX and PyTorch backends.
    "jax>=0.4.30",
    "torch==2.13.0",
    # Independent writer of .safetensors files for the converter tests.
    "safetensors",
    # timm's own dependencies (timm itself: tests/requirements-timm.txt).
    "huggingface_hub",
    "pyyaml",
    # The notebooks in notebooks/, executed by tests/notebooks.
    "nbclient",
    "nbformat",
    "ipykernel",
    "matplotlib",
]

setup(
    name="lambda_keras",
    version=VERSION,
    description="LambdaNetworks (Bello, ICLR 2021) for Keras 3: layers and models.",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=[
        *find_packages(include=["lambda_keras", "lambda_keras.*"]),
        "lambda_keras.checkpoints",
    ],
    package_dir={"lambda_keras.checkpoints": "checkpoints"},
    package_data={
        "lambda_keras": ["sample_images/*.jpg", "applications/*.json"],
        "lambda_keras.checkpoints": [
            "manifest.json",
            "README.md",
            "*/*.weights.h5",
            "*/model_card.json",
            "*/training_log.csv",
            "*/*.png",
        ],
    },
    install_requires=[
        "keras>=3.9",
        # The default backend (tf.data, SavedModel, tf.distribute). Plain
        # `tensorflow`, so a GPU, TPU or Colab TensorFlow already installed
        # is kept rather than joined by a second, CPU-only copy.
        "tensorflow>=2.16",
        "numpy",
        "pillow",
        "h5py",
    ],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["lambda-keras=lambda_keras.__main__:main"]},
)
