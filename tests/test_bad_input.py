"""Each kind of bad input raises one clear error and leaves no output or cache file behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import datagen
from fer.data.prepare import prepare_dataset, resolve_data_source
from fer.errors import ConfigError, DataError, FerError


@pytest.fixture(scope="module")
def rows() -> datagen.Rows:
    return datagen.make_rows((2, 1, 1), seed=5)


def prepare_fails(source: Path, tmp_path: Path, error_type: type[FerError] = DataError, **settings) -> str:
    """Run prepare_dataset, expect ``error_type``, check nothing was written and return the message."""
    out = tmp_path / "prepared" / "data.npz"
    cache = tmp_path / "cache"
    with pytest.raises(error_type) as error:
        prepare_dataset(source, out, cache_dir=cache, **settings)
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir()), "temporary output left behind"
    assert not cache.exists() or not any(cache.iterdir()), "cache file left behind"
    return str(error.value)


def write_csv_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def kaggle_lines(rows: datagen.Rows) -> list[str]:
    body = [f"{label},{datagen.pixels_field(image)},{usage}" for image, label, usage in zip(rows.images, rows.labels, rows.usages)]
    return ["emotion,pixels,Usage"] + body


def test_missing_dataset_path(tmp_path):
    message = prepare_fails(tmp_path / "no_such_folder", tmp_path)

    assert "no_such_folder" in message
    assert "not found" in message
    assert "demo" in message


def test_resolve_missing_path_names_config_key(tmp_path):
    with pytest.raises(DataError) as error:
        resolve_data_source("data/fer2031", project_root=tmp_path)

    message = str(error.value)
    assert "'data'" in message
    assert "data/fer2031" in message
    assert "Download FER2013" in message
    assert "data: demo" in message


def test_no_recognizable_layout(tmp_path):
    source = tmp_path / "downloads"
    (source / "pictures").mkdir(parents=True)
    datagen.save_image(np.zeros((48, 48), np.uint8), source / "pictures" / "face.png")
    (source / "notes.txt").write_text("nothing here")

    message = prepare_fails(source, tmp_path)

    assert "no recognizable dataset" in message
    assert "notes.txt" in message
    assert "pictures/" in message
    assert "emotion,pixels,Usage" in message
    assert "train/<class>/" in message
    assert "id,label" in message


def test_empty_csv_file(tmp_path):
    source = tmp_path / "fer2013.csv"
    source.write_bytes(b"")

    message = prepare_fails(source, tmp_path)

    assert str(source) in message
    assert "empty" in message


def test_csv_with_header_only(tmp_path):
    source = write_csv_lines(tmp_path / "fer2013.csv", ["emotion,pixels,Usage"])

    message = prepare_fails(source, tmp_path)

    assert str(source) in message
    assert "no data rows" in message


def test_misspelled_column_suggests_name(rows, tmp_path):
    lines = kaggle_lines(rows)
    lines[0] = "emotion,pixel,Usage"
    source = write_csv_lines(tmp_path / "data" / "fer2013.csv", lines)

    message = prepare_fails(source.parent, tmp_path)

    assert str(source) in message
    assert "line 1" in message
    assert "'pixel'" in message
    assert "did you mean 'pixels'" in message


def test_missing_column_named(rows, tmp_path):
    lines = [line.rsplit(",", 1)[0] for line in kaggle_lines(rows)]
    lines[0] = "emotion,usage_notes"
    source = write_csv_lines(tmp_path / "fer2013.csv", lines)

    message = prepare_fails(source, tmp_path)

    assert str(source) in message
    assert "missing column(s) 'pixels'" in message
    assert "'usage_notes'" in message


def test_pixels_wrong_count(rows, tmp_path):
    lines = kaggle_lines(rows)
    label, pixels, usage = lines[3].split(",")
    lines[3] = f"{label},{pixels.rsplit(' ', 1)[0]},{usage}"
    source = write_csv_lines(tmp_path / "fer2013.csv", lines)

    message = prepare_fails(source, tmp_path)

    assert str(source) in message
    assert "'pixels'" in message
    assert "line 4: 2303 values instead of 2304" in message
    assert "1 row(s)" in message


def test_pixels_non_numeric(rows, tmp_path):
    lines = kaggle_lines(rows)
    label, pixels, usage = lines[5].split(",")
    lines[5] = f"{label},{pixels.replace(' ', ' abc ', 1)},{usage}"
    source = write_csv_lines(tmp_path / "fer2013.csv", lines)

    message = prepare_fails(source, tmp_path)

    assert "line 6: value 'abc' is not an integer" in message


def test_pixel_value_above_255(rows, tmp_path):
    lines = kaggle_lines(rows)
    label, pixels, usage = lines[2].split(",")
    lines[2] = f"{label},256 {pixels.split(' ', 1)[1]},{usage}"
    source = write_csv_lines(tmp_path / "fer2013.csv", lines)

    message = prepare_fails(source, tmp_path)

    assert "line 3: value 256 is outside 0-255" in message


def test_label_out_of_range(rows, tmp_path):
    lines = kaggle_lines(rows)
    lines[7] = "7" + lines[7][1:]
    source = write_csv_lines(tmp_path / "fer2013.csv", lines)

    message = prepare_fails(source, tmp_path)

    assert str(source) in message
    assert "'emotion'" in message
    assert "line 8: '7' is outside 0-6" in message


def test_label_not_integer(rows, tmp_path):
    lines = kaggle_lines(rows)
    lines[2] = "happy" + lines[2][1:]
    lines[9] = "2.5" + lines[9][1:]
    source = write_csv_lines(tmp_path / "fer2013.csv", lines)

    message = prepare_fails(source, tmp_path)

    assert "2 row(s)" in message
    assert "line 3: 'happy' is not an integer" in message
    assert "line 10: '2.5' is not an integer" in message


def test_unknown_usage_value(rows, tmp_path):
    lines = kaggle_lines(rows)
    lines[4] = lines[4].rsplit(",", 1)[0] + ",Validation"
    source = write_csv_lines(tmp_path / "fer2013.csv", lines)

    message = prepare_fails(source, tmp_path)

    assert "'Usage'" in message
    assert "line 5: 'Validation' is not one of Training, PublicTest, PrivateTest" in message


def test_course_id_without_image(tmp_path):
    course = datagen.write_course(tmp_path / "course", train_per_class=2, test_count=2)
    (course.folder / "train" / f"{course.train_ids[3]}.jpg").unlink()

    message = prepare_fails(course.folder, tmp_path)

    assert str(course.folder / "train.csv") in message
    assert f"line 5: id '{course.train_ids[3]}' has no image" in message
    assert str(course.folder / "train") in message


def test_course_image_without_row(tmp_path):
    course = datagen.write_course(tmp_path / "course", train_per_class=2, test_count=2)
    extra = course.folder / "train" / "19999.jpg"
    datagen.save_image(np.full((64, 64), 90, np.uint8), extra)

    message = prepare_fails(course.folder, tmp_path)

    assert "1 image(s)" in message
    assert str(extra) in message
    assert "train.csv" in message


def test_course_duplicate_id(tmp_path):
    course = datagen.write_course(tmp_path / "course", train_per_class=2, test_count=2)
    labels_csv = course.folder / "train.csv"
    labels_csv.write_text(labels_csv.read_text() + f"{course.train_ids[0]},3\n")

    message = prepare_fails(course.folder, tmp_path)

    assert str(labels_csv) in message
    assert f"id '{course.train_ids[0]}' already appears on line 2" in message


def test_corrupt_images_all_listed(rows, tmp_path):
    source = datagen.write_kaggle_folders(rows, tmp_path / "folders")
    images = sorted(source.rglob("*.png"))
    broken = images[:12]
    for path in broken:
        path.write_bytes(b"not an image at all")

    message = prepare_fails(source, tmp_path)

    assert "12 image file(s) are corrupt" in message
    listed = [path for path in broken if str(path) in message]
    assert len(listed) == 10
    assert "and 2 more" in message
    assert "on_corrupt: skip" in message


def test_truncated_image(rows, tmp_path):
    source = datagen.write_kaggle_folders(rows, tmp_path / "folders", extension="jpg")
    victim = sorted(source.rglob("*.jpg"))[4]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])

    message = prepare_fails(source, tmp_path)

    assert "1 image file(s) are corrupt or truncated" in message
    assert str(victim) in message


def test_skip_corrupt_records_files(rows, tmp_path):
    source = datagen.write_kaggle_folders(rows, tmp_path / "folders")
    broken = sorted(source.rglob("*.png"))[:2]
    for path in broken:
        path.write_bytes(b"\x89PNG broken")

    data = prepare_dataset(source, tmp_path / "out.npz", on_corrupt="skip")

    assert sorted(data.info["skipped_files"]) == sorted(str(path) for path in broken)
    assert len(data.images) == len(rows.labels) - 2


def test_non_image_file_in_class_folder(rows, tmp_path):
    source = datagen.write_kaggle_folders(rows, tmp_path / "folders")
    stray = source / "train" / "happy" / "labels.txt"
    stray.write_text("happy")

    message = prepare_fails(source, tmp_path)

    assert str(stray) in message
    assert "1 entry that is not an image file" in message
    assert str(source / "train" / "happy") in message


def test_unknown_class_folder(rows, tmp_path):
    source = datagen.write_kaggle_folders(rows, tmp_path / "folders")
    (source / "train" / "happy").rename(source / "train" / "hapy")

    message = prepare_fails(source, tmp_path)

    assert "unknown class folder 'hapy'" in message
    assert "did you mean 'happy'" in message
    assert str(source / "train" / "hapy") in message


def test_empty_class_folder(rows, tmp_path):
    source = datagen.write_kaggle_folders(rows, tmp_path / "folders")
    for path in (source / "test" / "disgust").iterdir():
        path.unlink()

    message = prepare_fails(source, tmp_path)

    assert str(source / "test" / "disgust") in message
    assert "contains no images" in message


def test_empty_test_split(rows, tmp_path):
    source = datagen.write_class_folders(rows.subset(("Training",)), tmp_path / "only_train", split_names={"Training": "train"})

    message = prepare_fails(source, tmp_path)

    assert "test split is empty" in message
    assert "test/" in message


def test_single_class_tree_has_no_test_split(rows, tmp_path):
    source = datagen.write_kaggle_folders(rows, tmp_path / "folders")

    message = prepare_fails(source / "train", tmp_path)

    assert str(source / "train") in message
    assert "test split is empty" in message


def test_mixed_image_sizes(rows, tmp_path):
    source = datagen.write_kaggle_folders(rows, tmp_path / "folders")
    odd = sorted((source / "train" / "fear").iterdir())[0]
    datagen.save_image(np.zeros((40, 40), np.uint8), odd)

    message = prepare_fails(source, tmp_path)

    assert "different sizes" in message
    assert "1 of 40x40" in message
    assert str(odd) in message
    assert "image_size" in message


def test_torchvision_missing_test_csv(rows, tmp_path):
    folder = datagen.write_torchvision_csv(rows, tmp_path / "fer2013")
    (folder / "test.csv").unlink()

    message = prepare_fails(folder / "train.csv", tmp_path)

    assert str(folder / "test.csv") in message
    assert "not found" in message


def test_archive_not_extracted(tmp_path):
    archive = tmp_path / "fer2013.tar.gz"
    archive.write_bytes(b"\x1f\x8b")

    message = prepare_fails(archive, tmp_path)

    assert str(archive) in message
    assert "Extract" in message


def test_usage_prefix_in_wrong_folder(rows, tmp_path):
    source = datagen.write_kaggle_folders(rows, tmp_path / "folders")
    moved = sorted((source / "train" / "sad").iterdir())[0]
    target = source / "test" / "sad" / moved.name
    moved.rename(target)

    message = prepare_fails(source, tmp_path)

    assert str(target) in message
    assert "Training" in message


def test_unknown_split_folder(rows, tmp_path):
    names = {"Training": "train", "PublicTest": "dev", "PrivateTest": "test"}
    source = datagen.write_class_folders(rows, tmp_path / "tree", split_names=names)

    message = prepare_fails(source, tmp_path)

    assert "unknown split folder 'dev'" in message
    assert "validation" in message


def test_official_protocol_needs_usage(rows, tmp_path):
    source = datagen.write_kaggle_folders(rows, tmp_path / "folders", prefixes=False)

    message = prepare_fails(source, tmp_path, ConfigError, protocol="official")

    assert "'protocol'" in message
    assert "holdout" in message


@pytest.mark.parametrize(
    ("setting", "value"),
    [("layout", "kaggle"), ("protocol", "offical"), ("on_corrupt", "ignore"), ("val_fraction", 1.5), ("image_size", 0)],
)
def test_invalid_setting_names_key(setting, value, rows, tmp_path):
    source = datagen.write_kaggle_csv(rows, tmp_path / "fer2013.csv")

    message = prepare_fails(source, tmp_path, ConfigError, **{setting: value})

    assert f"'{setting}'" in message
    assert repr(value) in message
