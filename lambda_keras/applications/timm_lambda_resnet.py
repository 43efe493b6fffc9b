"""LambdaResNets with the layout of timm's `lambda_resnet*` models.

timm (PyTorch Image Models) publishes the only ImageNet-trained
LambdaResNets. These constructors build the same networks from the blocks of
`LambdaResNet` (architecture "timm": tiered stem, strided 1x1 shortcuts,
PyTorch padding and batch-norm epsilon, 2x2 average pooling after strided
lambda layers, lambda convolution with a bias) so that timm's weights load
into them with `lambda_keras.convert`.
"""

from lambda_keras.applications.lambda_resnet import named_constructor

# timm name, blocks per stage, blocks with a lambda layer per stage,
# activation and position scope (None: global relative embeddings).
TIMM_MODELS = {
    "LambdaResNet26T": dict(
        timm_name="lambda_resnet26t",
        depths=(2, 2, 2, 2),
        placement=("C", "C", (1,), "L"),
        activation="relu",
        scope=9,
    ),
    "LambdaResNet50TS": dict(
        timm_name="lambda_resnet50ts",
        depths=(3, 4, 6, 3),
        placement=("C", (3,), (1, 3, 5), (1,)),
        activation="silu",
        scope=9,
    ),
    "LambdaResNet26RPT256": dict(
        timm_name="lambda_resnet26rpt_256",
        depths=(2, 2, 2, 2),
        placement=("C", "C", (1,), "L"),
        activation="relu",
        scope=None,
    ),
}
DEFAULT_SIZE = 256


def _timm_constructor(constructor_name):
    config = TIMM_MODELS[constructor_name]
    scope = config["scope"]
    context = "global relative" if scope is None else f"{scope}x{scope} local"
    sizes = (
        "The global embeddings fix the input size to the one it is built at."
        if scope is None
        else "Runs at any input size of at least 32x32."
    )
    return named_constructor(
        constructor_name,
        config["timm_name"],
        config["depths"],
        f"""Instantiates timm's `{config["timm_name"]}` in Keras.

    Blocks {config["depths"]}, lambda layers at {config["placement"]},
    {config["activation"]} activations, {context} position lambdas, default
    input {DEFAULT_SIZE}x{DEFAULT_SIZE}. Arguments as
    `keras.applications.ResNet50` plus `include_preprocessing`;
    `weights="imagenet"` downloads timm's ImageNet weights (hash-checked,
    cached) and converts them. {sizes}

    Returns:
        A `keras.Model`.
    """,
        architecture="timm",
        placement=config["placement"],
        activation=config["activation"],
        scope=scope,
        default_size=DEFAULT_SIZE,
    )


LambdaResNet26T = _timm_constructor("LambdaResNet26T")
LambdaResNet50TS = _timm_constructor("LambdaResNet50TS")
LambdaResNet26RPT256 = _timm_constructor("LambdaResNet26RPT256")
