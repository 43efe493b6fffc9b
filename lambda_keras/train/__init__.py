"""Training: the paper's recipes, tf.data input, strategies and the
`lambda-keras train` / `lambda-keras evaluate` commands."""

from lambda_keras.train.recipes import RECIPES
from lambda_keras.train.recipes import Recipe

__all__ = ["RECIPES", "Recipe"]
