"""Converters of timm PyTorch checkpoints, starting with their readers.

`read_checkpoint(path)` reads a `.safetensors` file or a zip-format
`torch.save` file (`.pth`, `.pt`, `.bin`) into a flat dict of name ->
`numpy.ndarray`, without importing torch or safetensors and without running
any code from the file.
"""

from lambda_keras.convert.checkpoint_readers import UnsafeCheckpointError
from lambda_keras.convert.checkpoint_readers import read_checkpoint
from lambda_keras.convert.checkpoint_readers import read_safetensors
from lambda_keras.convert.checkpoint_readers import read_torch_checkpoint

__all__ = [
    "UnsafeCheckpointError",
    "read_checkpoint",
    "read_safetensors",
    "read_torch_checkpoint",
]
