"""Compact LambdaResNets for small images, the models of our own checkpoints.

Hybrid LambdaResNet-26s (bottleneck blocks (2, 2, 2, 2), convolutions in c2
and c3, a lambda layer in the last block of c4 and in both blocks of c5) at
half the paper's widths, small enough to train on a CPU:

- `LambdaResNet26Compact`: the ResNet-D stem (/4), for 64-128 px images;
  `weights="imagenette"` loads our Imagenette checkpoint.
- `LambdaResNet26Cifar`: the small-image stem (/2), for 32 px images;
  `weights="cifar10"` loads our CIFAR-10 checkpoint.
"""

from lambda_keras.applications.lambda_resnet import named_constructor

COMPACT_DEPTHS = (2, 2, 2, 2)
COMPACT_OPTIONS = dict(
    architecture="hybrid", placement=("C", "C", 1, "L"), width_multiplier=0.5
)

LambdaResNet26Compact = named_constructor(
    "LambdaResNet26Compact",
    "lambda_resnet26_compact",
    COMPACT_DEPTHS,
    """Instantiates a half-width hybrid LambdaResNet-26 for 64-128 px images.

    Blocks (2, 2, 2, 2) at widths 32-64-128-256 (bottleneck outputs
    128-1024), ResNet-D stem, SE in c2 and c3, lambda layers in the last
    block of c4 and in c5, default input 64x64. Arguments as
    `keras.applications.ResNet50` plus `include_preprocessing`; every
    keyword argument of `LambdaResNet` may be overridden; `classes`
    defaults to 10. `weights="imagenette"` loads our checkpoint trained on Imagenette
    (10 classes; see checkpoints/README.md), which expects
    `include_preprocessing=True` or `preprocess_input`.

    Returns:
        A `keras.Model`.
    """,
    default_classes=10,
    default_size=64,
    **COMPACT_OPTIONS,
)

LambdaResNet26Cifar = named_constructor(
    "LambdaResNet26Cifar",
    "lambda_resnet26_cifar",
    COMPACT_DEPTHS,
    """Instantiates a half-width hybrid LambdaResNet-26 for 32 px images.

    As `LambdaResNet26Compact` with the small-image stem (two 3x3
    convolutions, the first with stride 2), so a 32x32 input reaches c5 at
    2x2; default input 32x32. `weights="cifar10"` loads our checkpoint
    trained on CIFAR-10 (10 classes; see checkpoints/README.md), which
    expects `include_preprocessing=True` or `preprocess_input`.

    Returns:
        A `keras.Model`.
    """,
    default_classes=10,
    default_size=32,
    stem="small_image",
    **COMPACT_OPTIONS,
)
