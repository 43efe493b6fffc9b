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

Every flag is checked, and every output checked not to exist (unless
`--overwrite`), before the model is built: a mistake is one line on stderr
and exit code 2 (`lambda_keras.errors`). `predict` classifies the files it
can and then reports the others the same way.
"""

import collections
import inspect
import math
import os
from pathlib import Path

from lambda_keras.errors import UsageError

FORMATS = ("savedmodel", "tflite", "onnx")
LABELS_FILE = "labels.txt"
DEFAULT_TOP_K = 5
# The LambdaResNets take inputs of at least 32x32; past 1024 pixels one
# request's activations take gigabytes.
IMAGE_SIZES = (32, 1024)
# The options that describe a Keras model, not a SavedModel (which has its
# own class names and preprocessing).
MODEL_OPTIONS = (
    "weights",
    "classes",
    "class_names",
    "image_size",
    "crop_fraction",
    "resize",
)


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
        "--image-size",
        type=int,
        help=f"input side, {IMAGE_SIZES[0]} to {IMAGE_SIZES[1]} "
        "(default: the weights')",
    )
    parser.add_argument(
        "--crop-fraction",
        type=float,
        help="central crop of the resized image, in (0, 1] "
        "(default: the weights', else 0.875)",
    )
    parser.add_argument(
        "--resize", choices=("bilinear", "bicubic"), help="resize method"
    )
    parser.add_argument(
        "--top-k",
        type=int,
        help=f"classes listed per image (default {DEFAULT_TOP_K}, or all "
        "classes when there are fewer)",
    )


def add_export_arguments(parser):
    add_model_arguments(parser)
    parser.add_argument(
        "--out",
        required=True,
        help="output folder: the SavedModel base folder (versions inside) or "
        f"the folder of model.tflite / model.onnx and {LABELS_FILE}",
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
        help="largest image serving_default decodes (from its header)",
    )
    parser.add_argument(
        "--max-resized-megapixels",
        type=float,
        default=25.0,
        help="largest image serving_default resizes to (the shorter side "
        "scaled to image size / crop fraction, the longer in proportion)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help=f"replace existing outputs (the version folder, or the model file "
        f"and {LABELS_FILE})",
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
        classes, source = entry["classes"], f"the manifest entry of {args.weights}"
    elif args.classes is not None:
        classes, source = args.classes, "--classes"
    elif class_names is not None:
        classes, source = len(class_names), "--class-names"
    else:
        classes = inspect.signature(constructor).parameters["classes"].default
        source = f"{args.model}'s default"
    if class_names is not None and len(class_names) != classes:
        raise UsageError(
            f"--class-names gives {len(class_names)} names but the model has "
            f"{classes} classes ({source}). "
            f"Received: --class-names={_shown(args.class_names)}"
        )
    if args.top_k is not None and args.top_k > classes:
        raise UsageError(
            f"--top-k is more than the model's {classes} classes ({source}). "
            f"Received: --top-k={args.top_k}"
        )
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
    from lambda_keras.export.outputs import check_can_write
    from lambda_keras.export.outputs import write_replacing
    from lambda_keras.export.saved_model import export_saved_model

    _check_model_arguments(args)
    _check_export_arguments(args)
    # Before the model is built: an existing output fails at once.
    for path, received in _export_outputs(args):
        check_can_write(path, args.overwrite, received)
    model, metadata = build_model(args)
    options = dict(preprocessing=metadata.preprocessing, overwrite=args.overwrite)
    if args.format == "savedmodel":
        path = export_saved_model(
            model,
            args.out,
            _version(args),
            class_names=metadata.class_names,
            top_k=_top_k(args, len(metadata.class_names)),
            max_pixels=_pixels(args.max_megapixels),
            max_resized_pixels=_pixels(args.max_resized_megapixels),
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
    (path, _), (labels, _) = _export_outputs(args)
    if args.format == "tflite":
        quantize = "dynamic_range" if args.int8 else None
        size = export_tflite(model, path, quantize=quantize, **options)
    else:
        size = export_onnx(model, path, **options)

    def write_labels(staged):
        with open(staged, "w", encoding="utf-8") as file:
            file.write("".join(f"{name}\n" for name in metadata.class_names))

    write_replacing(labels, write_labels)
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
    _check_model_arguments(args)
    if args.saved_model is not None:
        for name in MODEL_OPTIONS:
            if getattr(args, name) is not None:
                flag = "--" + name.replace("_", "-")
                raise UsageError(
                    f"{flag} is an option of --model: a SavedModel has its own "
                    f"classes and preprocessing. Received: {flag}="
                    f"{_shown(getattr(args, name))} with --saved-model"
                )
        signature, source = load_saved_model_signature(args.saved_model)
        top_k = signature.top_k if args.top_k is None else args.top_k
        if top_k > signature.top_k:
            raise UsageError(
                f"--top-k is more than the {signature.top_k} classes the "
                "SavedModel lists per image (export it with a larger --top-k). "
                f"Received: --top-k={top_k}"
            )
    else:
        if args.weights is None:
            raise UsageError(
                "--model needs --weights (a name, a file or 'none'). "
                f"Received: --model={args.model} without --weights"
            )
        model, metadata = build_model(args)
        top_k = _top_k(args, len(metadata.class_names))
        signature = keras_signature(
            model,
            class_names=metadata.class_names,
            preprocessing=metadata.preprocessing,
            top_k=top_k,
        )
        source = f"{args.model} ({args.weights})"
    predictions = predict_files(signature, args.images, top_k=top_k)
    print(f"Top-{top_k} classes by {source}:")
    for line in format_predictions(predictions):
        print(line)
    failed = [prediction for prediction in predictions if prediction.error]
    if failed:
        details = "; ".join(f"{item.image}: {item.error}" for item in failed)
        raise ValueError(
            f"{len(failed)} of {len(predictions)} images could not be "
            f"classified: {details}. "
            f"Received: images={[item.image for item in failed]}"
        )
    return 0


def _check_model_arguments(args):
    """The model options' values, before anything is built or loaded."""
    for flag, value in (("--top-k", args.top_k), ("--classes", args.classes)):
        if value is not None and value < 1:
            raise UsageError(
                f"{flag} must be a positive integer. Received: {flag}={value}"
            )
    smallest, largest = IMAGE_SIZES
    if args.image_size is not None and not smallest <= args.image_size <= largest:
        raise UsageError(
            f"--image-size must be from {smallest} to {largest} pixels. "
            f"Received: --image-size={args.image_size}"
        )
    if args.crop_fraction is not None and not 0 < args.crop_fraction <= 1:
        raise UsageError(
            "--crop-fraction must be in (0, 1]: the crop's share of the "
            f"resized shorter side. Received: --crop-fraction={args.crop_fraction}"
        )


def _check_export_arguments(args):
    if args.format != "savedmodel" and args.version is not None:
        raise UsageError(
            "--version names a SavedModel version folder; tflite and onnx "
            f"files are written to --out. Received: --version={args.version}"
        )
    if args.version is not None and args.version < 1:
        raise UsageError(
            "--version must be a positive integer (TF Serving serves the "
            f"highest numbered folder). Received: --version={args.version}"
        )
    if args.int8 and args.format != "tflite":
        raise UsageError(
            f"--int8 is for --format tflite. Received: --format={args.format}"
        )
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError(
            f"--out must be a folder, and {args.out} is a file. "
            f"Received: --out={args.out}"
        )
    for flag, value in (
        ("--max-megapixels", args.max_megapixels),
        ("--max-resized-megapixels", args.max_resized_megapixels),
    ):
        # At least one pixel; NaN and infinity are no limits.
        if not (math.isfinite(value) and _pixels(value) >= 1):
            raise UsageError(
                f"{flag} must be a positive number. Received: {flag}={value}"
            )


def _export_outputs(args):
    """[(path, the flags that chose it)] of what the export will write."""
    if args.format == "savedmodel":
        version = _version(args)
        return [
            (
                os.path.join(args.out, str(version)),
                f"--out={args.out} --version={version}",
            )
        ]
    return [
        (os.path.join(args.out, f"model.{args.format}"), f"--out={args.out}"),
        (os.path.join(args.out, LABELS_FILE), f"--out={args.out}"),
    ]


def _version(args):
    return 1 if args.version is None else args.version


def _top_k(args, classes):
    return min(DEFAULT_TOP_K, classes) if args.top_k is None else args.top_k


def _pixels(megapixels):
    return int(megapixels * 1e6)


def _class_names(value):
    """The names of `--class-names`: a file of one per line, or a,b,c."""
    if value is None:
        return None
    if os.path.isfile(value):
        with open(value, encoding="utf-8") as file:
            # Blank lines at the end are no names; blank lines between
            # names are (empty ones, rejected below).
            names = [line.strip() for line in file.read().rstrip().splitlines()]
    elif "," not in value and (value.endswith(".txt") or os.sep in value):
        raise FileNotFoundError(
            f"--class-names names a file that does not exist: {value} (give a "
            "text file of one name per line, or comma-separated names). "
            f"Received: --class-names={value}"
        )
    else:
        names = [name.strip() for name in value.split(",")]
    if "" in names:
        raise UsageError(
            f"--class-names has an empty name (class {names.index('')}). "
            f"Received: --class-names={_shown(value)}"
        )
    repeated = [name for name, count in collections.Counter(names).items() if count > 1]
    if repeated:
        raise UsageError(
            f"--class-names repeats the names {repeated[:5]}: each class needs "
            f"its own. Received: --class-names={_shown(value)}"
        )
    return names


def _shown(value, limit=80):
    """`value` for a message, cut to `limit` characters."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _folder_size(path):
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )
