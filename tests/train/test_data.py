"""Tests of the tf.data input: folder and tfds sources, the ImageNet train and
eval transforms, determinism under a seed, and the errors."""

import crop_reference
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from lambda_keras.train import data


def _batches(dataset, count):
    return [(images.numpy(), labels.numpy()) for images, labels in dataset.take(count)]


def test_folder_source_lists_classes_and_images(folder_dataset):
    source = data.load_source(str(folder_dataset), "train")
    assert source.class_names == ["n01440764", "n03028079", "n03888257"]
    assert source.num_examples == 24
    labels = [int(label) for _, label in source.dataset]
    assert labels == [0] * 8 + [1] * 8 + [2] * 8
    assert data.eval_split_name(str(folder_dataset)) == "val"


def test_train_pipeline_shapes_ranges_and_one_hot(folder_dataset):
    source = data.load_source(str(folder_dataset), "train")
    pipeline = data.make_pipeline(source, 40, 5, training=True, seed=1)
    batches = _batches(pipeline, 4)  # 24 // 5 = 4 full batches per epoch
    for images, labels in batches:
        assert images.shape == (5, 40, 40, 3) and images.dtype == np.float32
        assert 0.0 <= images.min() and images.max() <= 255.0
        assert images.max() > 100.0  # 0-255 scale, not 0-1
        assert labels.shape == (5, 3)
        np.testing.assert_array_equal(labels.sum(axis=1), 1.0)
    assert len(list(pipeline)) == 4  # the last, incomplete batch is dropped
    # Shuffled: the 20 labels are not in file order.
    order = np.concatenate([labels.argmax(1) for _, labels in batches])
    assert not np.array_equal(order, np.sort(order))


def test_train_pipeline_is_deterministic_under_a_seed(folder_dataset):
    source = data.load_source(str(folder_dataset), "train")

    def epochs(seed):
        pipeline = data.make_pipeline(source, 32, 4, training=True, seed=seed)
        iterator = iter(pipeline.repeat())
        return [next(iterator)[0].numpy() for _ in range(12)]  # two epochs

    first, again, other = epochs(7), epochs(7), epochs(8)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))
    # Each epoch draws new crops: epoch 2 is not epoch 1 again.
    assert not all(np.array_equal(a, b) for a, b in zip(first[:6], first[6:]))


def test_full_area_random_crop_is_the_image_or_its_mirror():
    image = np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    outputs = [
        data.random_resized_crop(
            tf.constant(image), 24, tf.constant([seed, 0]), (1.0, 1.0)
        ).numpy()
        for seed in range(8)
    ]
    flips = 0
    for output in outputs:
        if np.allclose(output, image, atol=1e-3):
            continue
        np.testing.assert_allclose(output, image[:, ::-1], atol=1e-3)
        flips += 1
    assert 0 < flips < 8


def test_small_random_crops_cover_part_of_the_image():
    # Left half black, right half white: a crop of at most 30% of the area
    # that is resized up cannot hold both halves in equal measure every time.
    image = np.zeros((64, 64, 3), np.uint8)
    image[:, 32:] = 255
    means = [
        float(
            data.random_resized_crop(
                tf.constant(image), 32, tf.constant([seed, 1]), (0.05, 0.3)
            )
            .numpy()
            .mean()
        )
        for seed in range(10)
    ]
    assert max(means) - min(means) > 50.0


def test_eval_pipeline_keeps_order_and_partial_batch(folder_dataset):
    source = data.load_source(str(folder_dataset), "val")
    pipeline = data.make_pipeline(source, 32, 5, training=False)
    batches = _batches(pipeline, 10)
    labels = np.concatenate([labels.argmax(1) for _, labels in batches])
    np.testing.assert_array_equal(labels, [0] * 4 + [1] * 4 + [2] * 4)
    # The evaluation crop (0.875 by default) of each file, in file order.
    files = sorted((folder_dataset / "val").glob("*/*"))
    expected = [
        crop_reference.center_crop(
            tf.io.decode_image(path.read_bytes(), channels=3).numpy(), 32, 0.875
        )
        for path in files
    ]
    images = np.concatenate([images for images, _ in batches])
    np.testing.assert_allclose(images, np.stack(expected), atol=2e-3)


def test_cache_gives_the_same_batches(folder_dataset):
    source = data.load_source(str(folder_dataset), "val")
    plain = _batches(data.make_pipeline(source, 32, 4, training=False), 3)
    cached = data.make_pipeline(source, 32, 4, training=False, cache=True)
    for _ in range(2):  # the first pass fills the cache, the second reads it
        for (a, _), (b, _) in zip(plain, _batches(cached, 3)):
            np.testing.assert_array_equal(a, b)


def test_randaugment_changes_the_images(folder_dataset):
    source = data.load_source(str(folder_dataset), "train")
    plain = _batches(data.make_pipeline(source, 32, 4, training=True, seed=3), 1)
    augmented = data.make_pipeline(
        source, 32, 4, training=True, seed=3, randaugment_magnitude=15
    )
    ((images, labels),) = _batches(augmented, 1)
    np.testing.assert_array_equal(labels, plain[0][1])
    assert images.shape == (4, 32, 32, 3)
    assert 0.0 <= images.min() and images.max() <= 255.0
    assert not np.allclose(images, plain[0][0])


def test_imagenet2012_tfds_pipeline_on_mock_data():
    with tfds.testing.mock_data(num_examples=6):
        source = data.load_source("imagenet2012", "train")
        assert source.num_examples == 6 and source.num_classes == 1000
        assert data.eval_split_name("imagenet2012") == "validation"
        pipeline = data.make_pipeline(source, 32, 3, training=True)
        for images, labels in _batches(pipeline, 2):
            assert images.shape == (3, 32, 32, 3) and labels.shape == (3, 1000)
        evaluation = data.make_pipeline(
            data.load_source("imagenet2012", "validation"), 32, 4, training=False
        )
        shapes = [images.shape[0] for images, _ in _batches(evaluation, 5)]
        assert shapes == [4, 2]


def test_missing_folder(tmp_path):
    missing = tmp_path / "absent"
    with pytest.raises(FileNotFoundError, match=f"Received: --dataset={missing}"):
        data.load_source(str(missing), "train")


def test_missing_split_folder(folder_dataset):
    with pytest.raises(FileNotFoundError, match="test does not exist"):
        data.load_source(str(folder_dataset), "test")


def test_folder_without_images(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "train" / "a" / "notes.txt").write_text("no images")
    with pytest.raises(ValueError, match="holds no images"):
        data.load_source(str(tmp_path), "train")


def test_folder_without_held_out_split(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError, match="no held-out split"):
        data.eval_split_name(str(tmp_path))


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="Received: --dataset=no_such_dataset"):
        data.load_source("no_such_dataset", "train")


def test_unprepared_tfds_dataset(tmp_path):
    with pytest.raises(FileNotFoundError, match="not prepared"):
        data.load_source("cifar10", "train", data_dir=str(tmp_path))
