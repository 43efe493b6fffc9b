"""A quick training run shared by the training tests: 32 px, 2 epochs of 2
steps, the paper350 recipe (RandAugment, dropout, label smoothing, EMA) with
a short EMA."""

from lambda_keras.__main__ import main

MODEL = "LambdaResNet26Cifar"
QUICK = [
    "--model", MODEL, "--image-size", "32", "--batch-size", "6", "--epochs", "2",
    "--steps-per-epoch", "2", "--ema-momentum", "0.5", "--verbose", "0",
]  # fmt: skip


def train_quick(dataset, model_dir, *extra):
    """Runs `lambda-keras train` on `dataset`; returns the exit code."""
    return main(
        ["train", "--dataset", str(dataset), "--model-dir", str(model_dir)]
        + QUICK
        + list(extra)
    )
