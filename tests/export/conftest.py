"""Session fixtures of the export tests: image files and an exported model."""

import pytest
from export_helpers import CLASS_NAMES
from export_helpers import PREPROCESSING
from export_helpers import compact_model
from export_helpers import encode
from PIL import Image

from lambda_keras.export import export_saved_model
from lambda_keras.preprocessing import sample_images


@pytest.fixture(scope="session")
def image_files(tmp_path_factory):
    """Real photographs: the three sample JPEGs, plus a non-square PNG with
    an alpha channel and a non-square greyscale JPEG made from them."""
    root = tmp_path_factory.mktemp("images")
    paths = list(sample_images())
    church = Image.open(paths[0])
    rgba = church.crop((0, 20, 224, 180)).convert("RGBA")
    (root / "church_wide.png").write_bytes(encode(rgba, "PNG"))
    grey = Image.open(paths[2]).crop((30, 0, 190, 224)).convert("L")
    (root / "tench_grey.jpg").write_bytes(encode(grey, "JPEG", quality=92))
    return [*paths, root / "church_wide.png", root / "tench_grey.jpg"]


@pytest.fixture(scope="session")
def encoded_images(image_files):
    return [path.read_bytes() for path in image_files]


@pytest.fixture(scope="session")
def compact_export(tmp_path_factory):
    """(model, base folder) of a LambdaResNet26Compact exported as version 1."""
    model = compact_model()
    base = tmp_path_factory.mktemp("compact") / "lambda_resnet26_compact"
    export_saved_model(
        model, base, 1, class_names=CLASS_NAMES, preprocessing=PREPROCESSING
    )
    return model, base
