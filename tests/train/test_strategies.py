"""Tests of the strategy choice (the multi-device runs are in
test_distributed.py)."""

import pytest
import tensorflow as tf

from lambda_keras.train.strategies import select_strategy
from lambda_keras.train.strategies import tpu_reachable


@pytest.fixture
def no_tpu(monkeypatch):
    for name in ("TPU_NAME", "COLAB_TPU_ADDR"):
        monkeypatch.delenv(name, raising=False)
    if tpu_reachable():
        pytest.fail("this machine has TPU devices: the CPU fallback cannot be tested")


def test_auto_falls_back_to_the_cpu_with_a_message(no_tpu):
    strategy, device, message = select_strategy("auto")
    assert isinstance(strategy, tf.distribute.OneDeviceStrategy)
    assert device == "cpu" and strategy.num_replicas_in_sync == 1
    assert message == "No TPU or GPU found: training on the CPU."


def test_tpu_that_cannot_be_reached(no_tpu):
    with pytest.raises(ValueError, match="No TPU could be reached"):
        select_strategy("tpu")


def test_multiworker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="Received: TF_CONFIG=None"):
        select_strategy("multiworker")


def test_unknown_strategy():
    with pytest.raises(ValueError, match="Received: 'horovod'"):
        select_strategy("horovod")


def test_one_device():
    strategy, device, message = select_strategy("one_device")
    assert isinstance(strategy, tf.distribute.OneDeviceStrategy)
    assert "OneDeviceStrategy" in message and device == "cpu"
