"""`LambdaResNetBackbone`: any LambdaResNet as a keras-hub feature pyramid."""

import contextlib
import inspect

import keras
import keras_hub

from lambda_keras.applications.lambda_resnet import LambdaResNet
from lambda_keras.applications.variants import VARIANTS_BY_NAME
from lambda_keras.hub import presets

# The `LambdaResNet` arguments that describe a network (its keyword-only
# arguments, and `depths`); `weights_registry_name` names weights instead.
OPTIONS = frozenset(
    ["depths"]
    + [
        name
        for name, parameter in inspect.signature(LambdaResNet).parameters.items()
        if parameter.kind is parameter.KEYWORD_ONLY and name != "weights_registry_name"
    ]
)


@keras.saving.register_keras_serializable(package="lambda_keras")
class LambdaResNetBackbone(keras_hub.models.FeaturePyramidBackbone):
    """A LambdaResNet without its classifier, as a keras-hub backbone.

    The network is a row of `lambda_keras.applications.variants.VARIANTS`
    (`variant`), optionally changed by any `LambdaResNet` argument, and is
    built by `LambdaResNet(..., include_top=False)` itself: its layers and
    their names are those of the `lambda_keras.applications` model.

    Inputs are normalised images, as `LambdaResNetImageConverter` makes
    them (the backbone has no rescaling or normalisation of its own).

    Args:
        variant: name of the network, a row of `VARIANTS`, e.g.
            "LambdaResNet26Compact" or "LambdaResNet50".
        image_shape: (height, width, 3). Defaults to (None, None, 3) (any
            size of at least 32 px) for local-scope networks, and to the
            network's `default_size` for global-scope ones, whose position
            embeddings fix the input size.
        dtype: dtype policy of every layer (e.g. "mixed_float16"); None for
            the global policy.
        **kwargs: `LambdaResNet` arguments overriding the variant's
            (`depths`, `scope`, `width_multiplier`, `dim_k`, `placement`,
            ...), and `keras.Model` ones (`name`, `trainable`).

    Input shape:
        (batch, height, width, 3).

    Output shape:
        The c5 feature map, (batch, height / 32, width / 32, channels).
        `pyramid_outputs` maps "P2" ... "P5" to the outputs of stages c2 ...
        c5: (batch, height / 2**n, width / 2**n, channels of the stage) for
        "Pn".

    Example:

    ```python
    backbone = LambdaResNetBackbone("LambdaResNet26Compact", scope=7)
    features = keras.Model(backbone.input, backbone.pyramid_outputs)
    features(np.zeros((1, 64, 64, 3)))["P3"].shape  # (1, 8, 8, 256)
    ```
    """

    def __init__(
        self, variant="LambdaResNet26Compact", image_shape=None, dtype=None, **kwargs
    ):
        if variant not in VARIANTS_BY_NAME:
            raise ValueError(
                f"`variant` must be one of {sorted(VARIANTS_BY_NAME)}. "
                f"Received: variant={variant!r}"
            )
        row = VARIANTS_BY_NAME[variant]
        options = {key: kwargs.pop(key) for key in list(kwargs) if key in OPTIONS}
        arguments = {**row.builder_arguments(), "depths": row.depths, **options}
        if image_shape is None:
            size = None if arguments["scope"] is not None else arguments["default_size"]
            image_shape = (size, size, 3)
        image_shape = tuple(image_shape)
        with _dtype_policy(dtype):
            model = LambdaResNet(
                include_top=False, input_shape=image_shape, **arguments
            )
        pyramid_outputs = {
            f"P{stage}": model.get_layer(f"c{stage}_block{depth}_out").output
            for stage, depth in enumerate(arguments["depths"], start=2)
        }
        super().__init__(
            inputs=model.input, outputs=model.output, dtype=dtype, **kwargs
        )
        self.variant = variant
        self.image_shape = image_shape
        self.options = options
        self.pyramid_outputs = pyramid_outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {"variant": self.variant, "image_shape": self.image_shape, **self.options}
        )
        return config

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """A backbone from a registry name or a keras-hub preset.

        Args:
            preset: the name of registered weights (e.g.
                "lambda_resnet26_compact.imagenette", see
                `lambda_keras.weights.load_manifest`), or any keras-hub
                preset: a folder written by `save_to_preset`, a
                "kaggle://" or "hf://" handle.
            load_weights: whether to load the weights (those of a registry
                name are downloaded and converted as `weights=` of the
                applications does); False keeps the random initialisation.
            **kwargs: constructor arguments (`image_shape`, `dtype`, ...).

        Returns:
            A `LambdaResNetBackbone`.
        """
        entry = presets.registry_entry(preset)
        if entry is None:
            return super().from_preset(preset, load_weights=load_weights, **kwargs)
        backbone = cls(variant=entry["architecture"], **kwargs)
        if load_weights:
            presets.load_registry_weights(entry, backbone)
        return backbone


@contextlib.contextmanager
def _dtype_policy(dtype):
    """Makes `dtype` the global dtype policy while the layers are created.

    `LambdaResNet` creates its layers with the global policy; keras-hub
    backbones take theirs as `dtype`.
    """
    if dtype is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
