"""A small folder dataset (split/class/image) for the training tests.

Real Imagenette photographs are sliced from ../shared/data when that folder
is present; otherwise (a clean clone elsewhere) the dataset is made of crops
of the sample photographs shipped with the package, which show three of the
same Imagenette classes.
"""

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from quick_run import TINY_MODEL
from quick_run import tiny_test_net
from quick_run import train_quick

from lambda_keras.preprocessing import SAMPLE_DIR

SHARED_IMAGENETTE = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "data"
    / "imagenette2-224.tar"
)
# The sample images' Imagenette classes.
CLASSES = {"n01440764": "tench", "n03028079": "church", "n03888257": "parachute"}
PER_CLASS = {"train": 8, "val": 4}


def _from_shared_data(root):
    wanted = {
        (split, wnid): count for split, count in PER_CLASS.items() for wnid in CLASSES
    }
    with tarfile.open(SHARED_IMAGENETTE) as archive:
        for member in archive:
            parts = Path(member.name).parts
            key = tuple(parts[:2])
            if len(parts) != 3 or not member.isfile() or wanted.get(key, 0) <= 0:
                continue
            wanted[key] -= 1
            target = root.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.extractfile(member).read())
            if not any(wanted.values()):
                break


def _from_sample_images(root):
    rng = np.random.default_rng(0)
    for wnid, name in CLASSES.items():
        photo = Image.open(SAMPLE_DIR / f"{name}.jpg").convert("RGB")
        width, height = photo.size
        for split, count in PER_CLASS.items():
            folder = root / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                side = int(min(width, height) * rng.uniform(0.6, 1.0))
                left = int(rng.integers(0, width - side + 1))
                top = int(rng.integers(0, height - side + 1))
                crop = photo.crop((left, top, left + side, top + side))
                if rng.random() < 0.5:
                    crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                buffer = io.BytesIO()
                crop.resize((96, 96)).save(buffer, format="JPEG", quality=90)
                (folder / f"{index:03d}.jpg").write_bytes(buffer.getvalue())


@pytest.fixture(scope="session")
def folder_dataset(tmp_path_factory):
    """Path of a 3-class folder dataset: train/ (8 per class), val/ (4)."""
    root = tmp_path_factory.mktemp("folder_dataset")
    if SHARED_IMAGENETTE.is_file():
        _from_shared_data(root)
    else:
        _from_sample_images(root)
    return root


@pytest.fixture(scope="session")
def trained(folder_dataset, tmp_path_factory):
    """The model folder of a quick training run on `folder_dataset`."""
    model_dir = tmp_path_factory.mktemp("run")
    assert train_quick(folder_dataset, model_dir) == 0
    return model_dir


@pytest.fixture
def tiny_model(monkeypatch):
    """Makes `quick_run.TINY_MODEL` a `--model` for the test's duration."""
    from lambda_keras.applications import MODELS

    monkeypatch.setitem(MODELS, TINY_MODEL, tiny_test_net)
    return TINY_MODEL
