"""benchmarks.input_pipeline measures a real training pipeline against a
fixed batch (a tiny folder dataset made from the sample photographs)."""

import pytest
from PIL import Image

from benchmarks import input_pipeline
from lambda_keras.preprocessing import SAMPLE_DIR


@pytest.fixture
def tiny_folder(tmp_path):
    for index, name in enumerate(("tench", "church", "parachute")):
        folder = tmp_path / "train" / f"class_{index}"
        folder.mkdir(parents=True)
        photo = Image.open(SAMPLE_DIR / f"{name}.jpg").convert("RGB")
        for copy in range(4):
            photo.resize((40 + 8 * copy, 48)).save(folder / f"{copy}.jpg")
    return tmp_path


@pytest.mark.slow
def test_measure_reports_both_rates_and_their_overhead(tiny_folder, monkeypatch):
    monkeypatch.setitem(
        input_pipeline.CONFIGURATIONS,
        "tiny",
        (None, "LambdaResNet26Compact", 32, 4, 0.25),
    )
    result = input_pipeline.measure("tiny", tiny_folder, steps=2, rounds=1)
    assert result["examples"] == 12
    assert result["fixed_batch_images_per_second"] > 0
    assert result["pipeline_images_per_second"] > 0
    assert result["pipeline_alone_images_per_second"] > 0
    expected = 1 - (
        result["pipeline_images_per_second"] / result["fixed_batch_images_per_second"]
    )
    # The figures are rounded to 0.01 images/s and the overhead to 0.001.
    assert result["overhead"] == pytest.approx(expected, abs=0.01)
