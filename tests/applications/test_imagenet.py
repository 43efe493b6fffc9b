"""Tests for the offline ImageNet class index, preprocessing and decoding."""

import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest

from lambda_keras.applications import imagenet
from lambda_keras.preprocessing import IMAGENET_MEAN
from lambda_keras.preprocessing import IMAGENET_STD

MEAN = np.array(IMAGENET_MEAN)
STD = np.array(IMAGENET_STD)

JSON_PATH = Path(imagenet.__file__).with_name("imagenet_class_index.json")


@pytest.fixture(scope="module")
def class_index():
    with open(JSON_PATH, encoding="utf-8") as f:
        return json.load(f)


def _reference_preprocess(x, data_format):
    shape = (3,) if data_format == "channels_last" else (3, 1, 1)
    return (x / 255.0 - MEAN.reshape(shape)) / STD.reshape(shape)


# --- The shipped class index -------------------------------------------------


def test_class_index_has_keras_format(class_index):
    assert list(class_index) == [str(i) for i in range(1000)]
    for entry in class_index.values():
        assert isinstance(entry, list) and len(entry) == 2
        wnid, label = entry
        assert re.fullmatch(r"n\d{8}", wnid)
        assert label and " " not in label and "," not in label


def test_class_index_known_classes(class_index):
    assert class_index["0"] == ["n01440764", "tench"]
    assert class_index["2"] == ["n01484850", "great_white_shark"]
    assert class_index["217"] == ["n02102040", "English_springer"]
    assert class_index["497"] == ["n03028079", "church"]
    assert class_index["701"] == ["n03888257", "parachute"]
    assert class_index["999"] == ["n15075141", "toilet_tissue"]


def test_class_index_wnids_sorted_and_unique(class_index):
    wnids = [class_index[str(i)][0] for i in range(1000)]
    assert len(set(wnids)) == 1000
    assert wnids == sorted(wnids)


def test_class_names():
    names = imagenet.class_names()
    assert len(names) == 1000
    assert names[0] == "tench"
    assert names[217] == "English_springer"
    assert names[701] == "parachute"
    # Keras' index has two labels that each name two different synsets.
    assert names[134] == names[517] == "crane"
    assert names[638] == names[639] == "maillot"
    # A fresh list each call: mutating it does not touch the cache.
    names[0] = "changed"
    assert imagenet.class_names()[0] == "tench"


def test_class_index_in_package_data():
    setup_py = Path(__file__).resolve().parents[2] / "setup.py"
    assert '"applications/*.json"' in setup_py.read_text(encoding="utf-8")


# --- preprocess_input --------------------------------------------------------


@pytest.mark.parametrize(
    "data_format, shape",
    [
        ("channels_last", (2, 5, 4, 3)),
        ("channels_last", (5, 4, 3)),
        ("channels_first", (2, 3, 5, 4)),
        ("channels_first", (3, 5, 4)),
    ],
)
def test_preprocess_input_numpy(data_format, shape):
    x = np.random.default_rng(0).uniform(0, 255, shape).astype("float32")
    original = x.copy()
    y = imagenet.preprocess_input(x, data_format=data_format)
    assert isinstance(y, np.ndarray)
    assert y.shape == shape
    np.testing.assert_allclose(
        y, _reference_preprocess(original, data_format), rtol=1e-5, atol=1e-5
    )
    # The caller's array is left alone (Keras would divide it in place).
    np.testing.assert_array_equal(x, original)


def test_preprocess_input_matches_keras_torch_mode():
    x = np.random.default_rng(1).uniform(0, 255, (2, 6, 6, 3)).astype("float32")
    expected = keras.applications.imagenet_utils.preprocess_input(
        x.copy(), data_format="channels_last", mode="torch"
    )
    y = imagenet.preprocess_input(x, data_format="channels_last")
    np.testing.assert_array_equal(y, expected)


def test_preprocess_input_uint8_numpy():
    x = np.random.default_rng(2).integers(0, 256, (1, 4, 4, 3), dtype=np.uint8)
    y = imagenet.preprocess_input(x, data_format="channels_last")
    assert np.issubdtype(y.dtype, np.floating)
    np.testing.assert_allclose(
        y, _reference_preprocess(x.astype("float64"), "channels_last"), atol=1e-5
    )


def test_preprocess_input_extremes():
    black = np.zeros((1, 1, 1, 3), "float32")
    white = np.full((1, 1, 1, 3), 255.0, "float32")
    np.testing.assert_allclose(
        imagenet.preprocess_input(black, "channels_last").ravel(),
        -MEAN / STD,
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        imagenet.preprocess_input(white, "channels_last").ravel(),
        (1 - MEAN) / STD,
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "data_format, shape",
    [("channels_last", (2, 5, 4, 3)), ("channels_first", (2, 3, 5, 4))],
)
@pytest.mark.parametrize("dtype", ["float32", "int32", "uint8"])
def test_preprocess_input_tensor(data_format, shape, dtype):
    x = np.random.default_rng(3).integers(0, 256, shape).astype(dtype)
    tensor = keras.ops.convert_to_tensor(x)
    y = imagenet.preprocess_input(tensor, data_format=data_format)
    assert keras.ops.is_tensor(y)
    assert tuple(y.shape) == shape
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(y),
        _reference_preprocess(x.astype("float64"), data_format),
        rtol=1e-5,
        atol=1e-5,
    )
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(tensor), x)


def test_preprocess_input_default_data_format():
    assert keras.config.image_data_format() == "channels_last"
    x = np.random.default_rng(4).uniform(0, 255, (1, 2, 2, 3))
    np.testing.assert_allclose(
        imagenet.preprocess_input(x), _reference_preprocess(x, "channels_last")
    )


def test_preprocess_input_list():
    x = [[[[0.0, 127.5, 255.0]]]]
    y = imagenet.preprocess_input(x, data_format="channels_last")
    np.testing.assert_allclose(
        y, _reference_preprocess(np.array(x), "channels_last"), rtol=1e-6
    )


def test_preprocess_input_rejects_bad_data_format():
    with pytest.raises(ValueError, match="Received: data_format='nhwc'"):
        imagenet.preprocess_input(np.zeros((1, 2, 2, 3)), data_format="nhwc")


@pytest.mark.parametrize(
    "shape, data_format",
    [
        ((1, 2, 2, 4), "channels_last"),
        ((1, 2, 2, 3), "channels_first"),
        ((2, 3), "channels_last"),
        ((1, 1, 2, 2, 3), "channels_last"),
    ],
)
def test_preprocess_input_rejects_bad_shape(shape, data_format):
    with pytest.raises(ValueError, match=re.escape(f"Received: x.shape={shape}")):
        imagenet.preprocess_input(np.zeros(shape), data_format=data_format)


# --- decode_predictions ------------------------------------------------------


def test_decode_predictions_one_hot():
    preds = np.zeros((2, 1000), "float32")
    preds[0, 217] = 1.0
    preds[1, 701] = 1.0
    decoded = imagenet.decode_predictions(preds, top=1)
    assert decoded == [
        [("n02102040", "English_springer", 1.0)],
        [("n03888257", "parachute", 1.0)],
    ]


def test_decode_predictions_order_and_scores():
    preds = np.zeros((2, 1000), "float32")
    preds[0, [497, 0, 701, 2, 217, 999]] = [0.4, 0.25, 0.15, 0.1, 0.06, 0.04]
    preds[1, [0, 497]] = [0.3, 0.7]
    decoded = imagenet.decode_predictions(preds)
    assert len(decoded) == 2
    assert [len(result) for result in decoded] == [5, 5]
    first = decoded[0]
    assert [(wnid, label) for wnid, label, _ in first] == [
        ("n03028079", "church"),
        ("n01440764", "tench"),
        ("n03888257", "parachute"),
        ("n01484850", "great_white_shark"),
        ("n02102040", "English_springer"),
    ]
    np.testing.assert_allclose(
        [score for _, _, score in first], [0.4, 0.25, 0.15, 0.1, 0.06], rtol=1e-6
    )
    assert all(isinstance(score, float) for _, _, score in first)
    second = decoded[1]
    assert second[0][:2] == ("n03028079", "church")
    assert second[1][:2] == ("n01440764", "tench")
    assert second[0][2] == pytest.approx(0.7)
    assert second[1][2] == pytest.approx(0.3)
    # Ties (the remaining zeros) are broken by class index.
    assert [label for _, label, _ in second[2:]] == imagenet.class_names()[1:4]


def test_decode_predictions_top():
    preds = np.random.default_rng(5).random((3, 1000))
    decoded = imagenet.decode_predictions(preds, top=3)
    assert len(decoded) == 3
    for pred, result in zip(preds, decoded):
        assert len(result) == 3
        expected = np.argsort(pred)[::-1][:3]
        names = imagenet.class_names()
        assert [label for _, label, _ in result] == [names[i] for i in expected]
        scores = [score for _, _, score in result]
        assert scores == sorted(scores, reverse=True)
        np.testing.assert_allclose(scores, pred[expected])


def test_decode_predictions_matches_keras_contract():
    """Same tuples as Keras' function would give, with the class index."""
    preds = keras.ops.softmax(
        keras.ops.convert_to_tensor(np.random.default_rng(6).normal(size=(2, 1000)))
    )
    decoded = imagenet.decode_predictions(preds, top=4)
    preds = keras.ops.convert_to_numpy(preds)
    names = imagenet.class_names()
    for pred, result in zip(preds, decoded):
        top_indices = pred.argsort()[-4:][::-1]
        assert [(label, score) for _, label, score in result] == [
            (names[i], pytest.approx(pred[i])) for i in top_indices
        ]


def test_decode_predictions_rejects_bad_shape():
    with pytest.raises(ValueError, match=re.escape("Received: preds.shape=(2, 10)")):
        imagenet.decode_predictions(np.zeros((2, 10)))
    with pytest.raises(ValueError, match=re.escape("preds.shape=(1000,)")):
        imagenet.decode_predictions(np.zeros(1000))


@pytest.mark.parametrize("top", [0, -1, 2.0, True])
def test_decode_predictions_rejects_bad_top(top):
    with pytest.raises(ValueError, match="`top` must be a positive integer"):
        imagenet.decode_predictions(np.zeros((1, 1000)), top=top)
