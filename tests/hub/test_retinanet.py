"""LambdaResNetBackbone as the image encoder of keras-hub's RetinaNet."""

import keras
import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

from lambda_keras.hub import LambdaResNetBackbone  # noqa: E402
from lambda_keras.hub import LambdaResNetImageConverter  # noqa: E402


def _detector(image_size):
    """RetinaNet (P3-P7) on a random LambdaResNet26Compact backbone."""
    encoder = LambdaResNetBackbone("LambdaResNet26Compact")
    backbone = keras_hub.models.RetinaNetBackbone(
        image_encoder=encoder, min_level=3, max_level=7, use_p5=False
    )
    converter = LambdaResNetImageConverter(
        image_size=image_size, scale=1 / 255, bounding_box_format="yxyx"
    )
    return keras_hub.models.RetinaNetObjectDetector(
        backbone=backbone,
        num_classes=2,
        bounding_box_format="yxyx",
        preprocessor=keras_hub.models.RetinaNetObjectDetectorPreprocessor(
            image_converter=converter
        ),
    )


def test_feature_pyramid_p3_to_p7():
    detector = _detector((64, 64))
    features = detector.backbone(np.zeros((1, 64, 64, 3), "float32"))
    assert sorted(features) == ["P3", "P4", "P5", "P6", "P7"]
    for level in range(3, 8):
        side = max(1, 64 // 2**level)
        assert tuple(features[f"P{level}"].shape) == (1, side, side, 256)


@pytest.mark.slow
def test_fit_predict_save_and_reload(tmp_path):
    detector = _detector((64, 64))
    images = np.random.default_rng(0).integers(0, 256, (2, 96, 96, 3), "uint8")
    boxes = np.array([[[12, 12, 60, 60], [30, 45, 90, 93]]] * 2, "float32")
    labels = np.array([[0, 1]] * 2, "int32")
    history = detector.fit(
        images, {"boxes": boxes, "labels": labels}, batch_size=2, epochs=2, verbose=0
    )
    assert np.isfinite(history.history["loss"]).all()

    detections = detector.predict(images, verbose=0)
    assert detections["boxes"].shape[::2] == (2, 4)
    assert detections["labels"].shape == detections["confidence"].shape
    path = tmp_path / "detector.keras"
    detector.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored.backbone.image_encoder) is LambdaResNetBackbone
    for key, value in restored.predict(images, verbose=0).items():
        np.testing.assert_allclose(value, detections[key], atol=1e-5)
