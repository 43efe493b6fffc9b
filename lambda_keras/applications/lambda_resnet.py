"""LambdaResNets (Bello, ICLR 2021, Sec. 5 and Appendix D).

ResNets whose 3x3 convolutions are replaced by lambda layers, in the style of
`keras.applications.ResNet50`. `LambdaResNet(depths, ...)` builds any
depth; the named networks (`LambdaResNet50` ... `LambdaResNet420` and the
others) are rows of `variants.VARIANTS`.

Two architectures:

- `"hybrid"` (default; Figure 2, Tables 5-6, the 350-epoch setup): ResNet-D
  (3-conv stem, average-pool shortcuts), the stem's max-pool replaced by a
  strided 3x3 convolution, squeeze-and-excitation (ratio 4) in the stages
  without lambda layers, lambda layers uniformly spaced in c4 and in all of
  c5, dropout before the classifier, stochastic depth for models deeper than
  ResNet-200.

  Appendix D says SE is used "in the residual blocks that do not employ
  lambda layers". The parameter counts of Table 13 pin this down to the
  *stages* without lambda layers: ResNet-101 + 3 lambda is 36.9M and
  ResNet-152 + 6 lambdas 51.4M with SE in c2 and c3 only (we count 36.85M
  and 51.36M), against 47.4M and 67.2M with SE also in the convolution
  blocks of c4.
- `"vanilla"`: ResNet-v1 bottlenecks without SE or ResNet-D (the 90-epoch
  setup of Tables 3, 11 and 12).

In both, a lambda layer replaces a block's 3x3 convolution; a strided block
downsamples with a 3x3 average pool of stride 2 after its lambda layer, and a
strided convolution block uses stride 2 in its 3x3 convolution. The last
BatchNorm of each bottleneck starts with gamma = 0.
"""

import keras
from keras import layers

from lambda_keras.layers import LambdaLayer
from lambda_keras.layers import PaddedMaxPooling2D
from lambda_keras.layers import RelativePositionEmbedding
from lambda_keras.layers import StochasticDepth
from lambda_keras.preprocessing import IMAGENET_MEAN
from lambda_keras.preprocessing import IMAGENET_STD
from lambda_keras.validation import fraction
from lambda_keras.validation import image_input_shape
from lambda_keras.validation import image_model_head
from lambda_keras.validation import non_negative_number
from lambda_keras.validation import preprocessing_channels
from lambda_keras.validation import validate_activation
from lambda_keras.weights import load_pretrained
from lambda_keras.weights import load_weights_file
from lambda_keras.weights import resolve_weights

STAGE_WIDTHS = (64, 128, 256, 512)
STEMS = ("resnet_v1", "resnet_d", "tiered", "small_image")
BOTTLENECK_EXPANSION = 4

# What distinguishes the architectures the builder makes: the stem, the
# shortcut of strided blocks, SE, the classifier's dropout, batch-norm
# epsilon, whether strided 3x3 convolutions pad symmetrically (PyTorch) or
# as TensorFlow's "same" does, and the lambda layers' extra options.
_VANILLA = dict(
    stem="resnet_v1",
    avg_pool_shortcut=False,
    squeeze_excite=False,
    dropout_rate=0.0,
    bn_epsilon=1.001e-5,
    symmetric_padding=False,
    lambda_options={},
    local_position_bias=False,
)
ARCHITECTURES = {
    "hybrid": dict(
        _VANILLA,
        stem="resnet_d",
        avg_pool_shortcut=True,
        squeeze_excite=True,
        dropout_rate=0.3,
    ),
    "vanilla": _VANILLA,
    # timm's ByobNet LambdaResNets (lambda_resnet26t, ...): 'tiered' stem,
    # strided 1x1 shortcuts, PyTorch padding and epsilon, 2x2 average pool
    # after strided lambda layers, bias on the (local) lambda convolution.
    "timm": dict(
        _VANILLA,
        stem="tiered",
        bn_epsilon=1e-5,
        symmetric_padding=True,
        lambda_options=dict(batch_norm_epsilon=1e-5, pool_size=2),
        local_position_bias=True,
    ),
}


def LambdaResNet(  # noqa: N802 (keras.applications naming)
    depths,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    include_preprocessing=False,
    name="lambda_resnet",
    *,
    architecture="hybrid",
    placement=None,
    activation="relu",
    dim_k=16,
    heads=4,
    dim_u=1,
    scope=23,
    use_content=True,
    use_position=True,
    shared_embeddings=False,
    implementation="auto",
    se_ratio=0.25,
    dropout_rate=None,
    stochastic_depth_rate=0.0,
    width_multiplier=1.0,
    stem=None,
    default_size=224,
    weights_registry_name=None,
):
    """Instantiates a LambdaResNet of any depth.

    Args:
        depths: residual blocks in each of the four stages, e.g.
            `(3, 4, 6, 3)` for a 50-layer network.
        include_top: whether to include the classifier on top.
        weights: None (random initialisation), the path to a weights file
            (Keras `.weights.h5`, or a timm checkpoint `.pth`/`.safetensors`
            of the "timm" architecture), or the name (or alias, e.g.
            "imagenet") of registered pretrained weights for
            `weights_registry_name`, which then also give the default
            `input_shape`.
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: optional (height, width, channels); defaults to
            (default_size, default_size, 3). With `include_top=False` the
            spatial size may be None for local-scope models.
        pooling: with `include_top=False`, None (4-D feature map), "avg" or
            "max" global pooling.
        classes: number of classes of the classifier.
        classifier_activation: activation of the classifier, or None for
            logits.
        include_preprocessing: whether the model starts by scaling RGB
            inputs in 0-255 to ImageNet mean/std units (as
            `preprocess_input` does); needs 3 input channels.
        name: model name.
        architecture: "hybrid" (paper's LambdaResNets), "vanilla"
            (ResNet-v1 bottlenecks, the controlled experiments) or "timm"
            (the layout of timm's LambdaResNets, for its weights).
        placement: per stage (c2, c3, c4, c5), "C" for convolutions, "L" for
            lambda layers in every block, a number of lambda layers spaced
            uniformly over the stage (ending at its last block), or a tuple
            of the indices of the blocks with a lambda layer. A string
            "C,C,L,L" or a sequence. Defaults to ("C", "C", 1, "L").
        activation: activation of the blocks and stem ("relu"; timm's
            50TS uses "silu").
        dim_k: query/key depth |k| of the lambda layers (Table 11).
        heads: number of queries |h| (Table 11).
        dim_u: intra-depth |u| (Tables 3, 11).
        scope: local scope of the position lambdas, or None for global
            (Table 9).
        use_content: content lambdas on (Table 8).
        use_position: position lambdas on (Table 8).
        shared_embeddings: one position embedding shared by all lambda
            layers (Table 4).
        implementation: the lambda layers' "auto", "einsum", "conv" or a
            formulation of the lambda convolution ("conv3d", "conv2d",
            "depthwise"; see `LambdaLayer`).
        se_ratio: squeeze-and-excitation hidden units as a fraction of the
            block's output channels, in the hybrid architecture's stages
            without lambda layers (paper: 1/4); 0 or None to disable.
        dropout_rate: dropout before the classifier; defaults to 0.3 for the
            hybrid architecture and 0 for the others.
        stochastic_depth_rate: drop probability of the last block's residual
            branch, increasing linearly from 0 over the blocks.
        width_multiplier: scales the channels of the stem and of every
            stage (1.0: the paper's 64-128-256-512 bottleneck widths), for
            compact models.
        stem: overrides the architecture's stem: "resnet_v1" (7x7 conv and
            max-pool, /4), "resnet_d" (3x3 convs, /4), "tiered" (timm, /4)
            or "small_image" (two 3x3 convs, the first strided, /2; for
            32-64 px inputs such as CIFAR).
        default_size: default input height and width.
        weights_registry_name: the architecture name under which named
            pretrained weights are registered in `checkpoints/manifest.json`
            (set by the named constructors, e.g. "LambdaResNet26T").

    Returns:
        A `keras.Model`.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"`architecture` must be one of {tuple(ARCHITECTURES)}. "
            f"Received: architecture={architecture!r}"
        )
    spec = ARCHITECTURES[architecture]
    if stem is not None:
        if stem not in STEMS:
            raise ValueError(
                f"`stem` must be None or one of {STEMS}. Received: stem={stem!r}"
            )
        spec = dict(spec, stem=stem)
    if (
        isinstance(width_multiplier, bool)
        or not isinstance(width_multiplier, (int, float))
        or not width_multiplier > 0
    ):
        raise ValueError(
            "`width_multiplier` must be a positive number. "
            f"Received: width_multiplier={width_multiplier!r}"
        )
    depths = _validate_depths(depths)
    lambda_blocks = _lambda_blocks(placement, depths)
    # Every argument is checked before the first layer is built.
    image_model_head(include_top, classes, pooling, classifier_activation, weights)
    validate_activation("activation", activation)
    if se_ratio is not None:
        non_negative_number("se_ratio", se_ratio)
    if dropout_rate is None:
        dropout_rate = spec["dropout_rate"]
    fraction("dropout_rate", dropout_rate)
    fraction("stochastic_depth_rate", stochastic_depth_rate, include_one=True)
    pretrained = resolve_weights(
        weights, weights_registry_name or "LambdaResNet", include_top, classes
    )
    if keras.config.image_data_format() != "channels_last":
        raise ValueError(
            "LambdaResNets support the 'channels_last' image data format only. "
            f"Received: image_data_format={keras.config.image_data_format()!r}"
        )
    if isinstance(pretrained, dict) and input_shape is None and input_tensor is None:
        # Registered weights default to the input size they were measured at.
        input_shape = (*pretrained["input_size"], 3)
    input_shape = image_input_shape(
        input_shape, default_size, min_size=32, require_static=include_top
    )
    if input_tensor is None:
        image_input = layers.Input(shape=input_shape)
    elif not keras.backend.is_keras_tensor(input_tensor):
        image_input = layers.Input(tensor=input_tensor, shape=input_shape)
    else:
        image_input = input_tensor
    preprocessing_channels(include_preprocessing, image_input.shape[1:])
    blocks = _BlockFactory(spec, activation, width_multiplier)

    x = image_input
    if include_preprocessing:
        x = layers.Rescaling(1.0 / 255, name="rescaling")(x)
        x = layers.Normalization(
            mean=IMAGENET_MEAN,
            variance=[std**2 for std in IMAGENET_STD],
            name="normalization",
        )(x)
    x = blocks.stem(x)

    lambda_options = dict(
        dim_k=dim_k,
        heads=heads,
        dim_u=dim_u,
        scope=scope,
        use_content=use_content,
        use_position=use_position,
        implementation=implementation,
        use_position_bias=(
            spec["local_position_bias"] and scope is not None and use_position
        ),
        **spec["lambda_options"],
    )
    shared_table = None
    total_blocks, block_index = sum(depths), 0
    for stage, (width, stage_depth) in enumerate(zip(STAGE_WIDTHS, depths)):
        width = blocks.scaled(width)
        for block in range(stage_depth):
            use_lambda = block in lambda_blocks[stage]
            if use_lambda and shared_embeddings and shared_table is None:
                # A global table must cover the first (largest) lambda input.
                spatial = tuple(x.shape[1:3])
                shared_table = RelativePositionEmbedding(
                    dim_k=dim_k,
                    dim_u=dim_u,
                    scope=scope,
                    max_size=spatial if scope is None and None not in spatial else None,
                    name="shared_position_embedding",
                )(x)
            squeeze_excite = spec["squeeze_excite"] and not lambda_blocks[stage]
            x = blocks.bottleneck(
                x,
                width=width,
                stride=2 if block == 0 and stage > 0 else 1,
                lambda_options=lambda_options if use_lambda else None,
                shared_table=shared_table,
                se_ratio=se_ratio if squeeze_excite else None,
                drop_rate=stochastic_depth_rate * block_index / total_blocks,
                name=f"c{stage + 2}_block{block + 1}",
            )
            block_index += 1

    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout_rate:
            x = layers.Dropout(dropout_rate, name="top_dropout")(x)
        # Under a mixed policy the classifier still computes in float32, so
        # its softmax and the losses and metrics that read it stay exact.
        policy = keras.config.dtype_policy()
        mixed = policy.compute_dtype in ("float16", "bfloat16")
        x = layers.Dense(
            classes,
            activation=classifier_activation,
            dtype="float32" if mixed else None,
            name="predictions",
        )(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)

    if input_tensor is not None:
        inputs = keras.utils.get_source_inputs(input_tensor)
    else:
        inputs = image_input
    model = keras.Model(inputs, x, name=name)
    if isinstance(pretrained, dict):
        load_pretrained(model, pretrained)
    elif pretrained is not None:
        load_weights_file(model, pretrained)
    return model


class _BlockFactory:
    """Builds the stem and bottlenecks of one architecture (see ARCHITECTURES)."""

    def __init__(self, spec, activation, width_multiplier=1.0):
        self.spec = spec
        self.activation = activation
        self.width_multiplier = width_multiplier

    def scaled(self, channels):
        """Channels times the width multiplier, at least 8."""
        return max(8, int(round(channels * self.width_multiplier)))

    def stem(self, x):
        """ResNet-v1 (7x7), ResNet-D (four 3x3), timm's tiered or the
        small-image stem."""
        if self.spec["stem"] == "resnet_v1":
            x = layers.ZeroPadding2D(3, name="stem_pad")(x)
            x = layers.Conv2D(
                self.scaled(64), 7, strides=2, use_bias=False, name="stem_conv"
            )(x)
            x = self.batch_norm_act(x, "stem_bn", "stem_act")
            return PaddedMaxPooling2D(3, strides=2, padding=1, name="stem_pool")(x)
        if self.spec["stem"] == "resnet_d":
            # ResNet-D's three 3x3 convolutions; the max-pool becomes a
            # strided convolution (Appendix D).
            convolutions = ((32, 2), (32, 1), (64, 1), (64, 2))
        elif self.spec["stem"] == "small_image":
            convolutions = ((32, 2), (64, 1))
        else:
            convolutions = ((24, 2), (32, 1), (64, 1))
        for index, (filters, stride) in enumerate(convolutions):
            filters = self.scaled(filters)
            x = self.conv(x, filters, 3, stride, f"stem_conv{index + 1}")
            x = self.batch_norm_act(x, f"stem_bn{index + 1}", f"stem_act{index + 1}")
        if self.spec["stem"] == "tiered":
            x = PaddedMaxPooling2D(3, strides=2, padding=1, name="stem_pool")(x)
        return x

    def bottleneck(
        self, x, width, stride, lambda_options, shared_table, se_ratio, drop_rate, name
    ):
        """Bottleneck block with a 3x3 convolution or, given
        `lambda_options`, a lambda layer."""
        channels = width * BOTTLENECK_EXPANSION
        shortcut = x
        if stride != 1 or x.shape[-1] != channels:
            avg_pool = self.spec["avg_pool_shortcut"] and stride != 1
            if avg_pool:
                shortcut = layers.AveragePooling2D(
                    2, strides=stride, padding="same", name=f"{name}_shortcut_pool"
                )(shortcut)
            shortcut = layers.Conv2D(
                channels,
                1,
                strides=1 if avg_pool else stride,
                use_bias=False,
                name=f"{name}_shortcut_conv",
            )(shortcut)
            shortcut = self.batch_norm(shortcut, f"{name}_shortcut_bn")

        y = layers.Conv2D(width, 1, use_bias=False, name=f"{name}_conv1")(x)
        y = self.batch_norm_act(y, f"{name}_bn1", f"{name}_act1")
        if lambda_options is not None:
            lambda_layer = LambdaLayer(
                filters=width, strides=stride, name=f"{name}_lambda", **lambda_options
            )
            if shared_table is None:
                y = lambda_layer(y)
            else:
                y = lambda_layer(y, position_embeddings=shared_table)
        else:
            y = self.conv(y, width, 3, stride, f"{name}_conv2")
        y = self.batch_norm_act(y, f"{name}_bn2", f"{name}_act2")
        y = layers.Conv2D(channels, 1, use_bias=False, name=f"{name}_conv3")(y)
        y = self.batch_norm(y, f"{name}_bn3", gamma_initializer="zeros")
        if se_ratio:
            y = self.squeeze_excite(y, se_ratio, f"{name}_se")
        if drop_rate:
            y = StochasticDepth(drop_rate, name=f"{name}_drop")(y)
        y = layers.Add(name=f"{name}_add")([shortcut, y])
        return layers.Activation(self.activation, name=f"{name}_out")(y)

    def conv(self, x, filters, kernel_size, stride, name):
        """A bias-free convolution; strided ones pad as the architecture does."""
        if stride > 1 and self.spec["symmetric_padding"]:
            x = layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
            padding = "valid"
        else:
            padding = "same"
        return layers.Conv2D(
            filters,
            kernel_size,
            strides=stride,
            padding=padding,
            use_bias=False,
            name=name,
        )(x)

    def squeeze_excite(self, x, ratio, name):
        channels = x.shape[-1]
        s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
        s = layers.Conv2D(
            max(1, int(channels * ratio)), 1, activation="relu", name=f"{name}_reduce"
        )(s)
        s = layers.Conv2D(channels, 1, activation="sigmoid", name=f"{name}_expand")(s)
        return layers.Multiply(name=f"{name}_excite")([x, s])

    def batch_norm(self, x, name, gamma_initializer="ones"):
        return layers.BatchNormalization(
            epsilon=self.spec["bn_epsilon"],
            gamma_initializer=gamma_initializer,
            name=name,
        )(x)

    def batch_norm_act(self, x, name, activation_name):
        x = self.batch_norm(x, name)
        return layers.Activation(self.activation, name=activation_name)(x)


def _validate_depths(depths):
    depths = tuple(depths) if isinstance(depths, (list, tuple)) else None
    if (
        depths is None
        or len(depths) != 4
        or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in depths)
    ):
        raise ValueError(
            "`depths` must be 4 positive integers (blocks in c2, c3, c4, c5). "
            f"Received: depths={depths!r}"
        )
    return depths


def _lambda_blocks(placement, depths):
    """Indices of the blocks with a lambda layer, one set per stage."""
    original = placement
    if placement is None:
        placement = ("C", "C", 1, "L")
    if isinstance(placement, str):
        placement = [p.strip() for p in placement.replace("->", ",").split(",")]
    entries = list(placement) if isinstance(placement, (list, tuple)) else []
    blocks = []
    for entry, depth in zip(entries, depths):
        if isinstance(entry, (list, tuple)):
            indices = set(entry)
            if not all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i < depth
                for i in indices
            ):
                blocks = None
                break
            blocks.append(indices)
            continue
        if isinstance(entry, str) and entry.upper() in ("C", "L"):
            count = depth if entry.upper() == "L" else 0
        elif isinstance(entry, str) and entry.isdigit():
            count = int(entry)
        elif isinstance(entry, int) and not isinstance(entry, bool):
            count = entry
        else:
            count = -1
        if not 0 <= count <= depth:
            blocks = None
            break
        # `count` blocks spaced uniformly, the last one at the stage's end.
        blocks.append({round((i + 1) * depth / count) - 1 for i in range(count)})
    if blocks is None or len(entries) != 4:
        raise ValueError(
            "`placement` must give, for each of the 4 stages, 'C' "
            "(convolutions), 'L' (lambda layers), the number of lambda "
            "layers (0 to the stage's blocks, here "
            f"{depths}) or a tuple of block indices, e.g. 'C,C,L,L' or "
            "('C', 'C', 3, (0, 2)). "
            f"Received: placement={original!r}"
        )
    return blocks
