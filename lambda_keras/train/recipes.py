"""Training recipes of Appendix D, as overridable defaults.

- `paper90`: "ImageNet 90 epochs training setup": vanilla ResNet
  architecture, SGD with momentum 0.9, learning rate 0.1 x B/256 reached
  linearly over 5 epochs then cosine decay, weight decay 1e-4, batch norm
  decay 0.9999, EMA 0.9999 of the trainable weights, label smoothing 0.1,
  random crops and flips at 224 px.
- `paper350`: "ImageNet 350 epochs training setup": the hybrid
  architecture (ResNet-D, SE, strided-conv stem), RandAugment magnitude 15,
  weight decay 4e-5, dropout 0.3 and, for networks deeper than ResNet-200,
  stochastic depth 0.2 (the named constructors' default).
- `finetune`: starting from pretrained weights: 10 epochs, a tenth of the
  learning rate, 1 warm-up epoch, no EMA.

bfloat16 on TPU is chosen by `--mixed-precision` (the default on TPU).
"""

import dataclasses


@dataclasses.dataclass
class Recipe:
    """Hyper-parameters of one training run.

    Attributes:
        epochs: training epochs.
        base_learning_rate: learning rate per 256 examples of global batch
            (the peak rate is base_learning_rate x batch / 256).
        warmup_epochs: epochs of linear warm-up from 0 to the peak rate.
        momentum: SGD momentum.
        weight_decay: decoupled weight decay of the kernels and embeddings
            (batch-norm parameters and biases are not decayed).
        label_smoothing: label smoothing of the cross-entropy.
        ema_momentum: momentum of the exponential moving average of the
            trainable weights used for evaluation and saved at the end; 0
            disables it.
        bn_momentum: batch-norm moving-average decay.
        randaugment_magnitude: RandAugment magnitude (0-30), 0 for none.
        dropout_rate: dropout before the classifier; None keeps the model's
            default.
        stochastic_depth_rate: None keeps the model's default.
        architecture: "vanilla" or "hybrid"; None keeps the model's default.
        image_size: training and evaluation input side; None keeps the
            model's default size.
        crop_area_min: smallest share of the image area of a random crop.
    """

    epochs: int
    base_learning_rate: float
    warmup_epochs: float
    momentum: float
    weight_decay: float
    label_smoothing: float
    ema_momentum: float
    bn_momentum: float
    randaugment_magnitude: float
    dropout_rate: float | None
    stochastic_depth_rate: float | None
    architecture: str | None
    image_size: int | None = None
    crop_area_min: float = 0.08

    def override(self, **values):
        """A copy with the given (not None) values replaced."""
        return dataclasses.replace(
            self, **{key: value for key, value in values.items() if value is not None}
        )

    def as_dict(self):
        return dataclasses.asdict(self)


RECIPES = {
    "paper90": Recipe(
        epochs=90,
        base_learning_rate=0.1,
        warmup_epochs=5,
        momentum=0.9,
        weight_decay=1e-4,
        label_smoothing=0.1,
        ema_momentum=0.9999,
        bn_momentum=0.9999,
        randaugment_magnitude=0,
        dropout_rate=0.0,
        stochastic_depth_rate=0.0,
        architecture="vanilla",
        image_size=224,
    ),
    "paper350": Recipe(
        epochs=350,
        base_learning_rate=0.1,
        warmup_epochs=5,
        momentum=0.9,
        weight_decay=4e-5,
        label_smoothing=0.1,
        ema_momentum=0.9999,
        bn_momentum=0.9999,
        randaugment_magnitude=15,
        dropout_rate=0.3,
        stochastic_depth_rate=None,
        architecture="hybrid",
    ),
    "finetune": Recipe(
        epochs=10,
        base_learning_rate=0.01,
        warmup_epochs=1,
        momentum=0.9,
        weight_decay=1e-5,
        label_smoothing=0.1,
        ema_momentum=0.0,
        bn_momentum=0.99,
        randaugment_magnitude=0,
        dropout_rate=None,
        stochastic_depth_rate=None,
        architecture=None,
    ),
}
