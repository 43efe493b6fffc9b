"""Backend-agnostic functions implementing the lambda layer's equations."""

from lambda_keras.ops.costs import CONV_COST_RATIO
from lambda_keras.ops.costs import CONV_FORMULATION_TABLE
from lambda_keras.ops.costs import CONV_FORMULATIONS
from lambda_keras.ops.costs import CUSTOM_GRADIENT_TABLE
from lambda_keras.ops.costs import DEFAULT_CONV_FORMULATION
from lambda_keras.ops.costs import IMPLEMENTATIONS
from lambda_keras.ops.costs import POSITION_METHODS
from lambda_keras.ops.costs import backend_platform
from lambda_keras.ops.costs import conv_formulation
from lambda_keras.ops.costs import position_contraction_order
from lambda_keras.ops.costs import position_costs
from lambda_keras.ops.costs import position_method
from lambda_keras.ops.costs import uses_custom_gradients
from lambda_keras.ops.costs import validate_formulation
from lambda_keras.ops.costs import validate_implementation
from lambda_keras.ops.lambda_interaction import KEY_NORMALIZATIONS
from lambda_keras.ops.lambda_interaction import add_lambdas
from lambda_keras.ops.lambda_interaction import apply_lambda
from lambda_keras.ops.lambda_interaction import content_lambda
from lambda_keras.ops.lambda_interaction import lambda_convolution
from lambda_keras.ops.lambda_interaction import lambda_interaction
from lambda_keras.ops.lambda_interaction import normalize_keys
from lambda_keras.ops.lambda_interaction import position_lambdas
from lambda_keras.ops.relative_positions import causal_kernel_mask
from lambda_keras.ops.relative_positions import causal_mask
from lambda_keras.ops.relative_positions import relative_position_embeddings

__all__ = [
    "CONV_COST_RATIO",
    "CONV_FORMULATIONS",
    "CONV_FORMULATION_TABLE",
    "CUSTOM_GRADIENT_TABLE",
    "DEFAULT_CONV_FORMULATION",
    "IMPLEMENTATIONS",
    "KEY_NORMALIZATIONS",
    "POSITION_METHODS",
    "add_lambdas",
    "apply_lambda",
    "backend_platform",
    "causal_kernel_mask",
    "causal_mask",
    "content_lambda",
    "conv_formulation",
    "lambda_convolution",
    "lambda_interaction",
    "normalize_keys",
    "position_contraction_order",
    "position_costs",
    "position_lambdas",
    "position_method",
    "relative_position_embeddings",
    "uses_custom_gradients",
    "validate_formulation",
    "validate_implementation",
]
