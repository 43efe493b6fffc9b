"""The serving signatures of an exported LambdaResNet classifier.

`ServingEndpoints(model, ...)` holds three TensorFlow functions and their
input signatures; `export_saved_model` writes them into the SavedModel and
`lambda-keras predict --model` runs the same functions in memory:

- `serving_default(image_bytes)`: `image_bytes` (batch,) tf.string of
  encoded JPEG or PNG files, decoded, checked, resized and centre-cropped by
  `decode_images` (the evaluation transform of our checkpoints, with the
  values of the weights' manifest entry) and fed to the model. The `_bytes`
  suffix makes TF Serving's REST API accept `{"b64": "..."}` values.
- `predict_images(images)`: `images` (batch, H, W, 3) tf.float32, RGB in
  0-255, already at the model's size (any size for models whose position
  embeddings are all local; see `accepts_any_size`). An image with a NaN or
  infinite value fails with an InvalidArgumentError naming it
  (`images[1] has NaN or infinite values`).

Both return `probabilities` (batch, classes) float32, the top-k `classes`
(batch, k) int32 with their `scores` (batch, k) float32 and `class_names`
(batch, k) tf.string.

- `features(images)`: as `predict_images`, returning `features` (batch, d)
  float32, the globally average-pooled features (the `avg_pool` layer).

Normalisation: a model built with `include_preprocessing=True` (it has a
`Normalization` layer) receives the 0-255 pixels and normalises them itself;
for any other model the signatures apply `(x / 255 - mean) / std` with the
preprocessing's mean and std. A classifier without a softmax (logits) gets
one in the signatures, so `probabilities` are always probabilities.
"""

import keras
import tensorflow as tf

from lambda_keras.export.metadata import default_class_names
from lambda_keras.export.preprocessing import DEFAULT_MAX_PIXELS
from lambda_keras.export.preprocessing import DEFAULT_MAX_RESIZED_PIXELS
from lambda_keras.export.preprocessing import ServingPreprocessing
from lambda_keras.export.preprocessing import assert_with_message
from lambda_keras.export.preprocessing import decode_images
from lambda_keras.export.preprocessing import normalize
from lambda_keras.layers import LambdaLayer
from lambda_keras.layers import RelativePositionEmbedding
from lambda_keras.validation import positive_int

SERVING_DEFAULT = "serving_default"
PREDICT_IMAGES = "predict_images"
FEATURES = "features"
SIGNATURE_NAMES = (SERVING_DEFAULT, PREDICT_IMAGES, FEATURES)
CLASSIFIER_LAYER = "predictions"
FEATURES_LAYER = "avg_pool"
# Layers whose output shape ties the model to its input size.
_FIXED_SIZE_LAYERS = (keras.layers.Flatten, keras.layers.Reshape)


class ServingEndpoints:
    """The signatures of one classifier (see the module docstring).

    Args:
        model: a LambdaResNet classifier (`include_top=True`: layers named
            `avg_pool` and `predictions`), one image input.
        class_names: one name per class; defaults to "class_0", ...
        preprocessing: a `ServingPreprocessing`, or a dict in the form of a
            manifest entry's `preprocessing` with an `input_size` key;
            defaults to the model's input size, a 0.875 crop and bilinear
            resizing.
        top_k: how many classes `classes`, `scores` and `class_names` list
            (at most the number of classes).
        max_pixels: largest image (height x width) `serving_default`
            decodes.
        max_resized_pixels: the most pixels either pass of
            `serving_default`'s resize may make (the shorter side scaled to
            `floor(size / crop_fraction)`); see `decode_images`.
        dynamic_size: whether `predict_images` and `features` take any
            height and width; None: when the model allows it
            (`accepts_any_size`).

    Attributes:
        network: a Keras model with the outputs `probabilities` and
            `features`, sharing the layers (and weights) of `model`.
        signatures: {name: (function, input_signature)}.
    """

    def __init__(
        self,
        model,
        class_names=None,
        preprocessing=None,
        top_k=5,
        max_pixels=DEFAULT_MAX_PIXELS,
        max_resized_pixels=DEFAULT_MAX_RESIZED_PIXELS,
        dynamic_size=None,
    ):
        if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
            raise ValueError(
                "The serving signatures take a model with one image input "
                "(batch, height, width, 3). "
                f"Received: model.inputs={[tuple(x.shape) for x in model.inputs]}"
            )
        layer_names = {layer.name for layer in model.layers}
        if not {CLASSIFIER_LAYER, FEATURES_LAYER} <= layer_names:
            raise ValueError(
                "The serving signatures need a classifier: a model built with "
                f"`include_top=True` (layers '{FEATURES_LAYER}' and "
                f"'{CLASSIFIER_LAYER}'). Received: model={model.name!r} with "
                f"output shape {tuple(model.output.shape)}"
            )
        positive_int("top_k", top_k)
        positive_int("max_pixels", max_pixels)
        positive_int("max_resized_pixels", max_resized_pixels)
        self.model = model
        classes = model.output.shape[-1]
        self.class_names = tuple(
            default_class_names(classes) if class_names is None else class_names
        )
        if len(self.class_names) != classes:
            raise ValueError(
                f"The model has {classes} classes, so `class_names` must have "
                f"{classes} names. Received: class_names={list(self.class_names)}"
            )
        height, width = model.inputs[0].shape[1:3]
        self.preprocessing = _preprocessing(preprocessing, height, width)
        size = self.preprocessing.input_size
        if dynamic_size is None:
            dynamic_size = None in (height, width) or accepts_any_size(model)
        if not dynamic_size and None not in (height, width):
            if (height, width) != (size, size):
                raise ValueError(
                    f"The model takes {height}x{width} images but the "
                    f"preprocessing makes {size}x{size} ones. "
                    f"Received: input_size={size}"
                )
        self.image_shape = (None, None) if dynamic_size else (size, size)
        self.top_k = min(top_k, classes)
        self.max_pixels = max_pixels
        self.max_resized_pixels = max_resized_pixels
        self.normalizes = any(
            isinstance(layer, keras.layers.Normalization) for layer in model.layers
        )
        activation = model.get_layer(CLASSIFIER_LAYER).activation
        self.applies_softmax = getattr(activation, "__name__", "") != "softmax"
        self.network = keras.Model(
            model.inputs[0],
            {
                "probabilities": model.output,
                "features": model.get_layer(FEATURES_LAYER).output,
            },
            name=f"{model.name}_serving",
        )
        self._names = tf.constant(self.class_names, tf.string)
        images = tf.TensorSpec((None, *self.image_shape, 3), tf.float32, name="images")
        self.signatures = {
            SERVING_DEFAULT: (
                self.serving_default,
                [tf.TensorSpec((None,), tf.string, name="image_bytes")],
            ),
            PREDICT_IMAGES: (self.predict_images, [images]),
            FEATURES: (self.features, [images]),
        }

    def serving_default(self, image_bytes):
        """Encoded JPEG/PNG strings (batch,) -> the classification dict."""
        image_bytes = _ensure_shape(image_bytes, (None,))
        images = decode_images(
            image_bytes,
            self.preprocessing,
            self.max_pixels,
            self.max_resized_pixels,
        )
        return self._classify(images)

    def predict_images(self, images):
        """float32 (batch, H, W, 3) in 0-255 -> the classification dict."""
        return self._classify(self._checked_images(images))

    def features(self, images):
        """float32 (batch, H, W, 3) in 0-255 -> {"features": (batch, d)}."""
        return {"features": self.outputs(self._checked_images(images))["features"]}

    def _checked_images(self, images):
        images = _ensure_shape(images, (None, *self.image_shape, 3))
        return _ensure_finite(images)

    def _classify(self, images):
        probabilities = self.outputs(images)["probabilities"]
        scores, classes = tf.math.top_k(probabilities, k=self.top_k)
        return {
            "probabilities": probabilities,
            "classes": classes,
            "scores": scores,
            "class_names": tf.gather(self._names, classes),
        }

    def outputs(self, images):
        """`probabilities` and `features` (float32) of 0-255 images.

        The numeric core of the signatures, also what `export_tflite` and
        `export_onnx` convert.
        """
        if not self.normalizes:
            images = normalize(images, self.preprocessing)
        outputs = self.network(images, training=False)
        probabilities = tf.cast(outputs["probabilities"], tf.float32)
        if self.applies_softmax:
            probabilities = tf.nn.softmax(probabilities, axis=-1)
        return {
            "probabilities": probabilities,
            "features": tf.cast(outputs["features"], tf.float32),
        }

    def functions(self):
        """{name: tf.function with its input signature}, for in-memory use."""
        return {
            name: tf.function(function, input_signature=signature, autograph=False)
            for name, (function, signature) in self.signatures.items()
        }


def accepts_any_size(model):
    """Whether `model` computes at any input height and width.

    True when every position embedding is local (a `scope`, independent of
    the input size: the lambda convolution or the local einsum) and no layer
    flattens or reshapes to a fixed size; global position embeddings
    (`scope=None`) are sized for the input the model was built with.
    """
    for layer in _all_layers(model):
        if isinstance(layer, _FIXED_SIZE_LAYERS):
            return False
        if isinstance(layer, RelativePositionEmbedding) and layer.scope is None:
            return False
        if isinstance(layer, LambdaLayer) and layer.use_position:
            if layer.scope is None:
                return False
    return True


def _ensure_shape(tensor, shape):
    """Checks the shape of a signature's input when the graph runs.

    A signature called through TF Serving or `loaded.signatures[...]` only
    checks the dtype of its inputs; `tf.ensure_shape` rejects another rank
    or channel count with an InvalidArgumentError naming both shapes.
    """
    return tf.ensure_shape(tensor, shape)


def _ensure_finite(images):
    """Rejects images with a NaN or infinite value, naming the first one.

    The model would turn them into NaN probabilities without a word.
    """
    finite = tf.reduce_all(tf.math.is_finite(images), axis=[1, 2, 3])
    # The smallest index of a non-finite image (the reduction's identity,
    # never shown, when there is none).
    first = tf.reduce_min(tf.where(tf.logical_not(finite)))
    check = assert_with_message(
        tf.reduce_all(finite),
        "images[",
        first,
        "] has NaN or infinite values; expected RGB values in 0-255",
    )
    with tf.control_dependencies([check]):
        return tf.identity(images)


def _all_layers(layer):
    for child in getattr(layer, "layers", ()):
        yield child
        yield from _all_layers(child)


def _preprocessing(preprocessing, height, width):
    if isinstance(preprocessing, ServingPreprocessing):
        return preprocessing
    if preprocessing is None:
        preprocessing = {}
    if not isinstance(preprocessing, dict):
        raise ValueError(
            "`preprocessing` must be None, a ServingPreprocessing or a dict "
            "(a manifest entry's `preprocessing` with `input_size`). "
            f"Received: preprocessing={preprocessing!r}"
        )
    input_size = preprocessing.get("input_size")
    if input_size is None:
        if None in (height, width) or height != width:
            raise ValueError(
                "The model's input size is not a fixed square, so the "
                "preprocessing must give `input_size`. "
                f"Received: preprocessing={preprocessing!r}"
            )
        input_size = height
    return ServingPreprocessing.from_manifest(preprocessing, input_size)
