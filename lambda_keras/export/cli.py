"""`lambda-keras export` and `lambda-keras predict`.

```bash
lambda-keras export --model LambdaResNet26T --weights imagenet \
    --out models/lambda_resnet26t --version 1
lambda-keras export --model LambdaResNet26T --weights imagenet \
    --out exported --format tflite            # or onnx
lambda-keras predict lambda_keras/sample_images/*.jpg \
    --saved-model models/lambda_resnet26t
lambda-keras predict photo.jpg --model LambdaResNet26T --weights imagenet
```

The model is built with `include_preprocessing=True` at the input size of
its weights (manifest `input_size`, or `--image-size`, or the
constructor's default size), so the exported signatures take RGB in 0-255.
"""

import inspect
import os
from pathlib import Path

from lambda_keras.errors import UsageError

FORMATS = ("savedmodel", "tflite", "onnx")


def add_model_arguments(parser, required=True):
    """The model options shared by `export` and `predict`."""
    from lambda_keras.applications import MODELS

    parser.add_argument(
        "--model", required=required, choices=sorted(MODELS), help="constructor name"
    )
    parser.add_argument(
        "--weights",
        required=required,
        help="registered weights (name or alias, e.g. 'imagenet'), a "
        ".weights.h5 file, or 'none' (random weights, to try the pipeline)",
    )
    parser.add_argument(
        "--classes", type=int, help="number of classes of a weights file"
    )
    parser.add_argument(
        "--class-names",
        help="class names: comma-separated, or a text file with one per line "
        "(default: from the weights' manifest entry, else class_0, class_1, ...)",
    )
    parser.add_argument(
        "--image-size", type=int, help="input side (default: the weights')"
    )
    parser.add_argument(
        "--crop-fraction",
        type=float,
        help="central crop of the resized image (default: the weights', else 0.875)",
    )
    parser.add_argument(
        "--resize", choices=("bilinear", "bicubic"), help="resize method"
    )
    parser.add_argument("--top-k", type=int, default=5, help="classes listed per image")


def add_export_arguments(parser):
    add_model_arguments(parser)
    parser.add_argument(
        "--out",
        required=True,
        help="output folder: the SavedModel base folder (versions inside) or "
        "the folder of model.tflite / model.onnx and labels.txt",
    )
    parser.add_argument(
        "--version", type=int, help="SavedModel version folder (default 1)"
    )
    parser.add_argument("--format", choices=FORMATS, default="savedmodel")
    parser.add_argument(
        "--int8",
        action="store_true",
        help="tflite: dynamic-range int8 weights (float activations)",
    )
    parser.add_argument(
        "--max-megapixels",
        type=float,
        default=100.0,
        help="largest image serving_default decodes",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing version"
    )


def add_predict_arguments(parser):
    parser.add_argument("images", nargs="+", help="JPEG or PNG files")
    parser.add_argument(
        "--saved-model",
        help="an exported SavedModel (base folder: its highest version)",
    )
    add_model_arguments(parser, required=False)


def build_model(args):
    """The Keras model and its `ServingMetadata` from the model options."""
    from lambda_keras.applications import MODELS
    from lambda_keras.export.metadata import registered_entry
    from lambda_keras.export.metadata import resolve_metadata

    constructor = MODELS[args.model]
    weights = None if args.weights.lower() == "none" else args.weights
    entry = registered_entry(args.model, weights)
    class_names = _class_names(args.class_names)
    if entry is not None:
        classes = entry["classes"]
    elif args.classes is not None:
        classes = args.classes
    elif class_names is not None:
        classes = len(class_names)
    else:
        classes = inspect.signature(constructor).parameters["classes"].default
    metadata = resolve_metadata(
        args.model,
        weights,
        classes,
        constructor.default_size,
        class_names=class_names,
        input_size=args.image_size,
        crop_fraction=args.crop_fraction,
        resize=args.resize,
    )
    size = metadata.preprocessing.input_size
    model = constructor(
        weights=weights,
        classes=classes,
        include_preprocessing=True,
        input_shape=(size, size, 3),
    )
    return model, metadata


def run_export(args):
    from lambda_keras.export.converters import export_onnx
    from lambda_keras.export.converters import export_tflite
    from lambda_keras.export.saved_model import export_saved_model

    if args.format != "savedmodel" and args.version is not None:
        raise UsageError(
            "--version names a SavedModel version folder; tflite and onnx "
            f"files are written to --out. Received: --version={args.version}"
        )
    if args.int8 and args.format != "tflite":
        raise UsageError(
            f"--int8 is for --format tflite. Received: --format={args.format}"
        )
    model, metadata = build_model(args)
    options = dict(preprocessing=metadata.preprocessing)
    if args.format == "savedmodel":
        path = export_saved_model(
            model,
            args.out,
            args.version or 1,
            class_names=metadata.class_names,
            top_k=args.top_k,
            max_pixels=int(args.max_megapixels * 1e6),
            overwrite=args.overwrite,
            **options,
        )
        size = _folder_size(path)
        print(
            f"{args.model} ({args.weights}): wrote the SavedModel {path} "
            f"({size / 1e6:.1f} MB) with the signatures serving_default "
            "(image_bytes), predict_images (images) and features (images)."
        )
        print(
            "Serve it with: tensorflow_model_server --rest_api_port=8501 "
            f"--model_name={Path(args.out).name} "
            f"--model_base_path={os.path.abspath(args.out)}"
        )
        return 0
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"model.{args.format}")
    if args.format == "tflite":
        quantize = "dynamic_range" if args.int8 else None
        size = export_tflite(model, path, quantize=quantize, **options)
    else:
        size = export_onnx(model, path, **options)
    labels = os.path.join(args.out, "labels.txt")
    with open(labels, "w", encoding="utf-8") as file:
        file.write("".join(f"{name}\n" for name in metadata.class_names))
    side = metadata.preprocessing.input_size
    print(
        f"{args.model} ({args.weights}): wrote {path} ({size / 1e6:.1f} MB; input "
        f"'images' (batch, {side}, {side}, 3) float32 RGB 0-255, outputs "
        f"'probabilities' and 'features') and {labels}."
    )
    return 0


def run_predict(args):
    from lambda_keras.export.predict import format_predictions
    from lambda_keras.export.predict import keras_signature
    from lambda_keras.export.predict import load_saved_model_signature
    from lambda_keras.export.predict import predict_files

    if (args.saved_model is None) == (args.model is None):
        raise UsageError(
            "Give either --saved-model DIR or --model NAME --weights W. "
            f"Received: --saved-model={args.saved_model} --model={args.model}"
        )
    if args.saved_model is not None:
        signature, source = load_saved_model_signature(args.saved_model)
    else:
        if args.weights is None:
            raise UsageError("--model needs --weights (a name, a file or 'none').")
        model, metadata = build_model(args)
        signature = keras_signature(
            model,
            class_names=metadata.class_names,
            preprocessing=metadata.preprocessing,
            top_k=args.top_k,
        )
        source = f"{args.model} ({args.weights})"
    predictions = predict_files(signature, args.images, top_k=args.top_k)
    print(f"Top-{args.top_k} classes by {source}:")
    for line in format_predictions(predictions):
        print(line)
    return 1 if any(prediction.error for prediction in predictions) else 0


def _class_names(value):
    if value is None:
        return None
    if os.path.isfile(value):
        with open(value, encoding="utf-8") as file:
            return [line.strip() for line in file if line.strip()]
    return [name.strip() for name in value.split(",")]


def _folder_size(path):
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )
