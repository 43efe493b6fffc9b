"""Demo on real sample images (no download needed).

Run with `python -m lambda_keras` (or `lambda-keras demo`). It first
classifies the three sample Imagenette photographs with our LambdaResNet
trained on Imagenette (`LambdaResNet26Compact(weights="imagenette")`, a
checkpoint shipped in `checkpoints/`). It then embeds a sample photograph
with a random 1x1 projection, runs the lambda layer in its main
configurations, times each and checks two of the paper's
claims on the spot: the einsum and lambda-convolution implementations agree,
and a causal layer ignores later positions. It then runs the photograph
through a LambdaResNet50 (random weights: the paper's models have no public
weights, and the demo never downloads) and reports its parameters, FLOPS and
forward time.
"""

import pathlib
import re
import time

import keras
import numpy as np
from keras import ops

from lambda_keras.applications import LambdaResNet26Compact
from lambda_keras.applications import LambdaResNet50
from lambda_keras.applications import preprocess_input
from lambda_keras.applications.flops import count_multiply_adds
from lambda_keras.applications.imagenet import imagenet_label
from lambda_keras.errors import UsageError
from lambda_keras.layers import LambdaLayer
from lambda_keras.preprocessing import load_image
from lambda_keras.preprocessing import sample_images
from lambda_keras.validation import positive_int

# LambdaResNet50's smallest input side (as for the models of
# keras.applications).
SMALLEST_MODEL_SIZE = 32


def classify_samples(print_fn=print):
    """Classifies the sample photographs with the shipped Imagenette model.

    Args:
        print_fn: where the report lines go.

    Returns:
        A list of dicts: `image`, `label` (top-1 class name), `probability`.
    """
    from lambda_keras.weights import find_checkpoint

    entry = find_checkpoint("imagenette", architecture="LambdaResNet26Compact")
    size = entry["input_size"][0]
    preprocessing = entry["preprocessing"]
    model = LambdaResNet26Compact(weights="imagenette", input_shape=(size, size, 3))
    images = preprocess_input(
        np.stack(
            [
                load_image(
                    path, size, preprocessing["crop_fraction"], preprocessing["resize"]
                )
                for path in sample_images()
            ]
        )
    )
    probabilities = model.predict(images, verbose=0)
    print_fn(
        f"LambdaResNet26Compact(weights='imagenette') at {size}x{size} "
        f"({entry['metrics']['top1']}% top-1 on Imagenette val):"
    )
    results = []
    for path, row in zip(sample_images(), probabilities):
        best = int(np.argmax(row))
        label = imagenet_label(entry["class_names"][best])
        results.append(
            {"image": path.name, "label": label, "probability": float(row[best])}
        )
        print_fn(f"  {path.name:14s} -> {label} ({100 * row[best]:.1f}%)")
    return results


def check_sizes(size, model_size):
    """Checks the demo's `--size` and `--model-size` before any work."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise UsageError(
            f"--size must be a positive integer (the image side for the lambda "
            f"layers). Received: --size={size!r}"
        )
    if (
        isinstance(model_size, bool)
        or not isinstance(model_size, int)
        or model_size < SMALLEST_MODEL_SIZE
    ):
        raise UsageError(
            f"--model-size must be an integer of at least {SMALLEST_MODEL_SIZE} "
            f"(LambdaResNet50's smallest input). Received: --model-size={model_size!r}"
        )


def load_demo_image(path, size):
    """`load_image`, with a missing, unreadable or undecodable file named.

    Raises:
        OSError: the file cannot be read (missing, a folder, no permission).
        ValueError: it is not an image TensorFlow decodes.
    """
    import tensorflow as tf

    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        raise type(error)(
            f"Cannot read the image file: {error.strerror}. Received: --image={path}"
        ) from None
    try:
        return load_image(path, size)
    except tf.errors.InvalidArgumentError as error:
        # "{{function_node ...}} Unknown image file format. ... [Op:...]"
        reason = re.sub(r"\{\{.*?\}\}|\[Op:.*", "", error.message, flags=re.S)
        raise ValueError(
            "The image file is not a JPEG, PNG, BMP or GIF image that "
            f"TensorFlow decodes ({reason.strip()}). Received: --image={path}"
        ) from None


def _timed(layer, inputs, repeats=3):
    outputs = layer(inputs, training=False)  # builds and warms up
    start = time.perf_counter()
    for _ in range(repeats):
        outputs = layer(inputs, training=False)
    return ops.convert_to_numpy(outputs), (time.perf_counter() - start) / repeats


def run_demo(
    image_path=None, size=56, channels=64, model_size=224, seed=0, print_fn=print
):
    """Runs the demo and returns its results as a dict.

    Args:
        image_path: image file; defaults to a shipped sample photograph.
        size: side of the image fed to the lambda layers.
        channels: channels of the random 1x1 embedding of the image.
        model_size: side of the image fed to LambdaResNet50.
        seed: random seed.
        print_fn: where the report lines go.

    Raises:
        ValueError: a size out of range, or an image file that does not
            decode (checked before anything runs).
        OSError: an image file that cannot be read.
    """
    check_sizes(size, model_size)
    positive_int("channels", channels)
    image_path = pathlib.Path(image_path or sample_images()[-1])
    image = load_demo_image(image_path, size)[None] / 255.0
    photo = preprocess_input(load_demo_image(image_path, model_size)[None])
    keras.utils.set_random_seed(seed)
    classified = classify_samples(print_fn)
    features = keras.layers.Dense(channels, use_bias=False)(image)
    print_fn(
        f"lambda_keras demo on {image_path.name} ({size}x{size}), backend "
        f"{keras.backend.backend()}, random weights, features {tuple(features.shape)}"
    )
    configurations = {
        "global context (einsum)": dict(scope=None),
        "local 23x23 (einsum)": dict(scope=23, implementation="einsum"),
        "local 23x23 (lambda conv)": dict(scope=23, implementation="conv"),
        "local 7x7, |u|=4 (lambda conv)": dict(scope=7, dim_u=4),
        "causal raster order, 7x7": dict(scope=7, causal=True),
        "content only": dict(use_position=False),
        "strided (3x3 avg pool)": dict(scope=23, strides=2),
    }
    results = {}
    layers = {}
    print_fn(f"{'configuration':34s} {'output shape':>18s} {'params':>8s} {'ms':>8s}")
    for name, kwargs in configurations.items():
        layer = LambdaLayer(dim_k=16, heads=4, **kwargs)
        outputs, seconds = _timed(layer, features)
        layers[name] = layer
        results[name] = {
            "output_shape": list(outputs.shape),
            "params": layer.count_params(),
            "milliseconds": 1000 * seconds,
        }
        print_fn(
            f"{name:34s} {str(tuple(outputs.shape)):>18s} "
            f"{layer.count_params():8d} {1000 * seconds:8.1f}"
        )

    einsum, conv = layers["local 23x23 (einsum)"], layers["local 23x23 (lambda conv)"]
    conv.set_weights(einsum.get_weights())
    difference = float(
        np.abs(
            ops.convert_to_numpy(einsum(features, training=False))
            - ops.convert_to_numpy(conv(features, training=False))
        ).max()
    )
    print_fn(
        f"einsum vs lambda convolution, same weights: max |diff| = {difference:.2e}"
    )

    causal = layers["causal raster order, 7x7"]
    flat = ops.convert_to_numpy(features).reshape(1, size * size, channels)
    half = size * size // 2
    changed = flat.copy()
    changed[:, half:] = np.random.default_rng(seed).normal(size=changed[:, half:].shape)
    before = ops.convert_to_numpy(causal(features, training=False)).reshape(flat.shape)
    after = ops.convert_to_numpy(
        causal(changed.reshape(features.shape), training=False)
    ).reshape(flat.shape)
    leak = float(np.abs(after[:, :half] - before[:, :half]).max())
    print_fn(
        "causal layer, second half of the image replaced by noise: max change "
        f"in the first half = {leak:.2e}"
    )

    model = LambdaResNet50(weights=None, input_shape=(model_size, model_size, 3))
    model.predict(photo, verbose=0)  # warm-up
    start = time.perf_counter()
    probabilities = model.predict(photo, verbose=0)
    seconds = time.perf_counter() - start
    gflops = 2 * count_multiply_adds(model) / 1e9
    print_fn(
        f"LambdaResNet50 (hybrid, random weights) at {model_size}x{model_size}: "
        f"{model.count_params() / 1e6:.1f}M parameters, {gflops:.1f} GFLOPS, "
        f"forward {1000 * seconds:.0f} ms, output {tuple(probabilities.shape)}"
    )
    return {
        "classified": classified,
        "image": image_path.name,
        "lambda_resnet50": {
            "image_size": model_size,
            "parameters": model.count_params(),
            "gflops": gflops,
            "milliseconds": 1000 * seconds,
            "output_shape": list(probabilities.shape),
        },
        "size": size,
        "configurations": results,
        "einsum_vs_conv_max_abs_diff": difference,
        "causal_leak_max_abs_diff": leak,
    }
