"""Loads timm LambdaResNet state dicts into the Keras models.

Every Keras weight is named by the timm key it comes from, converted from
PyTorch's layout (convolutions (out, in, h, w) -> (h, w, in, out); linear
(out, in) -> (in, out); the lambda convolution (k, 1, r, r, 1) -> the
relative table (r, r, k, 1)) and checked for shape. Keys that the model does
not use, and weights the checkpoint lacks, are reported by name.
"""

import re

import numpy as np

from lambda_keras.layers import LambdaLayer

# Unused timm buffers: BatchNorm's batch counter.
_IGNORED_SUFFIXES = ("num_batches_tracked",)
_CLASSIFIER = ("head.fc.weight", "head.fc.bias")
_BN = ("weight", "bias", "running_mean", "running_var")


def timm_weight_names(model):
    """Pairs every weight of `model` with the timm key it is loaded from.

    Returns:
        A list of (layer, [(weight, timm key or None), ...]) for the layers
        that have weights.
    """
    lambda_blocks = {
        layer.name[: -len("_lambda")]
        for layer in model.layers
        if isinstance(layer, LambdaLayer)
    }
    mapping = []
    for layer in model.layers:
        if layer.weights:
            pairs = [
                (weight, _timm_key(layer, weight, lambda_blocks))
                for weight in layer.weights
            ]
            mapping.append((layer, pairs))
    return mapping


def load_timm_state_dict(model, state_dict):
    """Assigns a timm state dict to a model built by a timm constructor.

    Args:
        model: e.g. `LambdaResNet26T(...)`; with `include_top=False` or a
            different number of classes the classifier is left as it is.
        state_dict: dict of numpy arrays from `read_checkpoint`.

    Returns:
        A dict with the lists `unused` (checkpoint keys not loaded, the
        classifier's among them when it was dropped) and `loaded`.

    Raises:
        ValueError: naming every weight the checkpoint lacks, or the first
            weight whose shape does not match, with both shapes. Nothing is
            assigned to the model in that case.
    """
    assignments, missing = [], []
    for layer, pairs in timm_weight_names(model):
        for weight, key in pairs:
            if key is None or key not in state_dict:
                missing.append(key or weight.path)
                continue
            value = _to_keras(key, np.asarray(state_dict[key]))
            if key in _CLASSIFIER and tuple(value.shape) != tuple(weight.shape):
                continue  # another number of classes: keep the new head
            if tuple(value.shape) != tuple(weight.shape):
                raise ValueError(
                    f"The checkpoint does not fit layer '{layer.name}': "
                    f"'{key}' has shape {tuple(state_dict[key].shape)} "
                    f"(converted {tuple(value.shape)}) but the layer's weight "
                    f"'{weight.path}' has shape {tuple(weight.shape)}. Is it a "
                    "checkpoint for another architecture?"
                )
            assignments.append((weight, key, value))
    missing = [key for key in missing if key not in _CLASSIFIER]
    if missing:
        raise ValueError(
            f"The checkpoint lacks {len(missing)} weight(s) of the model, "
            f"first: {missing[:5]}. Is it a checkpoint for another "
            "architecture?"
        )
    for weight, _, value in assignments:
        weight.assign(value.astype(weight.dtype))
    loaded = [key for _, key, _ in assignments]
    used = set(loaded)
    unused = sorted(
        key
        for key in state_dict
        if key not in used and not key.endswith(_IGNORED_SUFFIXES)
    )
    return {"loaded": loaded, "unused": unused}


_BN_NAMES = {
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}
_BLOCK_MODULES = {
    "shortcut_conv": "shortcut.conv",
    "shortcut_bn": "shortcut.bn",
    "conv1": "conv1_1x1.conv",
    "bn1": "conv1_1x1.bn",
    "conv2": "conv2_kxk.conv",
    "bn2": "conv2_kxk.bn",
    "conv3": "conv3_1x1.conv",
    "bn3": "conv3_1x1.bn",
}
_LAMBDA_WEIGHTS = {
    "qkv_projection/kernel": "qkv.weight",
    "position_bias": "conv_lambda.bias",
}


def _timm_key(layer, weight, lambda_blocks):
    """The timm key of one Keras weight, or None if timm has no such weight."""
    name = layer.name
    weight_name = weight.path.split("/")[-1]
    if name == "predictions":
        return f"head.fc.{'weight' if weight_name == 'kernel' else 'bias'}"
    stem = re.fullmatch(r"stem_(conv|bn)(\d)", name)
    if stem:
        kind, index = stem.groups()
        if kind == "conv":
            return f"stem.conv{index}.conv.weight"
        return f"stem.conv{index}.bn.{_BN_NAMES[weight_name]}"
    block = re.fullmatch(r"(c\d_block\d+)_(\w+)", name)
    if block is None:
        return None
    block_name, part = block.groups()
    prefix = _block_prefix(block_name)
    if part == "lambda":
        attention = f"{prefix}.self_attn"
        local = weight.path.split(f"{name}/", 1)[-1]
        for norm, module in (("query_norm", "norm_q"), ("value_norm", "norm_v")):
            if local.startswith(norm + "/"):
                return f"{attention}.{module}.{_BN_NAMES[weight_name]}"
        if local == "position_embedding/table":
            return (
                f"{attention}.conv_lambda.weight"
                if layer.scope is not None
                else f"{attention}.pos_emb"
            )
        return f"{attention}.{_LAMBDA_WEIGHTS[local]}"
    if part == "bn2" and block_name in lambda_blocks:
        return f"{prefix}.post_attn.{_BN_NAMES[weight_name]}"
    module = _BLOCK_MODULES.get(part)
    if module is None:
        return None
    if weight_name in _BN_NAMES:
        return f"{prefix}.{module}.{_BN_NAMES[weight_name]}"
    return f"{prefix}.{module}.weight"


def _block_prefix(block_name):
    match = re.fullmatch(r"c(\d)_block(\d+)", block_name)
    stage, block = int(match.group(1)) - 2, int(match.group(2)) - 1
    return f"stages.{stage}.{block}"


def _to_keras(key, value):
    if key.endswith("conv_lambda.weight"):  # (k, 1, r, r, 1) -> (r, r, k, 1)
        return np.transpose(value[:, 0, :, :, 0], (1, 2, 0))[..., None]
    if key.endswith("pos_emb"):  # (2H-1, 2W-1, k) -> (2H-1, 2W-1, k, 1)
        return value[..., None]
    if key.endswith("qkv.weight"):  # 1x1 conv (out, in, 1, 1) -> (in, out)
        return value[:, :, 0, 0].T
    if value.ndim == 4:  # conv (out, in, h, w) -> (h, w, in, out)
        return np.transpose(value, (2, 3, 1, 0))
    if value.ndim == 2:  # linear (out, in) -> (in, out)
        return value.T
    return value
