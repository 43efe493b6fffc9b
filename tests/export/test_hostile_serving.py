"""What a hostile user sends to an exported model and to `lambda-keras
export` / `lambda-keras predict`: each is refused with an error naming the
image, file or flag, within a memory bound, and nothing is overwritten."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from export_helpers import CLASS_NAMES
from export_helpers import PREPROCESSING
from export_helpers import cli_error
from export_helpers import png
from export_helpers import png_claiming
from export_helpers import tiny_classifier

from lambda_keras.export import decode_images
from lambda_keras.export import export_onnx
from lambda_keras.export import export_saved_model
from lambda_keras.export import export_tflite
from lambda_keras.export.outputs import check_can_write
from lambda_keras.export.outputs import write_replacing
from lambda_keras.preprocessing import sample_images

NAMES = ",".join(CLASS_NAMES)
MODEL = ["--model", "LambdaResNet26Compact", "--weights", "none", "--classes", "3"]
# 200000x1 pixels, 661 bytes: at 64 pixels (shorter side 73) the resize
# would be 14600000x73, 12.8 GB of float32.
STRIP = png(200_000, 1)

# In a new process (whose peak memory is its own): loads the SavedModel,
# answers a good request, then the strip, and prints the growth of the
# peak resident memory. The address space is capped so that a resize that
# escapes the check fails the test instead of the machine.
MEASURE_PEAK = textwrap.dedent(
    """
    import resource
    import sys

    import tensorflow as tf

    saved_model, strip, good = sys.argv[1:]
    serve = tf.saved_model.load(saved_model).signatures["serving_default"]
    good = open(good, "rb").read()
    serve(image_bytes=tf.constant([good]))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, resource.RLIM_INFINITY))
    try:
        serve(image_bytes=tf.constant([good, open(strip, "rb").read()]))
        error = "no error"
    except tf.errors.InvalidArgumentError as raised:
        error = raised.message
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) / 1024)
    print(" ".join(error.split()))
    """
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(base folder, reloaded version 1) of a tiny classifier."""
    base = tmp_path_factory.mktemp("hostile") / "tiny"
    export_saved_model(
        tiny_classifier(), base, 1, class_names=CLASS_NAMES, preprocessing=PREPROCESSING
    )
    return base, tf.saved_model.load(str(base / "1"))


@pytest.fixture(scope="module")
def decode():
    """`decode_images` with a resize limit of 14,000 pixels, as a graph."""
    function = tf.function(
        lambda data: decode_images(data, PREPROCESSING, max_resized_pixels=14_000)
    )
    return lambda encoded: function(tf.constant(encoded, tf.string))


# Memory: decoded pixels and both passes of the resize, from the header.


@pytest.mark.slow
def test_an_elongated_image_is_refused_before_its_resize_costs_gigabytes(
    exported, tmp_path
):
    base, _ = exported
    strip, script = tmp_path / "strip.png", tmp_path / "measure_peak.py"
    strip.write_bytes(STRIP)
    script.write_text(MEASURE_PEAK)
    result = subprocess.run(
        [sys.executable, str(script), str(base / "1"), str(strip)]
        + [str(sample_images()[0])],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    growth, error = result.stdout.splitlines()[-2:]
    print(f"peak memory growth of the 200000x1 request: {float(growth):.1f} MB")
    assert float(growth) < 200
    assert (
        "image_bytes[1] is too elongated to resize: 200000x1 pixels resize to "
        "14600000x73 (the shorter side scaled to 73), 1065.8 megapixels in the "
        "larger of the two passes of the resize, over the limit of 25 megapixels"
    ) in error


def test_a_strip_is_refused_by_the_saved_model(exported):
    _, loaded = exported
    good = sample_images()[0].read_bytes()
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"image_bytes\[1\] is too elongated to resize: 200000x1 pixels",
    ):
        loaded.signatures["serving_default"](image_bytes=tf.constant([good, STRIP]))


@pytest.mark.parametrize(
    "width, height, refused",
    [
        # The shorter side becomes 73. Resized to 273x73 (19,929 pixels)
        # through a first pass of 150x73 (10,950).
        (150, 40, True),
        # Resized to 146x73 (10,658 pixels) through a first pass of 200x73
        # (14,600), which is what the limit refuses.
        (200, 100, True),
        # Resized to 138x73 (10,074) through a first pass of 190x73 (13,870).
        (190, 100, False),
    ],
)
def test_the_resize_limit_counts_both_passes(decode, width, height, refused):
    image = png(width, height)
    if not refused:
        assert decode([image]).shape == (1, 64, 64, 3)
        return
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=rf"image_bytes\[0\] is too elongated to resize: {width}x{height} pixels",
    ):
        decode([image])


@pytest.mark.parametrize(
    "data, message",
    [
        # 2**64 - 2**33 + 1 pixels: an int64 product is negative.
        (
            png_claiming(2**32 - 1, 2**32 - 1),
            r"image_bytes\[1\] is too large: 4294967295x4294967295 pixels",
        ),
        (png_claiming(0, 5), r"image_bytes\[1\] is corrupt: its header claims 0x5"),
    ],
    ids=["int64 overflow", "no width"],
)
def test_impossible_header_sizes_are_refused_from_the_header(decode, data, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        decode([png(8, 8), data])


# Empty batches, non-finite pixels, corrupt images.


CLASSIFICATION = {
    "probabilities": ((0, 3), tf.float32),
    "classes": ((0, 3), tf.int32),
    "scores": ((0, 3), tf.float32),
    "class_names": ((0, 3), tf.string),
}


@pytest.mark.parametrize(
    "signature, inputs, expected",
    [
        (
            "serving_default",
            {"image_bytes": tf.constant([], tf.string)},
            CLASSIFICATION,
        ),
        ("predict_images", {"images": tf.zeros((0, 64, 64, 3))}, CLASSIFICATION),
        (
            "features",
            {"images": tf.zeros((0, 64, 64, 3))},
            {"features": ((0, 4), tf.float32)},
        ),
    ],
)
def test_an_empty_batch_gets_empty_outputs(exported, signature, inputs, expected):
    _, loaded = exported
    outputs = loaded.signatures[signature](**inputs)
    shapes = {
        name: (tuple(value.shape), value.dtype) for name, value in outputs.items()
    }
    assert shapes == expected


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("signature", ["predict_images", "features"])
def test_non_finite_pixels_are_refused_naming_the_image(exported, signature, value):
    _, loaded = exported
    images = np.full((3, 64, 64, 3), 100, "float32")
    images[1, 5, 7, 2] = value
    images[2, 0, 0, 0] = value
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"images\[1\] has NaN or infinite values",
    ):
        loaded.signatures[signature](images=tf.constant(images))
    # The finite image alone is answered.
    outputs = loaded.signatures[signature](images=tf.constant(images[:1]))
    numbers = [value for value in outputs.values() if value.dtype != tf.string]
    assert all(np.isfinite(value.numpy()).all() for value in numbers)


def corrupt_images():
    jpeg = sample_images()[0].read_bytes()
    wide = png(300, 200)
    scrambled = jpeg[:1000] + bytes(b ^ 0x5A for b in jpeg[1000:3000]) + jpeg[3000:]
    return {
        "truncated JPEG": (jpeg[: len(jpeg) // 2], "a truncated or corrupt JPEG file"),
        "scrambled JPEG": (scrambled, "a truncated or corrupt JPEG file"),
        "JPEG cut in its header": (jpeg[:200], "a JPEG file whose header is truncated"),
        "truncated PNG": (wide[:60], "a truncated or corrupt PNG file"),
    }


@pytest.mark.parametrize("case", list(corrupt_images()))
def test_a_corrupt_image_is_named_by_its_index(exported, case):
    _, loaded = exported
    data, message = corrupt_images()[case]
    good = sample_images()[1].read_bytes()
    # The third of four, and a later bad one: the first is reported.
    batch = tf.constant([good, good, data, good, b""])
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=rf"image_bytes\[2\] is {message}"
    ):
        loaded.signatures["serving_default"](image_bytes=batch)


# The command line: one line on stderr naming the flag, exit code 2, before
# any model is built.

EXPORT = ["export", *MODEL]


@pytest.fixture
def files(tmp_path):
    """Outputs that exist already and a corrupt SavedModel, in `tmp_path`."""
    (tmp_path / "models" / "1").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("not a folder")
    (tmp_path / "exported").mkdir()
    (tmp_path / "exported" / "model.tflite").write_bytes(b"an earlier export")
    (tmp_path / "labels_only").mkdir()
    (tmp_path / "labels_only" / "labels.txt").write_text("a\nb\nc\n")
    (tmp_path / "corrupt" / "1").mkdir(parents=True)
    (tmp_path / "corrupt" / "1" / "saved_model.pb").write_bytes(b"not a protobuf")
    return tmp_path


@pytest.mark.parametrize(
    "arguments, expected",
    [
        # Outputs.
        (
            [*EXPORT, "--out", "{tmp}/models"],
            "{tmp}/models/1 already exists; pass overwrite=True (--overwrite) to "
            "replace it. Received: --out={tmp}/models --version=1",
        ),
        ([*EXPORT, "--out", "{tmp}/notes.txt"], "Received: --out={tmp}/notes.txt"),
        (
            [*EXPORT, "--out", "{tmp}/exported", "--format", "tflite"],
            "{tmp}/exported/model.tflite already exists",
        ),
        (
            [*EXPORT, "--out", "{tmp}/labels_only", "--format", "tflite"],
            "{tmp}/labels_only/labels.txt already exists",
        ),
        (
            [*EXPORT, "--out", "{tmp}/labels_only", "--format", "onnx"],
            "{tmp}/labels_only/labels.txt already exists",
        ),
        ([*EXPORT, "--out", "{tmp}/new", "--version", "0"], "Received: --version=0"),
        ([*EXPORT, "--out", "{tmp}/new", "--version", "-3"], "Received: --version=-3"),
        # Model options.
        ([*EXPORT, "--out", "{tmp}/new", "--top-k", "0"], "Received: --top-k=0"),
        ([*EXPORT, "--out", "{tmp}/new", "--top-k", "-1"], "Received: --top-k=-1"),
        (
            [*EXPORT, "--out", "{tmp}/new", "--top-k", "4"],
            "--top-k is more than the model's 3 classes (--classes). "
            "Received: --top-k=4",
        ),
        (
            [*EXPORT, "--out", "{tmp}/new", "--class-names", "a,b"],
            "--class-names gives 2 names but the model has 3 classes (--classes). "
            "Received: --class-names=a,b",
        ),
        (
            [*EXPORT, "--out", "{tmp}/new", "--class-names", "a,,b"],
            "--class-names has an empty name (class 1). Received: --class-names=a,,b",
        ),
        (
            [*EXPORT, "--out", "{tmp}/new", "--class-names", "a,b,a"],
            "--class-names repeats the names ['a']",
        ),
        (
            [*EXPORT, "--out", "{tmp}/new", "--class-names", "{tmp}/names.txt"],
            "Received: --class-names={tmp}/names.txt",
        ),
        (
            [*EXPORT, "--out", "{tmp}/new", "--image-size", "0"],
            "Received: --image-size=0",
        ),
        (
            [*EXPORT, "--out", "{tmp}/new", "--image-size", "-64"],
            "Received: --image-size=-64",
        ),
        (
            [*EXPORT, "--out", "{tmp}/new", "--image-size", "100000"],
            "--image-size must be from 32 to 1024 pixels",
        ),
        (
            [*EXPORT, "--out", "{tmp}/new", "--crop-fraction", "0"],
            "Received: --crop-fraction=0.0",
        ),
        (
            [*EXPORT, "--out", "{tmp}/new", "--crop-fraction", "1.5"],
            "Received: --crop-fraction=1.5",
        ),
        (
            [*EXPORT, "--out", "{tmp}/new", "--crop-fraction", "nan"],
            "Received: --crop-fraction=nan",
        ),
        (
            [*EXPORT, "--out", "{tmp}/new", "--max-megapixels", "0"],
            "Received: --max-megapixels=0.0",
        ),
        (
            [*EXPORT, "--out", "{tmp}/new", "--max-megapixels", "-5"],
            "Received: --max-megapixels=-5.0",
        ),
        (
            [*EXPORT, "--out", "{tmp}/new", "--max-megapixels", "nan"],
            "Received: --max-megapixels=nan",
        ),
        (
            [*EXPORT, "--out", "{tmp}/new", "--max-megapixels", "inf"],
            "Received: --max-megapixels=inf",
        ),
        (
            [*EXPORT, "--out", "{tmp}/new", "--max-resized-megapixels", "0"],
            "Received: --max-resized-megapixels=0.0",
        ),
        # The SavedModel of predict.
        (
            ["predict", "a.jpg", "--saved-model", "{tmp}/missing"],
            "{tmp}/missing holds no saved_model.pb and no numeric version folder "
            "with one. Received: --saved-model={tmp}/missing",
        ),
        (
            ["predict", "a.jpg", "--saved-model", "{tmp}/corrupt"],
            "{tmp}/corrupt/1 is not a readable SavedModel",
        ),
        (
            [
                "predict",
                "a.jpg",
                "--saved-model",
                "{tmp}/corrupt",
                "--image-size",
                "64",
            ],
            "--image-size is an option of --model",
        ),
        (
            ["predict", "a.jpg", *MODEL, "--crop-fraction", "2"],
            "Received: --crop-fraction=2.0",
        ),
    ],
)
def test_command_line_misuse_is_one_line_and_exit_code_2(
    files, capsys, arguments, expected
):
    arguments = [argument.format(tmp=files) for argument in arguments]
    line = cli_error(capsys, arguments)
    assert line.startswith(f"lambda-keras {arguments[0]}: error: ")
    assert expected.format(tmp=files) in line
    assert "Received: " in line
    # Refused before anything was written.
    assert not (files / "new").exists()
    assert (files / "exported" / "model.tflite").read_bytes() == b"an earlier export"


def test_predict_names_missing_and_corrupt_images(exported, tmp_path, capsys):
    base, _ = exported
    corrupt = tmp_path / "cut.jpg"
    corrupt.write_bytes(sample_images()[0].read_bytes()[:5000])
    good, missing = str(sample_images()[1]), str(tmp_path / "missing.jpg")
    arguments = ["predict", good, missing, str(corrupt), "--saved-model", str(base)]
    line = cli_error(capsys, arguments)
    assert line.startswith(
        f"lambda-keras predict: error: 2 of 3 images could not be classified: "
        f"{missing}: [Errno 2] No such file or directory"
    )
    assert f"{corrupt}: the file is a truncated or corrupt JPEG file" in line
    assert line.endswith(f"Received: images={[missing, str(corrupt)]}")
    # The good image is still classified.
    line = cli_error(capsys, ["predict", good, missing, "--saved-model", str(base)])
    assert "1 of 2 images" in line
    line = cli_error(
        capsys, ["predict", good, "--saved-model", str(base), "--top-k", "4"]
    )
    assert line.endswith(
        "--top-k is more than the 3 classes the SavedModel lists per image "
        "(export it with a larger --top-k). Received: --top-k=4"
    )


def test_predict_prints_the_good_images_before_the_error(exported, capsys):
    from lambda_keras.__main__ import main

    base, _ = exported
    good = str(sample_images()[1])
    assert main(["predict", good, "missing.jpg", "--saved-model", str(base)]) == 2
    printed = capsys.readouterr().out.splitlines()
    assert printed[:2] == [f"Top-3 classes by {base / '1'}:", f"{good}:"]
    assert printed[2].startswith("  1. ") and len(printed) == 7
    assert printed[-1].startswith("  error: [Errno 2] No such file")


# Outputs: one overwrite rule for every format.


def test_no_export_overwrites_an_existing_output(tmp_path):
    model = tiny_classifier()
    for export, name in ((export_tflite, "model.tflite"), (export_onnx, "model.onnx")):
        path = tmp_path / name
        path.write_bytes(b"an earlier export")
        with pytest.raises(FileExistsError, match=rf"Received: path='{path}'"):
            export(model, path, preprocessing=PREPROCESSING)
        assert path.read_bytes() == b"an earlier export"
    export_saved_model(model, tmp_path / "base", 1, preprocessing=PREPROCESSING)
    with pytest.raises(FileExistsError, match="Received: version=1"):
        export_saved_model(model, tmp_path / "base", 1, preprocessing=PREPROCESSING)
    with pytest.raises(NotADirectoryError, match="Received: export_dir="):
        export_saved_model(model, path, 1, preprocessing=PREPROCESSING)


def test_outputs_are_replaced_whole_or_not_at_all(tmp_path):
    path = tmp_path / "labels.txt"
    check_can_write(path, False, "path=labels.txt")  # nothing there yet
    path.write_text("old\n")
    with pytest.raises(FileExistsError, match="Received: --out=x"):
        check_can_write(path, False, "--out=x")
    check_can_write(path, True, "--out=x")

    def fails_midway(staged):
        with open(staged, "w") as file:
            file.write("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_replacing(path, fails_midway)
    assert path.read_text() == "old\n"
    write_replacing(path, lambda staged: Path(staged).write_text("new\n"))
    assert path.read_text() == "new\n"
    assert sorted(os.listdir(tmp_path)) == ["labels.txt"]  # no staging left
