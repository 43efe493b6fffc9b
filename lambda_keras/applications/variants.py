"""Every named LambdaResNet, one row each, and the constructors made from them.

`VARIANTS` is the one place a named model is described: the paper's
LambdaResNet-50 ... 420 (Appendix D), the three networks of timm whose
ImageNet weights `lambda_keras.convert` loads, and our compact models for
small images. `lambda_keras.applications.MODELS`, the package's `__all__`
and the command line's `--model` choices are all read from it, so adding a
variant is adding a row.

Each row becomes a `keras.applications`-style constructor
(`make_constructor`) with a real signature and docstring, so `help()` and
`inspect.signature` show its arguments.
"""

import dataclasses
import textwrap

from lambda_keras.applications.lambda_resnet import LambdaResNet


@dataclasses.dataclass(frozen=True)
class Variant:
    """One named network.

    Attributes:
        name: the constructor's name, e.g. "LambdaResNet50"; registered
            weights name it as their `architecture`.
        model_name: the Keras model's default name; the names of its
            registered weights start with it (e.g. "lambda_resnet26t" in
            "lambda_resnet26t.c1_in1k"). For timm's networks it is timm's
            model name.
        depths: residual blocks in c2, c3, c4, c5.
        placement: lambda layers per stage (see `LambdaResNet`).
        summary: what the network is, for its docstring.
        architecture: "hybrid", "vanilla" or "timm" (see `LambdaResNet`).
        activation: activation of the blocks and stem.
        scope: local scope of the position lambdas, None for global.
        default_size: default input height and width.
        default_classes: default number of classes.
        options: other `LambdaResNet` keyword arguments the network sets.
    """

    name: str
    model_name: str
    depths: tuple
    placement: tuple
    summary: str
    architecture: str = "hybrid"
    activation: str = "relu"
    scope: int | None = 23
    default_size: int = 224
    default_classes: int = 1000
    options: dict = dataclasses.field(default_factory=dict)

    @property
    def timm_name(self):
        """timm's name of the network, or None when it is not one of timm's."""
        return self.model_name if self.architecture == "timm" else None

    def builder_arguments(self):
        """The `LambdaResNet` keyword arguments that define this network."""
        return dict(
            architecture=self.architecture,
            placement=self.placement,
            activation=self.activation,
            scope=self.scope,
            default_size=self.default_size,
            **self.options,
        )


_PAPER = (
    "The paper's hybrid LambdaResNet (Appendix D, the 350-epoch setup): "
    "lambda layers uniformly spaced in c4 and in all of c5."
)
_TIMM = (
    "timm's `{}` in Keras; `weights='imagenet'` downloads timm's ImageNet "
    "weights (hash-checked, cached) and converts them."
)
_COMPACT = (
    "Half-width hybrid LambdaResNet-26 (ResNet-D stem) for 64-128 px images; "
    "`weights='imagenette'` loads our Imagenette checkpoint (expects "
    "`include_preprocessing=True`)."
)
_CIFAR = (
    "Half-width hybrid LambdaResNet-26 with the small-image stem (/2) for "
    "32 px images; `weights='cifar10'` loads our CIFAR-10 checkpoint "
    "(expects `include_preprocessing=True`)."
)
# Figure 2 scales depth and image size together from 224 to 320; Table 13
# uses 256 for ResNet-152 and Table 5 uses 320 for the large models.
# Stochastic depth 0.2 for models deeper than ResNet-200 (Appendix D).
_DEEP = dict(stochastic_depth_rate=0.2)
_HALF = dict(width_multiplier=0.5)

VARIANTS = (
    Variant(
        "LambdaResNet50", "lambda_resnet50", (3, 4, 6, 3), ("C", "C", 1, "L"), _PAPER
    ),
    Variant(
        "LambdaResNet101", "lambda_resnet101", (3, 4, 23, 3), ("C", "C", 3, "L"), _PAPER
    ),
    Variant(
        "LambdaResNet152",
        "lambda_resnet152",
        (3, 8, 36, 3),
        ("C", "C", 6, "L"),
        _PAPER,
        default_size=256,
    ),
    Variant(
        "LambdaResNet200",
        "lambda_resnet200",
        (3, 24, 36, 3),
        ("C", "C", 6, "L"),
        _PAPER,
        default_size=288,
    ),
    Variant(
        "LambdaResNet270",
        "lambda_resnet270",
        (4, 29, 53, 4),
        ("C", "C", 6, "L"),
        _PAPER,
        default_size=288,
        options=_DEEP,
    ),
    Variant(
        "LambdaResNet350",
        "lambda_resnet350",
        (4, 36, 72, 4),
        ("C", "C", 6, "L"),
        _PAPER,
        default_size=320,
        options=_DEEP,
    ),
    Variant(
        "LambdaResNet420",
        "lambda_resnet420",
        (4, 44, 87, 4),
        ("C", "C", 8, "L"),
        _PAPER,
        default_size=320,
        options=_DEEP,
    ),
    Variant(
        "LambdaResNet26T",
        "lambda_resnet26t",
        (2, 2, 2, 2),
        ("C", "C", (1,), "L"),
        _TIMM.format("lambda_resnet26t"),
        architecture="timm",
        scope=9,
        default_size=256,
    ),
    Variant(
        "LambdaResNet50TS",
        "lambda_resnet50ts",
        (3, 4, 6, 3),
        ("C", (3,), (1, 3, 5), (1,)),
        _TIMM.format("lambda_resnet50ts"),
        architecture="timm",
        activation="silu",
        scope=9,
        default_size=256,
    ),
    Variant(
        "LambdaResNet26RPT256",
        "lambda_resnet26rpt_256",
        (2, 2, 2, 2),
        ("C", "C", (1,), "L"),
        _TIMM.format("lambda_resnet26rpt_256")
        + " Its global embeddings fix the input size to the one it is built at.",
        architecture="timm",
        scope=None,
        default_size=256,
    ),
    Variant(
        "LambdaResNet26Compact",
        "lambda_resnet26_compact",
        (2, 2, 2, 2),
        ("C", "C", 1, "L"),
        _COMPACT,
        default_size=64,
        default_classes=10,
        options=_HALF,
    ),
    Variant(
        "LambdaResNet26Cifar",
        "lambda_resnet26_cifar",
        (2, 2, 2, 2),
        ("C", "C", 1, "L"),
        _CIFAR,
        default_size=32,
        default_classes=10,
        options=dict(_HALF, stem="small_image"),
    ),
)

VARIANTS_BY_NAME = {variant.name: variant for variant in VARIANTS}

_DOC = """Instantiates {name}.

    {summary}

    {facts}

    Args:
        include_top: whether to include the classifier on top.
        weights: None (random initialisation), the path to a weights file
            (`.weights.h5`, or timm's `.pth`/`.safetensors` for timm's
            networks), or the name (or alias) of registered pretrained
            weights.
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: optional (height, width, channels); defaults to the
            size registered weights were measured at, else ({size}, {size},
            3).
        pooling: with `include_top=False`, None (4-D feature map), "avg" or
            "max".
        classes: number of classes of the classifier.
        classifier_activation: activation of the classifier, or None for
            logits.
        include_preprocessing: whether the model starts by scaling RGB in
            0-255 to ImageNet mean/std units.
        name: model name.
        **kwargs: any other keyword argument of `LambdaResNet`
            (architecture, placement, dim_k, heads, dim_u, scope, ...),
            overriding this network's.

    Returns:
        A `keras.Model`: images (batch, height, width, 3) to class
        probabilities (batch, classes), or features without the top.
    """


def make_constructor(variant):
    """The `keras.applications`-style constructor of one variant.

    Args:
        variant: a `Variant`.

    Returns:
        A function `(include_top=True, weights=None, input_tensor=None,
        input_shape=None, pooling=None, classes=..., classifier_activation=
        "softmax", include_preprocessing=False, name=..., **kwargs)` that
        returns a `keras.Model`, named `variant.name`, with attributes
        `variant` and `default_size`.
    """

    def constructor(
        include_top=True,
        weights=None,
        input_tensor=None,
        input_shape=None,
        pooling=None,
        classes=variant.default_classes,
        classifier_activation="softmax",
        include_preprocessing=False,
        name=variant.model_name,
        **kwargs,
    ):
        return LambdaResNet(
            variant.depths,
            include_top=include_top,
            weights=weights,
            input_tensor=input_tensor,
            input_shape=input_shape,
            pooling=pooling,
            classes=classes,
            classifier_activation=classifier_activation,
            include_preprocessing=include_preprocessing,
            name=name,
            weights_registry_name=variant.name,
            **{**variant.builder_arguments(), **kwargs},
        )

    constructor.__name__ = constructor.__qualname__ = variant.name
    constructor.__module__ = "lambda_keras.applications"
    context = (
        "global relative"
        if variant.scope is None
        else f"{variant.scope}x{variant.scope} local"
    )
    size = variant.default_size
    facts = (
        f"Blocks {variant.depths}, lambda layers at {variant.placement} (c2, "
        f"c3, c4, c5), {variant.architecture!r} architecture, "
        f"{variant.activation} activations, {context} position lambdas, "
        f"default input {size}x{size}, {variant.default_classes} classes."
    )
    constructor.__doc__ = _DOC.format(
        name=variant.name,
        summary=textwrap.fill(variant.summary, 72, subsequent_indent="    "),
        facts=textwrap.fill(facts, 72, subsequent_indent="    "),
        size=size,
    )
    constructor.variant = variant
    constructor.default_size = variant.default_size
    return constructor


# Every named constructor, by name (`--model` of the command line).
MODELS = {variant.name: make_constructor(variant) for variant in VARIANTS}
# The networks of timm, whose checkpoints `lambda-keras convert-timm` reads.
TIMM_MODELS = {
    name: constructor
    for name, constructor in MODELS.items()
    if constructor.variant.timm_name
}
