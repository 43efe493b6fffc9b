"""Tests of the strategy choice (the multi-device runs are in
test_distributed.py)."""

import pytest
import tensorflow as tf

from lambda_keras.train import strategies
from lambda_keras.train.strategies import find_tpu
from lambda_keras.train.strategies import select_strategy


@pytest.fixture
def no_tpu(monkeypatch):
    for name in ("TPU_NAME", "COLAB_TPU_ADDR"):
        monkeypatch.delenv(name, raising=False)
    if find_tpu()[1]:
        pytest.fail("this machine has TPU devices: the CPU fallback cannot be tested")


@pytest.fixture
def tpu_vm(no_tpu, monkeypatch):
    """The device files of a TPU VM (Colab's TPU runtime, Cloud TPU VMs)."""
    devices = {"/dev/accel*": ["/dev/accel1", "/dev/accel0"], "/dev/vfio/[0-9]*": []}
    monkeypatch.setattr(strategies.glob, "glob", lambda pattern: devices[pattern])


class _Resolver:
    """Records the `tpu` TPUClusterResolver is given."""

    given = []

    def __init__(self, tpu=None):
        self.given.append(tpu)


@pytest.fixture
def fake_tpu_system(monkeypatch):
    """TensorFlow's TPU entry points, replaced: a TPU that initialises."""
    _Resolver.given = []
    monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", _Resolver)
    monkeypatch.setattr(tf.config, "experimental_connect_to_cluster", lambda r: None)
    monkeypatch.setattr(tf.tpu.experimental, "initialize_tpu_system", lambda r: None)

    class Strategy:
        num_replicas_in_sync = 8

        def __init__(self, resolver):
            assert isinstance(resolver, _Resolver)

    monkeypatch.setattr(tf.distribute, "TPUStrategy", Strategy)
    return _Resolver.given


def test_find_tpu_on_a_tpu_vm_says_local(tpu_vm):
    assert find_tpu() == ("local", "/dev/accel0, /dev/accel1")


def test_find_tpu_names_and_variables_take_the_cloud_route(no_tpu, monkeypatch):
    assert find_tpu("my-tpu") == ("my-tpu", "--tpu=my-tpu")
    assert find_tpu("grpc://10.0.0.2:8470")[0] == "grpc://10.0.0.2:8470"
    monkeypatch.setenv("COLAB_TPU_ADDR", "10.0.0.2:8470")
    assert find_tpu() == ("grpc://10.0.0.2:8470", "COLAB_TPU_ADDR=10.0.0.2:8470")
    # TPU_NAME is read by TPUClusterResolver itself.
    monkeypatch.setenv("TPU_NAME", "pod-a")
    assert find_tpu() == (None, "TPU_NAME=pod-a")
    assert find_tpu("my-tpu")[0] == "my-tpu"


def test_auto_on_a_tpu_vm_resolves_the_local_tpu(tpu_vm, fake_tpu_system):
    strategy, device, message = select_strategy("auto")
    assert fake_tpu_system == ["local"]
    assert device == "tpu" and message == "Training on TPU (8 cores) with TPUStrategy."


def test_a_named_tpu_is_resolved_by_its_name_on_a_tpu_vm(tpu_vm, fake_tpu_system):
    select_strategy("tpu", "my-tpu")
    assert fake_tpu_system == ["my-tpu"]


def test_auto_stops_when_attached_tpus_cannot_be_initialised(tpu_vm):
    # This CPU build of TensorFlow has no TPU kernels: the real failure of
    # TensorFlow without its TPU build on a TPU VM.
    with pytest.raises(ValueError) as error:
        select_strategy("auto")
    message = str(error.value)
    assert message.startswith(
        "A TPU is named or attached (/dev/accel0, /dev/accel1) but could not be "
        "initialised ("
    )
    assert "TensorFlow's TPU build" in message and "KERAS_BACKEND=jax" in message
    assert message.endswith("Received: --strategy=auto, --tpu=None")
    assert "\n" not in message


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


def test_a_tpu_name_that_cannot_be_looked_up_names_the_flag(no_tpu, monkeypatch):
    import urllib.error

    def unreachable(tpu=None):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(
        tf.distribute.cluster_resolver, "TPUClusterResolver", unreachable
    )
    with pytest.raises(ValueError) as error:
        select_strategy("auto", "bogus-tpu")
    assert "(--tpu=bogus-tpu) but could not be initialised (URLError" in str(
        error.value
    )
    assert str(error.value).endswith("Received: --strategy=auto, --tpu='bogus-tpu'")
