"""Command lines of `lambda-keras train` and `lambda-keras evaluate`."""

import argparse
import json
import sys

from lambda_keras.errors import UsageError
from lambda_keras.errors import run_reporting_errors
from lambda_keras.train.recipes import RECIPES
from lambda_keras.train.strategies import STRATEGIES


def add_train_arguments(parser):
    """Adds the arguments of `lambda-keras train` to `parser`."""
    from lambda_keras.applications import MODELS

    parser.add_argument("--model", required=True, choices=sorted(MODELS))
    parser.add_argument(
        "--dataset",
        required=True,
        help="folder of split/class/image files, or a tensorflow-datasets name",
    )
    parser.add_argument("--data-dir", help="tensorflow-datasets data directory")
    parser.add_argument("--model-dir", required=True, help="where outputs go")
    parser.add_argument("--weights", help="pretrained weights (name or file)")
    parser.add_argument("--recipe", default="paper350", choices=sorted(RECIPES))
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int, default=256, help="global batch")
    parser.add_argument(
        "--learning-rate", type=float, help="base rate per 256 examples"
    )
    parser.add_argument("--warmup-epochs", type=float)
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--label-smoothing", type=float)
    parser.add_argument("--ema-momentum", type=float, help="0 disables EMA")
    parser.add_argument("--bn-momentum", type=float)
    parser.add_argument("--randaugment-magnitude", type=float, help="0-30; 0: off")
    parser.add_argument("--dropout-rate", type=float)
    parser.add_argument("--stochastic-depth-rate", type=float)
    parser.add_argument("--architecture", choices=("hybrid", "vanilla", "timm"))
    parser.add_argument("--crop-area-min", type=float, help="random crop's min area")
    parser.add_argument("--crop-fraction", type=float, default=0.875)
    parser.add_argument("--strategy", default="auto", choices=STRATEGIES)
    parser.add_argument("--tpu", help="TPU name or grpc:// address")
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument(
        "--sync-batch-norm",
        action="store_true",
        help="batch statistics over all replicas (tensorflow backend)",
    )
    parser.add_argument(
        "--jit-compile",
        action=argparse.BooleanOptionalAction,
        help="compile the training step (XLA, jax.jit, torch.compile); by "
        "default chosen per backend and device, and printed at start",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps-per-epoch", type=int)
    parser.add_argument("--validation-steps", type=int)
    parser.add_argument(
        "--cache", action="store_true", help="keep decoded images in memory"
    )
    parser.add_argument(
        "--skip-unreadable",
        action="store_true",
        help="train without the image files that cannot be decoded (listed); "
        "by default they stop the run before its first step",
    )
    parser.add_argument(
        "--model-option",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="extra constructor argument, e.g. scope=7 (repeatable)",
    )
    parser.add_argument("--verbose", default="auto", help="auto, 0, 1 or 2")


def add_evaluate_arguments(parser):
    """Adds the arguments of `lambda-keras evaluate` to `parser`."""
    from lambda_keras.applications import MODELS

    parser.add_argument("--model", required=True, choices=sorted(MODELS))
    parser.add_argument("--weights", required=True, help="weights name or file")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data-dir")
    parser.add_argument("--split", help="defaults to the held-out split")
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--crop-fraction", type=float, default=0.875)
    parser.add_argument("--json", help="also write the results to this file")


def add_package_arguments(parser):
    """Adds the arguments of `lambda-keras package-checkpoint` to `parser`."""
    parser.add_argument("--model-dir", required=True, help="a finished run")
    parser.add_argument("--name", required=True, help="unique checkpoint name")
    parser.add_argument("--alias", required=True, help="short name for weights=")
    parser.add_argument(
        "--manifest",
        help="the checkpoints folder (or its manifest.json) to write into; "
        "defaults to the source tree's checkpoints/ (refused when installed)",
    )
    parser.add_argument("--dtype", default="float16", choices=("float16", "float32"))


def run_package(args):
    """Runs `lambda-keras package-checkpoint`; returns the exit code."""
    from lambda_keras.train.checkpoint import package_checkpoint

    entry = package_checkpoint(
        args.model_dir, args.name, args.alias, args.manifest, args.dtype
    )
    print(json.dumps(entry["metrics"]))
    return 0


def _model_options(pairs):
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--model-option must be KEY=JSON. Received: {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def run_train(args, argv=None):
    """Runs `lambda-keras train` for parsed `args`; returns the exit code."""
    from lambda_keras.train.callbacks import NonFiniteLossError
    from lambda_keras.train.trainer import TrainConfig
    from lambda_keras.train.trainer import train

    if args.verbose not in ("auto", "0", "1", "2"):
        raise UsageError(
            f"--verbose must be auto, 0, 1 or 2. Received: --verbose={args.verbose}"
        )
    verbose = args.verbose if args.verbose == "auto" else int(args.verbose)
    config = TrainConfig(
        **{
            key: value
            for key, value in vars(args).items()
            if key in TrainConfig.__dataclass_fields__ and key != "verbose"
        },
        verbose=verbose,
        model_options=_model_options(args.model_option),
    )
    try:
        train(config, argv=["lambda-keras", "train", *(argv or [])])
    except NonFiniteLossError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    return 0


def run_evaluate(args):
    """Runs `lambda-keras evaluate` for parsed `args`; returns the exit code."""
    from lambda_keras.train.trainer import evaluate

    results = evaluate(
        args.model,
        args.weights,
        args.dataset,
        split=args.split,
        data_dir=args.data_dir,
        image_size=args.image_size,
        batch_size=args.batch_size,
        crop_fraction=args.crop_fraction,
    )
    print(json.dumps(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    return 0


def main(argv=None):
    """`python -m lambda_keras.train`."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="python -m lambda_keras.train",
        description="Train a LambdaResNet with the paper's recipes.",
    )
    add_train_arguments(parser)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    return run_reporting_errors(
        "python -m lambda_keras.train",
        lambda: run_train(args, [a for a in argv if a != "--debug"]),
        debug=args.debug,
    )
