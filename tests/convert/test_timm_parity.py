"""timm's LambdaResNets converted to Keras give timm's outputs.

Each timm model gets random weights and batch-norm statistics measured on the
sample photographs (so activations keep a realistic scale), is saved as
.safetensors and .pth, read back with lambda_keras' readers (no torch), and
loaded into the Keras model; logits on real images must match timm's.
"""

import copy

import keras
import numpy as np
import pytest

from lambda_keras.applications import preprocess_input
from lambda_keras.applications.variants import TIMM_MODELS
from lambda_keras.convert import read_checkpoint
from lambda_keras.convert.timm import load_timm_state_dict
from lambda_keras.preprocessing import load_image
from lambda_keras.preprocessing import sample_images

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")
safetensors_torch = pytest.importorskip("safetensors.torch")


def images(size):
    photos = np.stack([load_image(path, size) for path in sample_images()])
    return preprocess_input(photos).astype("float32")


def to_torch(x):
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def random_timm_model(timm_name, size):
    torch.manual_seed(0)
    model = timm.create_model(timm_name, pretrained=False)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.8, 1.2, generator=generator)
                module.bias.uniform_(-0.1, 0.1, generator=generator)
                module.momentum = 1.0  # running statistics := batch statistics
        model.train()
        model(to_torch(images(size)))
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                # Three photos give noisy variances; keep them away from 0.
                module.running_var.add_(
                    torch.rand(module.running_var.shape, generator=generator) * 0.2
                    + 0.1
                )
    return model.eval()


def save(model, path):
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    if path.suffix == ".safetensors":
        safetensors_torch.save_file(state, str(path))
    else:
        torch.save(state, str(path))
    return path


CASES = [
    ("LambdaResNet26T", 256, ".safetensors"),
    ("LambdaResNet26T", 192, ".pth"),
    ("LambdaResNet50TS", 256, ".pth"),
    ("LambdaResNet50TS", 192, ".safetensors"),
    ("LambdaResNet26RPT256", 256, ".safetensors"),
]


@pytest.mark.slow
@pytest.mark.parametrize("model_name, size, suffix", CASES)
def test_logits_and_features_match_timm(model_name, size, suffix, tmp_path):
    timm_name = TIMM_MODELS[model_name].variant.timm_name
    reference = random_timm_model(timm_name, size)
    state_dict = read_checkpoint(save(reference, tmp_path / f"model{suffix}"))
    constructor = TIMM_MODELS[model_name]
    model = constructor(input_shape=(size, size, 3), classifier_activation=None)
    features = constructor(
        include_top=False, input_shape=(size, size, 3), pooling="avg"
    )

    report = load_timm_state_dict(model, state_dict)
    load_timm_state_dict(features, state_dict)

    assert report["unused"] == []
    x = images(size)
    with torch.no_grad():
        expected_logits = reference(to_torch(x)).numpy()
        expected_features = reference.forward_head(
            reference.forward_features(to_torch(x)), pre_logits=True
        ).numpy()
    logits = model.predict(x, verbose=0)
    difference = np.abs(logits - expected_logits).max()
    scale = np.abs(expected_logits).max()
    print(
        f"{model_name} {size}px {suffix}: max |logits - timm| = {difference:.2e}, "
        f"max |logit| {scale:.2f}"
    )
    assert difference <= 1e-4
    np.testing.assert_array_equal(
        np.argsort(-logits, axis=1)[:, :5], np.argsort(-expected_logits, axis=1)[:, :5]
    )
    np.testing.assert_allclose(
        features.predict(x, verbose=0), expected_features, rtol=1e-4, atol=1e-4
    )


@pytest.mark.slow
def test_conversion_is_exact_in_float64():
    keras.config.set_dtype_policy("float64")
    try:
        reference = copy.deepcopy(random_timm_model("lambda_resnet50ts", 192)).double()
        state_dict = {k: v.numpy() for k, v in reference.state_dict().items()}
        model = TIMM_MODELS["LambdaResNet50TS"](
            input_shape=(192, 192, 3), classifier_activation=None
        )
        load_timm_state_dict(model, state_dict)
        x = images(192).astype("float64")
        with torch.no_grad():
            expected = reference(to_torch(x)).numpy()
        difference = np.abs(model.predict(x, verbose=0) - expected).max()
    finally:
        keras.config.set_dtype_policy("float32")
    assert difference < 1e-9, difference


def test_errors_name_the_mismatch(tmp_path):
    reference = timm.create_model("lambda_resnet26t", pretrained=False)
    state_dict = {k: v.detach().numpy() for k, v in reference.state_dict().items()}
    model = TIMM_MODELS["LambdaResNet26T"](input_shape=(64, 64, 3))
    before = [w.numpy().copy() for w in model.weights]

    wrong = dict(state_dict, **{"stem.conv1.conv.weight": np.zeros((32, 3, 3, 3))})
    with pytest.raises(
        ValueError, match=r"layer 'stem_conv1'.*\(32, 3, 3, 3\).*\(3, 3, 3, 24\)"
    ):
        load_timm_state_dict(model, wrong)
    other = timm.create_model("lambda_resnet26rpt_256", pretrained=False)
    other_state = {k: v.detach().numpy() for k, v in other.state_dict().items()}
    with pytest.raises(ValueError, match=r"lacks 6 weight\(s\).*conv_lambda"):
        load_timm_state_dict(model, other_state)
    assert all(np.array_equal(w.numpy(), b) for w, b in zip(model.weights, before))

    extra = dict(state_dict, **{"head.extra.weight": np.zeros(3)})
    report = load_timm_state_dict(model, extra)
    assert report["unused"] == ["head.extra.weight"]


def test_other_class_count_keeps_the_new_head():
    reference = timm.create_model("lambda_resnet26t", pretrained=False)
    state_dict = {k: v.detach().numpy() for k, v in reference.state_dict().items()}
    model = TIMM_MODELS["LambdaResNet26T"](input_shape=(64, 64, 3), classes=10)
    head = model.get_layer("predictions").kernel.numpy().copy()

    report = load_timm_state_dict(model, state_dict)

    assert report["unused"] == ["head.fc.bias", "head.fc.weight"]
    np.testing.assert_array_equal(model.get_layer("predictions").kernel.numpy(), head)
    stem = state_dict["stem.conv1.conv.weight"].transpose(2, 3, 1, 0)
    np.testing.assert_array_equal(model.get_layer("stem_conv1").kernel.numpy(), stem)


@pytest.mark.parametrize("model_name", sorted(TIMM_MODELS))
def test_parameter_count_equals_timm(model_name):
    timm_name = TIMM_MODELS[model_name].variant.timm_name
    reference = timm.create_model(timm_name, pretrained=False)
    model = TIMM_MODELS[model_name]()
    ours = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert ours == sum(p.numel() for p in reference.parameters())
