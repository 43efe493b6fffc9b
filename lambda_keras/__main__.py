"""Command line of lambda_keras: `python -m lambda_keras` or `lambda-keras`."""

import argparse
import json
import os
import sys

from lambda_keras.errors import UsageError
from lambda_keras.errors import one_line
from lambda_keras.errors import run_reporting_errors

DEBUG_HELP = "show the traceback of an error (for bug reports)"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, as every user error.

    Its sub-command parsers are of the same class.
    """

    def error(self, message):
        self.exit(
            2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n"
        )


def main(argv=None):
    from lambda_keras import __version__

    parser = _Parser(prog="lambda-keras", description="LambdaNetworks for Keras 3.")
    parser.add_argument(
        "--version", action="version", version=f"lambda-keras {__version__}"
    )
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    # --debug is accepted after the command too; SUPPRESS keeps a command's
    # parser from resetting the value given before it.
    debug_flag = argparse.ArgumentParser(add_help=False)
    debug_flag.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP
    )
    commands = parser.add_subparsers(dest="command")
    demo = commands.add_parser(
        "demo",
        parents=[debug_flag],
        help="run the lambda layer on a sample image (the default)",
    )
    demo.add_argument("--image", help="image file; defaults to a shipped sample")
    demo.add_argument(
        "--size", type=int, default=56, help="image side for the lambda layers"
    )
    demo.add_argument(
        "--model-size", type=int, default=224, help="image side for LambdaResNet50"
    )
    demo.add_argument("--json", help="also write the results to this JSON file")
    convert = commands.add_parser(
        "convert-timm",
        parents=[debug_flag],
        help="convert a timm LambdaResNet checkpoint to a Keras .weights.h5",
    )
    from lambda_keras.applications.variants import TIMM_MODELS

    convert.add_argument("--model", required=True, choices=sorted(TIMM_MODELS))
    convert.add_argument(
        "--checkpoint", required=True, help=".safetensors or .pth file from timm"
    )
    convert.add_argument("--output", required=True, help="the .weights.h5 to write")
    convert.add_argument("--input-size", type=int, default=256)
    from lambda_keras.train import cli as train_cli

    train_cli.add_train_arguments(
        commands.add_parser(
            "train", parents=[debug_flag], help="train a LambdaResNet (paper recipes)"
        )
    )
    train_cli.add_evaluate_arguments(
        commands.add_parser(
            "evaluate", parents=[debug_flag], help="top-1/top-5 of weights on a dataset"
        )
    )
    train_cli.add_package_arguments(
        commands.add_parser(
            "package-checkpoint",
            parents=[debug_flag],
            help="register a trained run's weights in checkpoints/ (float16)",
        )
    )
    from lambda_keras.export import cli as export_cli

    export_cli.add_export_arguments(
        commands.add_parser(
            "export",
            parents=[debug_flag],
            help="export a model for serving: SavedModel (TF Serving), TFLite, ONNX",
        )
    )
    export_cli.add_predict_arguments(
        commands.add_parser(
            "predict",
            parents=[debug_flag],
            help="top-5 classes of image files, by a SavedModel or a model",
        )
    )
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    return run_reporting_errors(
        f"lambda-keras {args.command or 'demo'}",
        lambda: _run(args, argv),
        debug=args.debug,
    )


def _run(args, argv):
    """Runs the parsed command; returns the exit code."""
    from lambda_keras.export import cli as export_cli
    from lambda_keras.train import cli as train_cli

    if args.command == "convert-timm":
        return _convert_timm(args)
    if args.command == "train":
        # The model card records the command as typed, without --debug.
        return train_cli.run_train(args, [a for a in argv if a != "--debug"][1:])
    if args.command == "evaluate":
        return train_cli.run_evaluate(args)
    if args.command == "package-checkpoint":
        return train_cli.run_package(args)
    if args.command == "export":
        return export_cli.run_export(args)
    if args.command == "predict":
        return export_cli.run_predict(args)

    if args.command in (None, "demo"):
        from lambda_keras.demo import run_demo

        json_path = getattr(args, "json", None)
        if json_path and not os.path.isdir(os.path.dirname(json_path) or "."):
            # Found out before the demo runs, not after.
            raise UsageError(
                "--json must be a file in an existing folder. "
                f"Received: --json={json_path}"
            )
        results = run_demo(
            image_path=getattr(args, "image", None),
            size=getattr(args, "size", 56),
            model_size=getattr(args, "model_size", 224),
        )
        if json_path:
            with open(json_path, "w", encoding="utf-8") as file:
                json.dump(results, file, indent=2)
    return 0


def _convert_timm(args):
    from lambda_keras.applications.variants import TIMM_MODELS
    from lambda_keras.convert import read_checkpoint
    from lambda_keras.convert.timm import load_timm_state_dict

    # The flags are checked, and the checkpoint read, before the model is
    # built: a mistake is reported in a second.
    if not args.output.endswith(".weights.h5"):
        raise UsageError(
            f"--output must end in .weights.h5. Received: --output={args.output}"
        )
    folder = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(folder):
        raise UsageError(
            f"--output must be in an existing folder; {folder} is not one. "
            f"Received: --output={args.output}"
        )
    if args.input_size < 1:
        raise UsageError(
            "--input-size must be a positive number of pixels. "
            f"Received: --input-size={args.input_size}"
        )
    if not os.path.isfile(args.checkpoint):
        raise UsageError(
            f"--checkpoint must be a checkpoint file; there is none at "
            f"{args.checkpoint}. Received: --checkpoint={args.checkpoint}"
        )

    def checkpoint_error(error):
        return UsageError(f"{error} Received: --checkpoint={args.checkpoint}")

    try:
        state_dict = read_checkpoint(args.checkpoint)
    except ValueError as error:
        raise checkpoint_error(error) from error
    size = args.input_size
    model = TIMM_MODELS[args.model](input_shape=(size, size, 3))
    try:
        report = load_timm_state_dict(model, state_dict)
    except ValueError as error:  # A checkpoint of another architecture.
        raise checkpoint_error(error) from error
    model.save_weights(args.output)
    print(
        f"{args.model}: loaded {len(report['loaded'])} tensors from "
        f"{args.checkpoint}, unused: {report['unused'] or 'none'}; wrote {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
