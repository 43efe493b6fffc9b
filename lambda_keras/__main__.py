"""Command line of lambda_keras: `python -m lambda_keras` or `lambda-keras`."""

import argparse
import json
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="lambda-keras", description="LambdaNetworks for Keras 3."
    )
    commands = parser.add_subparsers(dest="command")
    demo = commands.add_parser(
        "demo", help="run the lambda layer on a sample image (the default)"
    )
    demo.add_argument("--image", help="image file; defaults to a shipped sample")
    demo.add_argument(
        "--size", type=int, default=56, help="image side for the lambda layers"
    )
    demo.add_argument(
        "--model-size", type=int, default=224, help="image side for LambdaResNet50"
    )
    demo.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    if args.command in (None, "demo"):
        from lambda_keras.demo import run_demo

        results = run_demo(
            image_path=getattr(args, "image", None),
            size=getattr(args, "size", 56),
            model_size=getattr(args, "model_size", 224),
        )
        if getattr(args, "json", None):
            with open(args.json, "w", encoding="utf-8") as file:
                json.dump(results, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
