"""tf.data input for training and evaluation.

Two kinds of source:

- a folder of `split/class/image` files (`--dataset path/to/folder`): the
  classes are the sorted sub-folder names of the training split, and the
  held-out split's folders are matched to them by name. Every file is
  checked before training (`unreadable_images`);
- a tensorflow-datasets name (`imagenet2012`, `imagenette`, `cifar10`, ...)
  read from `--data-dir` (prepared beforehand; nothing is downloaded).

The pipeline is the standard ImageNet one: random resized crop and
horizontal flip for training, `lambda_keras.preprocessing.center_crop` (the
shorter side resized to `floor(image_size / crop_fraction)`, then the
central square) for evaluation. Images stay in 0-255 RGB (the models scale
them with `include_preprocessing=True`); labels are one-hot (label
smoothing). Decoding and augmentation run in parallel and are deterministic
under a seed: every random draw is a stateless op seeded from
`Dataset.random(seed)`.
"""

import concurrent.futures
import contextlib
import dataclasses
import os
from pathlib import Path

import tensorflow as tf

from lambda_keras.extras import require
from lambda_keras.preprocessing import center_crop

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# The split names a folder dataset or tfds dataset may call its held-out set.
EVAL_SPLITS = ("validation", "val", "test")
# How many unreadable files an error or notice names (it gives the count).
FILES_NAMED = 5
# The start and the end of a complete file of each format tf.io.decode_image
# reads (a BMP gives its size in its header instead of an end marker).
_JPEG = (b"\xff\xd8\xff", b"\xff\xd9")
_PNG = (b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82")
_GIF = ((b"GIF87a", b"GIF89a"), b"\x3b")


@dataclasses.dataclass
class Source:
    """Decoded examples of one split, before augmentation.

    Attributes:
        dataset: a `tf.data.Dataset` of `(image, label)`; image uint8
            (height, width, 3) or an encoded string when `encoded`.
        encoded: whether `dataset` holds encoded image files.
        num_examples: examples in the split.
        class_names: names of the classes, index order.
        description: where the data came from, for the model card.
        paths: the image files, in label order (folder datasets only).
        skipped: `(path, reason)` of the unreadable files left out
            (`skip_unreadable`).
    """

    dataset: tf.data.Dataset
    encoded: bool
    num_examples: int
    class_names: list
    description: str
    paths: list | None = None
    skipped: list = dataclasses.field(default_factory=list)

    @property
    def num_classes(self):
        return len(self.class_names)


def is_folder_dataset(dataset):
    """Whether `dataset` names a folder (rather than a tfds dataset)."""
    return os.sep in dataset or dataset.startswith(".") or Path(dataset).is_dir()


def eval_split_name(dataset, data_dir=None):
    """The held-out split of a folder or tfds dataset ("val", "validation"...)."""
    if is_folder_dataset(dataset):
        for split in EVAL_SPLITS:
            if (Path(dataset) / split).is_dir():
                return split
        raise FileNotFoundError(
            f"The folder dataset {dataset} has no held-out split folder (one of "
            f"{EVAL_SPLITS}). Received: --dataset={dataset}"
        )
    builder = _tfds_builder(dataset, data_dir)
    splits = builder.info.splits
    if not splits:
        # Metadata without splits (tfds' mock_data): ask the data itself.
        _read_tfds(builder, dataset, EVAL_SPLITS[0], data_dir)
        return EVAL_SPLITS[0]
    for split in EVAL_SPLITS:
        if split in splits:
            return split
    raise ValueError(
        f"The tfds dataset {dataset} has no held-out split (one of "
        f"{EVAL_SPLITS}); it has {sorted(splits)}. Received: --dataset={dataset}"
    )


def load_source(dataset, split, data_dir=None, class_names=None, skip_unreadable=False):
    """Reads one split of a folder or tfds dataset.

    Args:
        dataset: a folder of `split/class/image` files, or a tfds name.
        split: the split ("train", "val", "validation", "test", ...).
        data_dir: tfds data directory (tfds datasets only).
        class_names: the classes of the training split, in label order: a
            folder split must have the same class folders, and its labels
            follow these names (not its own folders' order). None: the
            split's own sorted folders.
        skip_unreadable: leave out the files that cannot be decoded (listed
            in `Source.skipped`) instead of raising.

    Returns:
        A `Source`.

    Raises:
        FileNotFoundError: the folder, its split or the tfds data is missing.
        ValueError: an unknown tfds dataset, a split with no images, an
            empty class folder, class folders other than `class_names`,
            unreadable image files, or a dataset without `image` and
            `label` features.
    """
    if is_folder_dataset(dataset):
        return _folder_source(Path(dataset), split, class_names, skip_unreadable)
    return _tfds_source(dataset, split, data_dir)


def _named(problems):
    """The first few `(path, reason)` pairs, for a one-line message."""
    named = "; ".join(f"{path} ({reason})" for path, reason in problems[:FILES_NAMED])
    more = len(problems) - FILES_NAMED
    return named + (f"; and {more} more" if more > 0 else "")


def skipped_notice(source):
    """What `--skip-unreadable` left out of `source`, for the log."""
    return (
        f"Skipped {len(source.skipped)} unreadable image files of "
        f"{source.description} (--skip-unreadable): {_named(source.skipped)}"
    )


def _structure_problem(path):
    """Why `path` does not look like a complete image file, or None.

    Reads its first and last bytes only: a known format's signature and its
    end marker (a truncated download lacks it) or, for a BMP, the size its
    header gives.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - 16))
            tail = f.read()
    except OSError as error:
        return f"cannot be read: {error.strerror or error}"
    if not size:
        return "empty file"
    for name, (start, end) in (("JPEG", _JPEG), ("PNG", _PNG), ("GIF", _GIF)):
        if head.startswith(start):
            # Some writers pad a JPEG after its end marker with zeros.
            complete = tail.rstrip(b"\x00").endswith(end)
            return None if complete else f"truncated: no {name} end marker"
    if head.startswith(b"BM"):
        declared = int.from_bytes(head[2:6], "little")
        if declared > size:
            return "truncated: shorter than its BMP header says"
        return None
    return "not a JPEG, PNG, GIF or BMP file"


def undecodable_images(paths):
    """The files of `paths` that `tf.io.decode_image` cannot decode.

    Decodes them all, in parallel, as the input pipeline does (the failing
    ones are found by what the decoding leaves out).
    """
    if not paths:
        return []
    decoded = (
        tf.data.Dataset.from_tensor_slices(list(paths))
        .map(
            lambda path: (path, tf.shape(_decode(tf.io.read_file(path), True))),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .ignore_errors()
    )
    readable = {path.decode() for path, _ in decoded.as_numpy_iterator()}
    return [path for path in paths if path not in readable]


def unreadable_images(paths):
    """`(path, reason)` of each file of `paths` that cannot be decoded.

    Bounded for large datasets: each file's first and last bytes are read
    (1.5 s for the 9469 Imagenette training images on 2 busy cores),
    and only the files that look incomplete or of an unknown format are
    decoded, so no readable file is refused by mistake (a JPEG followed by
    other data, a WebP under a .jpg name).
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        problems = dict(zip(paths, pool.map(_structure_problem, paths)))
    suspects = [path for path, problem in problems.items() if problem]
    return [(path, problems[path]) for path in undecodable_images(suspects)]


@contextlib.contextmanager
def naming_undecodable_images(*sources):
    """Turns a decoding failure inside the input pipeline into an error that
    names the files.

    A file can pass `unreadable_images` (a complete file whose data is
    corrupt) and fail when the pipeline decodes it, with a TensorFlow error
    that does not say which file: the sources' files are then decoded again
    to find it.

    Args:
        *sources: the `Source`s the pipelines read.

    Raises:
        ValueError: naming the files that cannot be decoded.
    """
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        paths = [path for source in sources for path in source.paths or ()]
        if not paths:
            raise
        print(
            "The input pipeline failed; decoding its image files again to "
            "find the one at fault...",
            flush=True,
        )
        failed = undecodable_images(paths)
        if not failed:
            raise
        raise ValueError(
            f"{len(failed)} image file(s) passed the check before training "
            f"but could not be decoded: {_named([(p, 'corrupt') for p in failed])}. "
            f"Remove or replace them and rerun the same command (training "
            f"resumes from the last completed epoch). Received: path={failed[0]}"
        ) from error


def _folder_source(root, split, class_names=None, skip_unreadable=False):
    split_dir = root / split
    if not split_dir.is_dir():
        what = "folder" if root.is_dir() else "dataset folder"
        missing = split_dir if root.is_dir() else root
        raise FileNotFoundError(
            f"The {what} {missing} does not exist (a folder dataset holds "
            f"split/class/image files). Received: --dataset={root}"
        )
    folders = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if class_names is None:
        class_names = folders
    elif set(folders) != set(class_names):
        missing = sorted(set(class_names) - set(folders))
        extra = sorted(set(folders) - set(class_names))
        raise ValueError(
            f"The class folders of {split_dir} are not those of the training "
            f"split (labels are matched by folder name): missing in {split}: "
            f"{missing}; not in the training split: {extra}. Received: "
            f"--dataset={root}"
        )
    images = {
        name: [
            str(path)
            for path in sorted((split_dir / name).iterdir())
            if path.suffix.lower() in IMAGE_EXTENSIONS
        ]
        for name in class_names
    }
    if not any(images.values()):
        raise ValueError(
            f"The folder {split_dir} holds no images in class sub-folders "
            f"({', '.join(IMAGE_EXTENSIONS)}). Received: --dataset={root}"
        )
    unreadable = unreadable_images([p for files in images.values() for p in files])
    if unreadable and not skip_unreadable:
        raise ValueError(
            f"{len(unreadable)} image files of {split_dir} cannot be decoded: "
            f"{_named(unreadable)}. Remove or replace them, or pass "
            f"--skip-unreadable to train without them. Received: "
            f"path={unreadable[0][0]}"
        )
    left_out = {path for path, _ in unreadable}
    paths, labels = [], []
    for label, name in enumerate(class_names):
        kept = [path for path in images[name] if path not in left_out]
        if not kept:
            readable = " readable" if images[name] else ""
            raise ValueError(
                f"The class folder {split_dir / name} holds no{readable} images "
                f"({', '.join(IMAGE_EXTENSIONS)}): remove it or add its images "
                f"(an empty class would silently become a model with fewer "
                f"classes). Received: --dataset={root}"
            )
        paths += kept
        labels += [label] * len(kept)
    files = tf.data.Dataset.from_tensor_slices((paths, labels))
    dataset = files.map(
        lambda path, label: (tf.io.read_file(path), label),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return Source(
        dataset=dataset,
        encoded=True,
        num_examples=len(paths),
        class_names=list(class_names),
        description=f"folder {root} (split {split})",
        paths=paths,
        skipped=unreadable,
    )


def _tfds_builder(name, data_dir):
    tfds = require("tensorflow_datasets", f"--dataset={name} (not a folder)")

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
        raise ValueError(
            f"Unknown dataset {name!r}: neither a folder nor a tensorflow-datasets "
            f"name. Received: --dataset={name}"
        ) from e
    return builder


def _not_prepared(name, builder, data_dir):
    return FileNotFoundError(
        f"The tensorflow-datasets dataset {name} is not prepared in "
        f"{builder.data_dir_root}: prepare it first (e.g. `tfds build {name} "
        f"--data_dir DIR`; ImageNet needs its archives in DIR/downloads/manual). "
        f"Received: --data-dir={data_dir}"
    )


def _read_tfds(builder, name, split, data_dir):
    tfds = require("tensorflow_datasets", f"--dataset={name} (not a folder)")

    try:
        return builder.as_dataset(
            split=split,
            shuffle_files=False,
            read_config=tfds.ReadConfig(shuffle_seed=0, interleave_cycle_length=1),
            decoders={"image": tfds.decode.SkipDecoding()},
        )
    except AssertionError as e:  # tfds' "could not find data in ..."
        raise _not_prepared(name, builder, data_dir) from e


def _tfds_source(name, split, data_dir):
    builder = _tfds_builder(name, data_dir)
    features = builder.info.features
    if "image" not in features or "label" not in features:
        raise ValueError(
            f"The tfds dataset {name} has no 'image' and 'label' features "
            f"(it has {sorted(features)}). Received: --dataset={name}"
        )
    splits = builder.info.splits
    if splits and split not in splits:
        raise ValueError(
            f"The tfds dataset {name} has no split {split!r} (it has "
            f"{sorted(splits)}). Received: split={split!r}"
        )
    dataset = _read_tfds(builder, name, split, data_dir)
    if splits:
        num_examples = splits[split].num_examples
    else:
        num_examples = int(dataset.cardinality())
    dataset = dataset.map(
        lambda example: (example["image"], example["label"]),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return Source(
        dataset=dataset,
        encoded=True,
        num_examples=num_examples,
        class_names=list(features["label"].names),
        description=f"tfds {name} {builder.info.version} (split {split})",
    )


def _decode(image, encoded):
    if not encoded:
        return image
    image = tf.io.decode_image(image, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def random_resized_crop(image, size, seed, area_range=(0.08, 1.0)):
    """Inception-style crop: a random box of `area_range` of the image's area
    and aspect ratio in [3/4, 4/3], resized to `size` x `size`, and a random
    horizontal flip.

    Args:
        image: uint8 (height, width, 3).
        size: output side.
        seed: int32 (2,) stateless seed.
        area_range: the box's share of the image area.

    Returns:
        float32 (size, size, 3) in 0-255.
    """
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    begin, box_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]),
        seed=seeds[0],
        min_object_covered=0.1,
        aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=area_range,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    image = tf.slice(image, begin, box_size)
    image = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
    image = tf.image.stateless_random_flip_left_right(image, seeds[1])
    image.set_shape([size, size, 3])
    return tf.clip_by_value(image, 0.0, 255.0)


def make_pipeline(
    source,
    image_size,
    batch_size,
    training,
    seed=0,
    crop_fraction=0.875,
    crop_area_range=(0.08, 1.0),
    randaugment_magnitude=0,
    cache=False,
    drop_remainder=None,
):
    """The training or evaluation `tf.data` pipeline of one split.

    Args:
        source: a `Source` (see `load_source`).
        image_size: side of the square model input.
        batch_size: global batch size.
        training: random resized crop, flip, shuffling (and RandAugment)
            when True; resize and central crop when False.
        seed: seed of the shuffle and of every augmentation draw.
        crop_fraction: evaluation crop's share of the resized shorter side.
        crop_area_range: random crop's share of the image area.
        randaugment_magnitude: 0 for none, else the magnitude of
            `keras.layers.RandAugment` on the 0-30 scale of the RandAugment
            paper (the layer's `factor` is magnitude / 30).
        cache: keep the decoded images in memory after the first epoch.
        drop_remainder: drop the last incomplete batch; defaults to
            `training`.

    Returns:
        A `tf.data.Dataset` of `(images, one_hot_labels)` batches: float32
        (batch, image_size, image_size, 3) in 0-255 and float32
        (batch, classes).
    """
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    dataset = source.dataset.with_options(options)
    if cache:
        dataset = dataset.map(
            lambda image, label: (_decode(image, source.encoded), label),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        ).cache()
        encoded = False
    else:
        encoded = source.encoded
    classes = source.num_classes

    if training:
        dataset = dataset.shuffle(
            min(source.num_examples, 50_000), seed=seed, reshuffle_each_iteration=True
        )
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        dataset = tf.data.Dataset.zip((dataset, seeds.batch(2)))

        def transform(example, example_seed):
            image, label = example
            image = random_resized_crop(
                _decode(image, encoded),
                image_size,
                tf.cast(example_seed % (2**31 - 1), tf.int32),
                crop_area_range,
            )
            return image, label

    else:

        def transform(image, label):
            return center_crop(
                _decode(image, encoded), image_size, crop_fraction
            ), label

    dataset = dataset.map(
        transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    dataset = dataset.batch(
        batch_size,
        drop_remainder=training if drop_remainder is None else drop_remainder,
    )
    if training and randaugment_magnitude:
        import keras

        rand_augment = keras.layers.RandAugment(
            value_range=(0, 255),
            factor=min(1.0, randaugment_magnitude / 30.0),
            seed=seed,
            dtype="float32",
        )
        dataset = dataset.map(
            lambda images, labels: (rand_augment(images), labels),
            num_parallel_calls=1,
            deterministic=True,
        )
    dataset = dataset.map(
        lambda images, labels: (images, tf.one_hot(labels, classes)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)
