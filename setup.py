"""Packaging for lambda_keras."""

from setuptools import find_packages
from setuptools import setup

LINUX_X86 = "sys_platform == 'linux' and platform_machine == 'x86_64'"
NOT_LINUX_X86 = "sys_platform != 'linux' or platform_machine != 'x86_64'"

setup(
    name="lambda_keras",
    version="0.1.0",
    description="LambdaNetworks (Bello, ICLR 2021) for Keras 3: layers and models.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["lambda_keras", "lambda_keras.*"]),
    package_data={"lambda_keras": ["sample_images/*.jpg", "applications/*.json"]},
    install_requires=[
        "keras>=3.9",
        # TensorFlow is the default backend (tf.data, SavedModel, tf.distribute).
        f"tensorflow-cpu>=2.16; {LINUX_X86}",
        f"tensorflow>=2.16; {NOT_LINUX_X86}",
        # Training: tensorflow-datasets input and TensorBoard logs.
        "tensorflow-datasets",
        "tensorboard",
        "numpy",
        "pillow",
        "h5py",
    ],
    extras_require={
        # lambda_keras.hub: keras-hub models and presets. keras-hub needs
        # tensorflow-text, which needs `tensorflow` (not `tensorflow-cpu`).
        "hub": ["keras-hub>=0.32"],
        "test": [
            "pytest>=8",
            "ruff>=0.6",
            # The layer tests also run on the JAX and PyTorch backends.
            "jax>=0.4.30",
            "torch==2.13.0",
            # Independent writer of .safetensors files for the converter tests.
            "safetensors",
            # timm's own dependencies (timm itself: tests/requirements-timm.txt).
            "huggingface_hub",
            "pyyaml",
            # The export tests: ONNX conversion and onnxruntime parity.
            "tf2onnx>=1.16",
            "onnx",
            "onnxruntime",
            # The notebooks in notebooks/, executed by tests/notebooks.
            "nbclient",
            "nbformat",
            "ipykernel",
            "matplotlib",
        ],
    },
    entry_points={"console_scripts": ["lambda-keras=lambda_keras.__main__:main"]},
)
