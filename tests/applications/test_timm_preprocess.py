"""timm_preprocess against timm's own evaluation transform."""

import numpy as np
import pytest
from PIL import Image

from lambda_keras.applications import timm_preprocess
from lambda_keras.demo import sample_images

timm = pytest.importorskip("timm")


@pytest.mark.parametrize(
    "input_size, crop_fraction", [(256, 0.94), (224, 0.95), (192, 1.0)]
)
@pytest.mark.parametrize("shape", [(224, 224), (300, 200), (180, 320)])
def test_matches_timm_eval_transform(input_size, crop_fraction, shape):
    image = Image.open(sample_images()[0]).convert("RGB").resize(shape)
    transform = timm.data.create_transform(
        input_size=(3, input_size, input_size),
        crop_pct=crop_fraction,
        interpolation="bicubic",
        is_training=False,
    )
    expected = transform(image).numpy().transpose(1, 2, 0)

    ours = timm_preprocess(image, input_size=input_size, crop_fraction=crop_fraction)

    assert ours.shape == (input_size, input_size, 3)
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="interpolation='lanczos5'"):
        timm_preprocess(sample_images()[0], interpolation="lanczos5")
    with pytest.raises(ValueError, match="crop_fraction=1.5"):
        timm_preprocess(sample_images()[0], crop_fraction=1.5)
