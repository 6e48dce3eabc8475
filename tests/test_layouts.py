"""Every supported layout of the same rows must give the same images, labels and splits."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import datagen
from fer.constants import CLASS_NAMES, TEST, TRAIN, UNLABELED, VAL
from fer.data.layouts import detect_layout
from fer.data.prepare import prepare_dataset
from fer.errors import DataError

USAGE_OF_SPLIT = {TRAIN: "Training", VAL: "PublicTest", TEST: "PrivateTest"}


@pytest.fixture(scope="module")
def rows() -> datagen.Rows:
    return datagen.make_rows(seed=3)


def build_kaggle_csv_file(rows, folder):
    return datagen.write_kaggle_csv(rows, folder / "fer2013.csv")


def build_kaggle_csv_folder(rows, folder):
    datagen.write_kaggle_csv(rows, folder / "fer2013.csv")
    return folder


def build_icml_csv(rows, folder):
    return datagen.write_icml_csv(rows, folder / "icml_face_data.csv").parent


def build_kaggle_folders(rows, folder):
    return datagen.write_kaggle_folders(rows, folder, extension="png")


def build_class_folders(rows, folder):
    return datagen.write_class_folders(rows, folder)


def build_class_folders_official_names(rows, folder):
    names = {usage: usage for usage in datagen.USAGES}
    return datagen.write_class_folders(rows, folder, split_names=names)


def build_rgb_class_folders(rows, folder):
    return datagen.write_class_folders(rows, folder, rgb=True)


OFFICIAL_BUILDERS = {
    "kaggle-csv file": (build_kaggle_csv_file, "kaggle-csv"),
    "kaggle-csv folder": (build_kaggle_csv_folder, "kaggle-csv"),
    "icml-csv": (build_icml_csv, "icml-csv"),
    "kaggle-folders png": (build_kaggle_folders, "kaggle-folders"),
    "class-folders train/val/test": (build_class_folders, "class-folders"),
    "class-folders Usage names": (build_class_folders_official_names, "class-folders"),
    "class-folders rgb": (build_rgb_class_folders, "class-folders"),
}


def prepare(source: Path, tmp_path: Path, **settings):
    return prepare_dataset(source, tmp_path / "prepared.npz", **settings)


@pytest.mark.parametrize("name", list(OFFICIAL_BUILDERS))
def test_layout_matches_rows(name, rows, tmp_path):
    build, layout = OFFICIAL_BUILDERS[name]
    source = build(rows, tmp_path / "source")

    data = prepare(source, tmp_path)

    assert data.info["layout"] == layout
    assert data.info["protocol"] == "official"
    assert data.info["image_size"] == [48, 48]
    for split, usage in USAGE_OF_SPLIT.items():
        expected = rows.subset((usage,))
        images, labels, _ = data.split_arrays(split)
        assert datagen.split_content(images, labels) == datagen.split_content(expected.images, expected.labels), usage
        counts = np.bincount(expected.labels, minlength=len(CLASS_NAMES))
        assert data.class_counts(split) == dict(zip(CLASS_NAMES, counts.tolist())), usage


def test_all_official_layouts_agree(rows, tmp_path):
    prepared = {}
    for index, (name, (build, _)) in enumerate(OFFICIAL_BUILDERS.items()):
        folder = tmp_path / str(index)
        prepared[name] = prepare(build(rows, folder / "source"), folder)

    reference = prepared.pop("kaggle-csv file")
    for name, data in prepared.items():
        assert data.info["class_counts"] == reference.info["class_counts"], name
        assert data.info["mean"] == pytest.approx(reference.info["mean"]), name
        for split in (TRAIN, VAL, TEST):
            content = datagen.split_content(*data.split_arrays(split)[:2])
            assert content == datagen.split_content(*reference.split_arrays(split)[:2]), (name, split)


def test_torchvision_matches_kaggle_holdout(rows, tmp_path):
    datagen.write_torchvision_csv(rows, tmp_path / "root" / "fer2013")
    kaggle_csv = datagen.write_kaggle_csv(rows, tmp_path / "kaggle" / "fer2013.csv")

    torchvision = prepare(tmp_path / "root", tmp_path / "tv")
    kaggle = prepare(kaggle_csv, tmp_path / "kg", protocol="holdout")

    assert torchvision.info["layout"] == "torchvision-csv"
    assert torchvision.info["protocol"] == "holdout"
    for split in (TRAIN, VAL):
        assert datagen.split_content(*torchvision.split_arrays(split)[:2]) == datagen.split_content(*kaggle.split_arrays(split)[:2])
    test_images, test_labels, _ = torchvision.split_arrays(TEST)
    assert np.all(test_labels == UNLABELED)
    held_out = rows.subset(("PublicTest", "PrivateTest"))
    assert sorted(image.tobytes() for image in test_images) == sorted(image.tobytes() for image in held_out.images)


def test_torchvision_from_either_csv_file(rows, tmp_path):
    folder = datagen.write_torchvision_csv(rows, tmp_path / "fer2013")

    from_train = prepare(folder / "train.csv", tmp_path / "a")
    from_test = prepare(folder / "test.csv", tmp_path / "b")

    assert from_train.info["test_labeled"] is False
    assert from_train.info["majority_baseline_test"] is None
    assert np.array_equal(from_train.images, from_test.images)
    assert np.array_equal(from_train.splits, from_test.splits)


def test_holdout_split_ignores_file_order(rows, tmp_path):
    reversed_rows = datagen.Rows(rows.images[::-1], rows.labels[::-1], rows.usages[::-1])
    folders = datagen.write_kaggle_folders(rows, tmp_path / "unprefixed", prefixes=False)
    kaggle_csv = datagen.write_kaggle_csv(reversed_rows, tmp_path / "fer2013.csv")

    from_folders = prepare(folders, tmp_path / "a")
    from_csv = prepare(kaggle_csv, tmp_path / "b", protocol="holdout")

    assert from_folders.info["protocol"] == "holdout"
    for split in (TRAIN, VAL, TEST):
        assert datagen.split_content(*from_folders.split_arrays(split)[:2]) == datagen.split_content(*from_csv.split_arrays(split)[:2])


def test_holdout_is_stratified_and_seeded(rows, tmp_path):
    kaggle_csv = datagen.write_kaggle_csv(rows, tmp_path / "fer2013.csv")

    first = prepare(kaggle_csv, tmp_path / "a", protocol="holdout", val_fraction=0.2, split_seed=1)
    again = prepare(kaggle_csv, tmp_path / "b", protocol="holdout", val_fraction=0.2, split_seed=1)
    other_seed = prepare(kaggle_csv, tmp_path / "c", protocol="holdout", val_fraction=0.2, split_seed=2)

    assert np.array_equal(first.splits, again.splits)
    assert not np.array_equal(first.splits, other_seed.splits)
    training = len(rows.subset(("Training",)).labels)
    assert first.info["split_sizes"]["val"] == math.ceil(0.2 * training)
    val_counts = np.array(list(first.class_counts(VAL).values()))
    assert val_counts.max() - val_counts.min() <= 1


def test_jpeg_kaggle_folders_close_to_rows(rows, tmp_path):
    source = datagen.write_kaggle_folders(rows, tmp_path / "jpeg", extension="jpg")

    data = prepare(source, tmp_path)

    assert data.info["protocol"] == "official"
    for split, usage in USAGE_OF_SPLIT.items():
        expected = rows.subset((usage,))
        images, labels, ids = data.split_arrays(split)
        assert sorted(labels.tolist()) == sorted(expected.labels.tolist())
        # File names carry the row index, so each image can be matched with its row.
        for image, image_id in zip(images, ids):
            index = int(Path(image_id).stem.split("_")[1])
            difference = np.abs(image.astype(int) - rows.images[index].astype(int))
            assert difference.mean() < 3.0, image_id


def test_rgb_class_folders_use_luma(tmp_path):
    rng = np.random.default_rng(0)
    colored = rng.integers(0, 256, size=(7, 3, 20, 20, 3), dtype=np.uint8)
    for class_index, class_name in enumerate(CLASS_NAMES):
        for split_index, split_folder in enumerate(("train", "val", "test")):
            datagen.save_image(colored[class_index, split_index], tmp_path / "rgb" / split_folder / class_name / "face.png")

    data = prepare(tmp_path / "rgb", tmp_path)

    images, labels, _ = data.split_arrays(TRAIN)
    for image, label in zip(images, labels):
        expected = np.asarray(Image.fromarray(colored[label, 0]).convert("L"))
        assert np.array_equal(image, expected)


def test_16_bit_images_scaled(tmp_path):
    rng = np.random.default_rng(1)
    wide = rng.integers(0, 65536, size=(3, 16, 16), dtype=np.uint16)
    for class_name in CLASS_NAMES:
        for index, split_folder in enumerate(("train", "val", "test")):
            path = tmp_path / "deep" / split_folder / class_name / "face.png"
            path.parent.mkdir(parents=True)
            Image.fromarray(wide[index]).save(path)

    data = prepare(tmp_path / "deep", tmp_path)

    expected = np.rint(wide[0] / 257.0).astype(np.uint8)
    for image in data.split_arrays(TRAIN)[0]:
        assert np.array_equal(image, expected)


def test_course_layout(tmp_path):
    course = datagen.write_course(tmp_path / "course")

    data = prepare(course.folder, tmp_path, val_fraction=0.25)

    assert data.info["layout"] == "course"
    assert data.info["protocol"] == "holdout"
    assert data.info["image_size"] == [64, 64]
    assert data.info["test_labeled"] is False
    train_val = data.splits != TEST
    by_id = dict(zip(data.ids[train_val].tolist(), data.labels[train_val].tolist()))
    assert by_id == dict(zip(course.train_ids, course.train_labels.tolist()))
    assert sorted(data.ids[data.splits == TEST].tolist()) == course.test_ids
    assert np.all(data.labels[data.splits == TEST] == UNLABELED)
    assert data.info["split_sizes"]["val"] == math.ceil(0.25 * len(course.train_ids))  # scikit-learn rounds the validation size up


def test_course_from_its_csv_file(tmp_path):
    course = datagen.write_course(tmp_path / "course")

    from_csv = prepare(course.folder / "train.csv", tmp_path / "a")
    from_folder = prepare(course.folder, tmp_path / "b")

    assert from_csv.info["layout"] == "course"
    assert np.array_equal(from_csv.images, from_folder.images)


def test_image_size_resizes(rows, tmp_path):
    source = datagen.write_kaggle_csv(rows, tmp_path / "fer2013.csv")

    data = prepare(source, tmp_path, image_size=32)

    assert data.images.shape[1:] == (32, 32)
    assert data.info["image_size"] == [32, 32]
    for image, image_id in zip(data.images, data.ids):
        # CSV ids end with the file line number, and line 2 holds row 0.
        row = int(image_id.rsplit("_", 1)[1]) - 2
        expected = np.asarray(Image.fromarray(rows.images[row]).resize((32, 32), Image.Resampling.BILINEAR))
        assert np.array_equal(image, expected), image_id


def test_course_resized_to_48(tmp_path):
    course = datagen.write_course(tmp_path / "course", train_per_class=3, test_count=4)

    data = prepare(course.folder, tmp_path, image_size=48)

    assert data.images.shape[1:] == (48, 48)
    assert data.info["image_size"] == [48, 48]


def test_ambiguous_folder_needs_layout(rows, tmp_path):
    source = datagen.write_kaggle_folders(rows, tmp_path / "both")
    datagen.write_kaggle_csv(rows, source / "fer2013.csv")

    with pytest.raises(DataError) as error:
        detect_layout(source)

    message = str(error.value)
    assert "kaggle-csv" in message
    assert "kaggle-folders" in message
    assert "layout" in message
    assert detect_layout(source, "kaggle-folders").layout == "kaggle-folders"
    assert detect_layout(source, "kaggle-csv").layout == "kaggle-csv"


def test_kaggle_folders_read_as_class_folders(rows, tmp_path):
    source = datagen.write_kaggle_folders(rows, tmp_path / "folders")

    data = prepare(source, tmp_path, layout="class-folders")

    assert data.info["layout"] == "class-folders"
    assert data.info["protocol"] == "holdout"
    held_out = rows.subset(("PublicTest", "PrivateTest"))
    assert datagen.split_content(*data.split_arrays(TEST)[:2]) == datagen.split_content(held_out.images, held_out.labels)
