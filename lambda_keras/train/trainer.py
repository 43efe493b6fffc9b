"""Training and evaluation runs: `lambda-keras train` and `lambda-keras evaluate`.

`train(config)` builds the model, optimizer and input inside the chosen
strategy's scope and fits it, writing into `config.model_dir`:

- `logs/`: TensorBoard summaries; `training_log.csv`: the learning curve;
- `backup/`: the resumable state of the last two completed epochs (weights
  and optimizer); a rerun of the same command resumes from it, and a rerun
  with another model, batch size, image size, recipe or classes is refused;
- `best.weights.h5` (best validation top-1), `final.weights.h5`,
  `model.keras` and `model_card.json`.

Every file is written atomically and in an order that lets a run killed at
any instant resume losing at most the epoch in progress (see
`lambda_keras.train.callbacks`).
"""

import dataclasses
import inspect
import json
import math
import os
import platform
import shlex
import tempfile
import time
import warnings

import keras

from lambda_keras._compat import flatten_layers
from lambda_keras.errors import UsageError
from lambda_keras.errors import one_line
from lambda_keras.extras import require
from lambda_keras.train import data
from lambda_keras.train.callbacks import BestWeights
from lambda_keras.train.callbacks import ResumableBackup
from lambda_keras.train.callbacks import TrainingLog
from lambda_keras.train.callbacks import fit_until_non_finite_loss
from lambda_keras.train.callbacks import remove_temporaries
from lambda_keras.train.callbacks import save_model_weights
from lambda_keras.train.callbacks import write_run_file
from lambda_keras.train.callbacks import write_run_json
from lambda_keras.train.compilation import choose_jit_compile
from lambda_keras.train.recipes import RECIPES
from lambda_keras.train.strategies import select_strategy


@dataclasses.dataclass(frozen=True)
class Interval:
    """The values a numeric flag accepts: from `low` to `high`, each end
    included unless open (NaN is never inside)."""

    low: float
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value):
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return bool(above and below)

    def __str__(self):
        if self.high == math.inf:
            return f"{'greater than' if self.low_open else 'at least'} {self.low:g}"
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        return f"in {left}{self.low:g}, {self.high:g}{right}"


_FRACTION = Interval(0, 1, low_open=True)  # (0, 1]
_RATE = Interval(0, 1, high_open=True)  # [0, 1)
# The numeric flags of `lambda-keras train` and `evaluate`, by field name.
FLAG_RANGES = {
    "image_size": Interval(1),
    "epochs": Interval(1),
    "batch_size": Interval(1),
    "steps_per_epoch": Interval(1),
    "validation_steps": Interval(1),
    # Infinity is allowed: it makes a run fail fast (the NaN-loss tests).
    "learning_rate": Interval(0, low_open=True),
    "warmup_epochs": Interval(0),  # and at most the epochs (resolve_recipe)
    "weight_decay": Interval(0),
    "label_smoothing": _RATE,
    "ema_momentum": _RATE,
    "bn_momentum": _RATE,
    "randaugment_magnitude": Interval(0, 30),
    "dropout_rate": _RATE,
    "stochastic_depth_rate": _RATE,
    "crop_area_min": _FRACTION,
    "crop_fraction": _FRACTION,
}


def check_flag(key, value, interval=None):
    """Raises for a flag's value outside its range (None: not given).

    Args:
        key: the field name, e.g. "batch_size" (the flag `--batch-size`).
        value: the value given.
        interval: the range; defaults to `FLAG_RANGES[key]`.

    Raises:
        UsageError: naming the flag, its range and the value.
    """
    interval = interval or FLAG_RANGES[key]
    if value is not None and value not in interval:
        flag = "--" + key.replace("_", "-")
        raise UsageError(f"{flag} must be {interval}. Received: {flag}={value}")


@dataclasses.dataclass
class TrainConfig:
    """What `lambda-keras train` was asked to do (see `--help`)."""

    model: str
    dataset: str
    model_dir: str
    recipe: str = "paper350"
    weights: str | None = None
    data_dir: str | None = None
    image_size: int | None = None
    epochs: int | None = None
    batch_size: int = 256
    learning_rate: float | None = None
    warmup_epochs: float | None = None
    weight_decay: float | None = None
    label_smoothing: float | None = None
    ema_momentum: float | None = None
    bn_momentum: float | None = None
    randaugment_magnitude: float | None = None
    dropout_rate: float | None = None
    stochastic_depth_rate: float | None = None
    architecture: str | None = None
    crop_area_min: float | None = None
    crop_fraction: float = 0.875
    strategy: str = "auto"
    tpu: str | None = None
    mixed_precision: bool = False
    sync_batch_norm: bool = False
    jit_compile: bool | None = None
    seed: int = 0
    steps_per_epoch: int | None = None
    validation_steps: int | None = None
    cache: bool = False
    skip_unreadable: bool = False
    verbose: str | int = "auto"
    model_options: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for key in FLAG_RANGES:
            check_flag(key, getattr(self, key))


def constructor(name):
    """The model constructor called `name` (e.g. "LambdaResNet50")."""
    from lambda_keras.applications import MODELS

    if name not in MODELS:
        raise ValueError(
            f"Unknown model {name!r}: --model must be one of {sorted(MODELS)}. "
            f"Received: --model={name}"
        )
    return MODELS[name]


def model_options():
    """The keyword arguments `--model-option` may set: the architecture
    options of `LambdaResNet`, which every named constructor passes on (the
    trainer sets the others, and the input size is `--image-size`)."""
    from lambda_keras.applications.lambda_resnet import LambdaResNet

    parameters = inspect.signature(LambdaResNet).parameters.values()
    return sorted(
        parameter.name
        for parameter in parameters
        if parameter.kind is parameter.KEYWORD_ONLY
        and parameter.name not in ("default_size", "weights_registry_name")
    )


def check_model_options(name, options):
    """Raises for a `--model-option` key that `name`'s constructor lacks."""
    accepted = model_options()
    for key, value in options.items():
        if key not in accepted:
            raise UsageError(
                f"Unknown --model-option key {key!r}: the options of {name} are "
                f"{accepted}. Received: --model-option={key}={json.dumps(value)}"
            )


def resolve_recipe(config):
    """The recipe named by `config.recipe` with the flags' overrides."""
    if config.recipe not in RECIPES:
        raise ValueError(
            f"--recipe must be one of {sorted(RECIPES)}. Received: {config.recipe!r}"
        )
    recipe = RECIPES[config.recipe].override(
        epochs=config.epochs,
        base_learning_rate=config.learning_rate,
        warmup_epochs=config.warmup_epochs,
        weight_decay=config.weight_decay,
        label_smoothing=config.label_smoothing,
        ema_momentum=config.ema_momentum,
        bn_momentum=config.bn_momentum,
        randaugment_magnitude=config.randaugment_magnitude,
        dropout_rate=config.dropout_rate,
        stochastic_depth_rate=config.stochastic_depth_rate,
        architecture=config.architecture,
        image_size=config.image_size,
        crop_area_min=config.crop_area_min,
    )
    check_flag("warmup_epochs", config.warmup_epochs, Interval(0, recipe.epochs))
    return recipe


def build_model(
    name,
    classes,
    image_size,
    weights=None,
    recipe=None,
    new_classifier=True,
    **options,
):
    """Builds `name` for `classes` classes at `image_size`, taking 0-255 RGB.

    With named or `.weights.h5` weights made for another number of classes
    (and `new_classifier`), every layer but the classifier is loaded and
    the classifier starts anew (fine-tuning); the layers left out are
    printed.

    Args:
        name: a constructor name.
        classes: classes of the classifier.
        image_size: input side.
        weights: None, a weights file or the name of pretrained weights.
        recipe: a `Recipe` whose architecture, dropout and stochastic depth
            (when set) are passed to the constructor.
        new_classifier: whether weights with another classifier may be
            fine-tuned; False (evaluation) raises for them.
        **options: other keyword arguments of the constructor.

    Returns:
        A `keras.Model` with softmax outputs.

    Raises:
        ValueError: weights that do not fit the model.
    """
    from lambda_keras.weights import resolve_weights

    build = constructor(name)
    if recipe is not None:
        for key in ("architecture", "dropout_rate", "stochastic_depth_rate"):
            value = getattr(recipe, key)
            if value is not None:
                options.setdefault(key, value)
    shape = (image_size, image_size, 3)
    pretrained = resolve_weights(weights, name, include_top=False)
    if isinstance(pretrained, str) and pretrained.endswith(".weights.h5"):
        model = build(
            input_shape=shape, classes=classes, include_preprocessing=True, **options
        )
        _load_weights_but_classifier(model, pretrained, new_classifier)
        return model
    pretrained_classes = (
        pretrained["classes"] if isinstance(pretrained, dict) else classes
    )
    if pretrained_classes != classes and not new_classifier:
        raise ValueError(
            f"The weights {weights!r} classify {pretrained_classes} classes, the "
            f"data {classes}: evaluating needs the classifier they were trained "
            f"for. Received: --weights={weights}"
        )
    model = build(
        weights=weights,
        input_shape=shape,
        classes=pretrained_classes,
        include_preprocessing=True,
        **options,
    )
    if pretrained_classes == classes:
        return model
    # A new classifier on the pretrained features (after the dropout, if any),
    # computing in the dtype the constructor chose for it (float32 when mixed).
    classifier = model.get_layer("predictions")
    outputs = keras.layers.Dense(
        classes,
        activation="softmax",
        dtype=classifier.dtype_policy,
        name="predictions",
    )(classifier.input)
    return keras.Model(model.inputs, outputs, name=model.name)


def _load_weights_but_classifier(model, path, new_classifier):
    """Loads a `.weights.h5` file into `model`; one whose classifier has
    another number of classes (and `new_classifier`) is loaded into every
    layer but the classifier, the others must fit exactly."""
    try:
        model.load_weights(path)
        return
    except ValueError as error:
        mismatch = error
    if not new_classifier:
        raise ValueError(
            f"The weights file {path} does not fit {model.name} with "
            f"{model.output.shape[-1]} classes ({one_line(mismatch)[:300]}). "
            f"Received: --weights={path}"
        ) from mismatch
    # The features end where the classifier's pooling starts: the same
    # layers, in the same order, as the network the file was saved from.
    features = keras.Model(model.inputs, model.get_layer("avg_pool").input)
    try:
        with warnings.catch_warnings():
            # Keras warns that this sub-model's own container has no group in
            # the file; every layer's weights are loaded all the same.
            warnings.filterwarnings("ignore", "Skipping nested container")
            features.load_weights(path)
    except ValueError as error:
        raise ValueError(
            f"The weights file {path} does not fit {model.name}: its layers "
            f"differ, not only its classifier ({one_line(error)[:300]}). "
            f"Received: --weights={path}"
        ) from error
    loaded = {id(layer) for layer in features.layers}
    skipped = [
        layer.name
        for layer in model.layers
        if layer.weights and id(layer) not in loaded
    ]
    print(
        f"Fine-tuning from {path}: loaded every layer but {', '.join(skipped)} "
        f"(the file's classifier has another number of classes); "
        f"{', '.join(skipped)} starts from random weights.",
        flush=True,
    )


def _configure_batch_norm(model, momentum, synchronized):
    """Sets the moving-average decay of every batch norm (the lambda layers'
    too) and, with `synchronized`, computes batch statistics over all
    replicas (TensorFlow backend)."""
    for layer in flatten_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum
            layer.synchronized = synchronized


def make_optimizer(recipe, batch_size, steps_per_epoch, model):
    """The recipe's SGD: linear warm-up to base rate x batch / 256, cosine
    decay over the run, decoupled weight decay of kernels and embeddings
    only, and EMA when the recipe has it (`lambda-keras train`'s optimizer,
    also used by `benchmarks.input_pipeline`)."""
    peak = recipe.base_learning_rate * batch_size / 256
    total_steps = max(1, recipe.epochs * steps_per_epoch)
    warmup_steps = min(total_steps - 1, int(recipe.warmup_epochs * steps_per_epoch))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else peak,
        decay_steps=max(1, total_steps - warmup_steps),
        warmup_target=peak if warmup_steps else None,
        warmup_steps=warmup_steps,
    )
    optimizer = keras.optimizers.SGD(
        learning_rate=schedule,
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay or None,
        use_ema=recipe.ema_momentum > 0,
        ema_momentum=recipe.ema_momentum or 0.99,
    )
    # Decay kernels and embeddings, not batch-norm scales, shifts or biases.
    optimizer.exclude_from_weight_decay(
        var_list=[v for v in model.trainable_variables if len(v.shape) <= 1]
    )
    return optimizer


def compile_model(model, optimizer=None, label_smoothing=0.0, jit_compile=False):
    """Compiles with the label-smoothed loss and top-1/top-5 accuracy."""
    model.compile(
        optimizer=optimizer or "sgd",
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        metrics=[
            keras.metrics.CategoricalAccuracy(name="top1"),
            keras.metrics.TopKCategoricalAccuracy(k=5, name="top5"),
        ],
        jit_compile=jit_compile,
    )


def _own_buffers(variables):
    """Gives each variable a copy of its value.

    At the end of `fit`, `SwapEMAWeights` and the optimizer assign the
    moving averages and the model's weights to each other. On JAX an
    assignment shares the array, and the next compiled step (`evaluate`,
    whose state buffers are donated) deletes it under the other variable:
    `model.save` then failed with "Array has been deleted" (Keras 3.15,
    `jax.jit`). A copy is cheap on every backend.
    """
    for variable in variables:
        variable.assign(keras.ops.copy(variable.value))


def _worker(strategy):
    """(is_chief, worker index) under a multi-worker strategy."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if task_type is None:
        return True, 0
    task_id = resolver.task_id or 0
    is_chief = task_type == "chief" or (
        task_type == "worker"
        and task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )
    return is_chief, task_id


def _hardware(strategy_message, jit_compile):
    return {
        "strategy": strategy_message,
        "jit_compile": jit_compile,
        "dtype_policy": keras.config.dtype_policy().name,
        "backend": keras.backend.backend(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "keras": keras.__version__,
    }


def epoch_callbacks(model_dir, backup, ema, is_chief):
    """The callbacks that record a run's epochs in `model_dir`, in the order
    that lets a kill at any instant lose at most the epoch in progress (see
    `lambda_keras.train.callbacks`): the raw state first, then the averaged
    (evaluated) weights, the log row and the backup's commit last.

    Args:
        model_dir: the run's folder.
        backup: its `ResumableBackup`; the chief's is made with
            `commit_each_epoch=False` (its `TrainingLog` commits).
        ema: whether the optimizer keeps a moving average to evaluate.
        is_chief: whether this worker writes the run's files (the others
            keep their backup only).
    """
    callbacks = [backup]
    if ema:
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    if is_chief:
        callbacks += [
            BestWeights(
                os.path.join(model_dir, "best.weights.h5"),
                "val_top1",
                os.path.join(model_dir, "best.json"),
            ),
            keras.callbacks.TensorBoard(os.path.join(model_dir, "logs")),
            TrainingLog(os.path.join(model_dir, "training_log.csv"), backup),
        ]
    return callbacks


def _check_writable(model_dir):
    """Raises unless files can be created in `model_dir` (made if need be)."""
    try:
        os.makedirs(model_dir, exist_ok=True)
        descriptor, probe = tempfile.mkstemp(prefix=".tmp-probe-", dir=model_dir)
        os.close(descriptor)
        os.remove(probe)
    except OSError as error:
        raise type(error)(
            f"--model-dir {model_dir} is not a writable folder "
            f"({error.strerror or error}): the run could not save its "
            f"checkpoints. Received: --model-dir={model_dir}"
        ) from error


def _run_signature(config, recipe, image_size, class_names):
    """What a backup's state belongs to: a rerun must match it to resume."""
    return {
        "--model": config.model,
        "--model-option": config.model_options,
        "--architecture": recipe.architecture,
        "--image-size": image_size,
        "--batch-size": config.batch_size,
        "--recipe": config.recipe,
        "class folders": class_names,
    }


def train(config, argv=None):
    """Runs (or resumes) one training run.

    Args:
        config: a `TrainConfig`.
        argv: the command line, recorded in the model card.

    Returns:
        The model card (a dict), also written to `model_card.json`.

    Raises:
        ValueError: unknown model, recipe, strategy or dataset; a global
            batch not divisible by the replicas.
        FileNotFoundError: missing data.
        OSError: a `model_dir` that cannot be written (checked first).
        WriteError: a checkpoint could not be written (a full disk); the
            files of the last completed epoch are intact.
        NonFiniteLossError: the loss became NaN or infinite (the backup of
            the last completed epoch is kept).
    """
    started = time.time()
    _check_writable(config.model_dir)
    # Before anything is built: every run writes TensorBoard logs.
    require("tensorboard", "lambda-keras train (its TensorBoard logs in logs/)")
    constructor(config.model)
    check_model_options(config.model, config.model_options)
    recipe = resolve_recipe(config)
    # First: multi-worker collectives must be set up before any TF op runs.
    strategy, device, message = select_strategy(config.strategy, config.tpu)
    jit_compile, jit_message = choose_jit_compile(
        config.jit_compile, keras.backend.backend(), device
    )
    keras.utils.set_random_seed(config.seed)
    print(message, flush=True)
    print(jit_message, flush=True)
    replicas = strategy.num_replicas_in_sync
    if config.sync_batch_norm and keras.backend.backend() != "tensorflow":
        raise ValueError(
            "--sync-batch-norm needs the tensorflow backend. "
            f"Received: backend={keras.backend.backend()!r}"
        )
    if config.batch_size % replicas:
        raise ValueError(
            f"The global batch size must be divisible by the {replicas} replicas "
            f"of the strategy. Received: --batch-size={config.batch_size}"
        )
    previous_policy = keras.config.dtype_policy()
    if config.mixed_precision or device == "tpu":
        # bfloat16 on TPU (and CPU); float16 with loss scaling on GPU.
        policy = "mixed_float16" if device == "gpu" else "mixed_bfloat16"
        keras.config.set_dtype_policy(policy)
    try:
        return _train(
            config, argv, recipe, strategy, device, message, jit_compile, started
        )
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _train(config, argv, recipe, strategy, device, message, jit_compile, started):
    """The body of `train` once the strategy and dtype policy are set."""
    train_source = data.load_source(
        config.dataset,
        "train",
        config.data_dir,
        skip_unreadable=config.skip_unreadable,
    )
    eval_split = data.eval_split_name(config.dataset, config.data_dir)
    eval_source = data.load_source(
        config.dataset,
        eval_split,
        config.data_dir,
        class_names=train_source.class_names,
        skip_unreadable=config.skip_unreadable,
    )
    for source in (train_source, eval_source):
        if source.skipped:
            print(data.skipped_notice(source), flush=True)
    image_size = recipe.image_size or constructor(config.model).default_size
    recipe = recipe.override(image_size=image_size)
    train_data = data.make_pipeline(
        train_source,
        image_size,
        config.batch_size,
        training=True,
        seed=config.seed,
        crop_area_range=(recipe.crop_area_min, 1.0),
        randaugment_magnitude=recipe.randaugment_magnitude,
        cache=config.cache,
    )
    eval_data = data.make_pipeline(
        eval_source,
        image_size,
        config.batch_size,
        training=False,
        crop_fraction=config.crop_fraction,
        cache=config.cache,
        # TPUs need static shapes: the last, partial batch is left out there.
        drop_remainder=device == "tpu",
    )
    if train_source.num_examples < config.batch_size:
        raise ValueError(
            f"The training split has {train_source.num_examples} examples, fewer "
            f"than one global batch. Received: --batch-size={config.batch_size}"
        )
    steps_per_epoch = config.steps_per_epoch or (
        train_source.num_examples // config.batch_size
    )
    train_data = train_data.repeat()

    is_chief, worker = _worker(strategy)
    model_dir = config.model_dir
    if is_chief:
        remove_temporaries(model_dir)
    backup = ResumableBackup(
        os.path.join(model_dir, "backup" if is_chief else f"backup-worker{worker}"),
        run=_run_signature(config, recipe, image_size, train_source.class_names),
        # The chief's TrainingLog commits each epoch once its row is written.
        commit_each_epoch=not is_chief,
    )
    resumed_from = backup.resume_epoch()
    mismatches = backup.mismatches(backup.run)
    if mismatches:
        described = "; ".join(
            f"{key} {stored!r} there, {now!r} now"
            for key, (stored, now) in mismatches.items()
        )
        key, (_, now) = next(iter(mismatches.items()))
        raise UsageError(
            f"{model_dir} holds the backup of a run with other settings "
            f"({described}): rerun that run's command to resume it, or give "
            f"another --model-dir. Received: {key}={now}"
        )
    if resumed_from > recipe.epochs:
        raise UsageError(
            f"{model_dir} holds the backup of epoch {resumed_from}, beyond the "
            f"{recipe.epochs} epochs asked for. Received: --epochs={recipe.epochs}"
        )
    if resumed_from:
        print(f"Resuming from the backup of epoch {resumed_from}.", flush=True)

    with strategy.scope():
        model = build_model(
            config.model,
            train_source.num_classes,
            image_size,
            weights=config.weights,
            recipe=recipe,
            **config.model_options,
        )
        _configure_batch_norm(model, recipe.bn_momentum, config.sync_batch_norm)
        optimizer = make_optimizer(recipe, config.batch_size, steps_per_epoch, model)
        compile_model(model, optimizer, recipe.label_smoothing, jit_compile)

    callbacks = epoch_callbacks(model_dir, backup, recipe.ema_momentum > 0, is_chief)
    with data.naming_undecodable_images(train_source, eval_source):
        history = fit_until_non_finite_loss(
            model,
            train_data,
            initial_epoch=resumed_from,
            epochs=recipe.epochs,
            steps_per_epoch=steps_per_epoch,
            validation_data=eval_data,
            validation_steps=config.validation_steps,
            callbacks=callbacks,
            verbose=config.verbose,
        )
        # fit() has replaced the weights by their moving average (EMA).
        _own_buffers(model.optimizer.variables)
        results = model.evaluate(
            eval_data, steps=config.validation_steps, verbose=0, return_dict=True
        )
    card = {
        "model": config.model,
        "parameters": model.count_params(),
        "model_options": config.model_options,
        "weights_start": config.weights,
        "data": {
            "train": train_source.description,
            "train_examples": train_source.num_examples,
            "eval": eval_source.description,
            "eval_examples": eval_source.num_examples,
            "class_names": train_source.class_names,
            "image_size": image_size,
            "crop_fraction": config.crop_fraction,
            "input": "RGB 0-255 (the model includes its preprocessing)",
        },
        "recipe": {"name": config.recipe, **recipe.as_dict()},
        "batch_size": config.batch_size,
        "steps_per_epoch": steps_per_epoch,
        "seed": config.seed,
        "epochs_completed": recipe.epochs,
        "resumed_from_epoch": resumed_from,
        "metrics": {
            "top1": round(100 * results["top1"], 2),
            "top5": round(100 * results["top5"], 2),
            "split": eval_split,
            "weights": "final.weights.h5",
            "measured_by": _evaluate_command(config, image_size, eval_split),
        },
        "last_epoch_logs": {
            key: values[-1] for key, values in history.history.items() if values
        },
        "wall_time_seconds_this_run": round(time.time() - started, 1),
        "hardware": _hardware(message, jit_compile),
        "command": shlex.join(argv) if argv else None,
    }
    if is_chief:
        save_model_weights(model, os.path.join(model_dir, "final.weights.h5"))
        write_run_file(os.path.join(model_dir, "model.keras"), model.save)
        write_run_json(os.path.join(model_dir, "model_card.json"), card)
    print(
        f"{config.model}: top-1 {card['metrics']['top1']}%, top-5 "
        f"{card['metrics']['top5']}% on {eval_source.description}; wrote {model_dir}",
        flush=True,
    )
    return card


def _evaluate_command(config, image_size, split):
    parts = [
        "lambda-keras",
        "evaluate",
        "--model",
        config.model,
        "--weights",
        os.path.join(config.model_dir, "final.weights.h5"),
        "--dataset",
        config.dataset,
        "--split",
        split,
        "--image-size",
        str(image_size),
        "--crop-fraction",
        str(config.crop_fraction),
    ]
    if config.data_dir:
        parts += ["--data-dir", config.data_dir]
    return shlex.join(parts)


def evaluate(
    model,
    weights,
    dataset,
    split=None,
    data_dir=None,
    image_size=None,
    batch_size=64,
    crop_fraction=0.875,
    steps=None,
):
    """Top-1 and top-5 accuracy of `weights` on one split of a dataset.

    Args:
        model: a constructor name.
        weights: a weights file or the name of pretrained weights.
        dataset: a folder of `split/class/image` files or a tfds name.
        split: the split; defaults to the dataset's held-out split.
        data_dir: tfds data directory.
        image_size: input side; defaults to the model's default size.
        batch_size: evaluation batch size.
        crop_fraction: central crop's share of the resized shorter side.
        steps: evaluate this many batches only.

    Returns:
        A dict: `top1`, `top5` (percent), `examples`, `split`.

    Raises:
        ValueError: an argument out of range, unreadable images or weights
            that do not fit the model and the data's classes.
    """
    for key, value in (
        ("batch_size", batch_size),
        ("image_size", image_size),
        ("crop_fraction", crop_fraction),
    ):
        check_flag(key, value)
    constructor(model)
    split = split or data.eval_split_name(dataset, data_dir)
    source = data.load_source(dataset, split, data_dir)
    image_size = image_size or constructor(model).default_size
    network = build_model(
        model, source.num_classes, image_size, weights=weights, new_classifier=False
    )
    compile_model(network)
    pipeline = data.make_pipeline(
        source, image_size, batch_size, training=False, crop_fraction=crop_fraction
    )
    with data.naming_undecodable_images(source):
        results = network.evaluate(pipeline, steps=steps, verbose=0, return_dict=True)
    examples = (
        source.num_examples
        if steps is None
        else min(source.num_examples, steps * batch_size)
    )
    return {
        "top1": round(100 * results["top1"], 2),
        "top5": round(100 * results["top5"], 2),
        "examples": examples,
        "split": split,
    }
