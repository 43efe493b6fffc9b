"""Fixtures of the keras-hub tests: the sample photographs."""

import keras
import numpy as np
import pytest

from lambda_keras.preprocessing import sample_images


@pytest.fixture(scope="session")
def photos():
    """The three sample photographs (church, parachute, tench), uint8
    (3, 224, 224, 3)."""
    return np.stack(
        [np.array(keras.utils.load_img(path), "uint8") for path in sample_images()]
    )
