"""prepare_dataset end to end: info keys, cache, fingerprints, source resolution and quality findings."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

import datagen
from fer.constants import CLASS_NAMES, TEST, TRAIN, VAL
from fer.data.dataset import load_prepared, normalization_stats
from fer.data.prepare import prepare_dataset, resolve_data_source, source_fingerprint

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FER2013 = PROJECT_ROOT / "data" / "fer2013"

INFO_KEYS = {
    "source", "source_name", "layout", "protocol", "val_fraction", "split_seed", "mean", "std", "image_size",
    "class_names", "split_sizes", "class_counts", "majority_class", "majority_baseline", "majority_baseline_test",
    "test_labeled", "quality", "content_hash", "skipped_files",
}


@pytest.fixture(scope="module")
def rows() -> datagen.Rows:
    return datagen.make_rows((10, 3, 3), seed=11)


def test_plain_folder_tree_name(rows, tmp_path):
    source = datagen.write_kaggle_folders(rows, tmp_path / "faces", prefixes=False)

    data = prepare_dataset(source, tmp_path / "out.npz")

    assert data.info["layout"] == "kaggle-folders"
    assert data.info["protocol"] == "holdout"
    assert data.info["source_name"] == f"class folders ({source})"


def test_info_has_every_key(rows, tmp_path):
    source = datagen.write_kaggle_csv(rows, tmp_path / "fer2013.csv")

    data = prepare_dataset(source, tmp_path / "out.npz")

    assert INFO_KEYS <= set(data.info)
    assert data.info["source"] == str(source)
    assert data.info["source_name"] == f"FER2013 ({source})"
    assert data.info["class_names"] == list(CLASS_NAMES)
    assert data.info["split_sizes"] == {"train": 70, "val": 21, "test": 21}
    assert data.info["test_labeled"] is True
    assert data.info["skipped_files"] == []
    for key in ("duplicates_within", "duplicates_across", "conflicting_labels_across", "blank_images", "image_stats", "warnings"):
        assert key in data.info["quality"], key


def test_statistics_follow_training_split(rows, tmp_path):
    source = datagen.write_kaggle_csv(rows, tmp_path / "fer2013.csv")

    data = prepare_dataset(source, tmp_path / "out.npz")

    mean, std = normalization_stats(data.images[data.splits == TRAIN])
    assert data.info["mean"] == pytest.approx(mean)
    assert data.info["std"] == pytest.approx(std)
    train_counts = np.bincount(data.labels[data.splits == TRAIN], minlength=7)
    assert data.info["majority_class"] == CLASS_NAMES[int(np.argmax(train_counts))]
    assert data.info["majority_baseline"] == pytest.approx(train_counts.max() / train_counts.sum())
    test_labels = data.labels[data.splits == TEST]
    expected_test = np.mean(test_labels == CLASS_NAMES.index(data.info["majority_class"]))
    assert data.info["majority_baseline_test"] == pytest.approx(expected_test)


def test_written_file_matches_result(rows, tmp_path):
    source = datagen.write_kaggle_csv(rows, tmp_path / "fer2013.csv")

    data = prepare_dataset(source, tmp_path / "out.npz")
    loaded = load_prepared(tmp_path / "out.npz")

    assert np.array_equal(loaded.images, data.images)
    assert np.array_equal(loaded.splits, data.splits)
    assert loaded.info == data.info


def test_cache_reused_without_reading(rows, tmp_path, monkeypatch):
    source = datagen.write_kaggle_folders(rows, tmp_path / "folders")
    cache = tmp_path / "cache"
    first = prepare_dataset(source, tmp_path / "a.npz", cache_dir=cache)
    assert (cache / f"{first.info['content_hash']}.npz").is_file()

    def fail(*args, **kwargs):
        raise AssertionError("the source was read again despite a cached result")

    monkeypatch.setattr("fer.data.prepare.read_layout", fail)
    second = prepare_dataset(source, tmp_path / "b.npz", cache_dir=cache)

    assert np.array_equal(second.images, first.images)
    assert second.info == first.info
    assert (tmp_path / "b.npz").read_bytes() == (cache / f"{first.info['content_hash']}.npz").read_bytes()


def test_cache_key_follows_content_and_settings(rows, tmp_path):
    source = datagen.write_kaggle_folders(rows, tmp_path / "folders")
    cache = tmp_path / "cache"
    first = prepare_dataset(source, tmp_path / "a.npz", cache_dir=cache)
    other_seed = prepare_dataset(source, tmp_path / "b.npz", cache_dir=cache, split_seed=1)

    victim = sorted(source.rglob("Training_*.png"))[0]
    datagen.save_image(np.full((48, 48), 77, np.uint8), victim)
    changed = prepare_dataset(source, tmp_path / "c.npz", cache_dir=cache)

    keys = {first.info["content_hash"], other_seed.info["content_hash"], changed.info["content_hash"]}
    assert len(keys) == 3
    assert len(list(cache.glob("*.npz"))) == 3
    assert changed.info["quality"]["blank_images"]["train"] == 1


def test_cache_hit_from_moved_source_records_new_path(rows, tmp_path):
    source = datagen.write_kaggle_csv(rows, tmp_path / "first" / "fer2013.csv")
    cache = tmp_path / "cache"
    prepare_dataset(source, tmp_path / "a.npz", cache_dir=cache)
    moved = tmp_path / "second" / "fer2013.csv"
    moved.parent.mkdir()
    source.rename(moved)

    data = prepare_dataset(moved, tmp_path / "b.npz", cache_dir=cache)

    assert data.info["source"] == str(moved)
    assert load_prepared(tmp_path / "b.npz").info["source"] == str(moved)
    assert len(list(cache.glob("*.npz"))) == 1


def test_unreadable_cache_file_is_rebuilt(rows, tmp_path, caplog):
    source = datagen.write_kaggle_csv(rows, tmp_path / "fer2013.csv")
    cache = tmp_path / "cache"
    first = prepare_dataset(source, tmp_path / "a.npz", cache_dir=cache)
    cache_file = cache / f"{first.info['content_hash']}.npz"
    cache_file.write_bytes(b"broken")

    with caplog.at_level(logging.WARNING):
        again = prepare_dataset(source, tmp_path / "b.npz", cache_dir=cache)

    assert "unreadable cache file" in caplog.text
    assert np.array_equal(again.images, first.images)
    assert load_prepared(cache_file).info["content_hash"] == first.info["content_hash"]


def test_fingerprint_tracks_files_and_settings(rows, tmp_path):
    source = datagen.write_kaggle_folders(rows, tmp_path / "folders")
    base = source_fingerprint(str(source), image_size=None)

    assert source_fingerprint(str(source), image_size=None) == base
    assert source_fingerprint(str(source), image_size=32) != base

    victim = sorted(source.rglob("*.png"))[3]
    stat = victim.stat()
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    touched = source_fingerprint(str(source), image_size=None)
    assert touched != base

    (source / "train" / "happy" / "Training_99999.png").write_bytes(victim.read_bytes())
    assert source_fingerprint(str(source), image_size=None) != touched


def test_fingerprint_of_csv_file_tracks_partner(rows, tmp_path):
    folder = datagen.write_torchvision_csv(rows, tmp_path / "fer2013")
    base = source_fingerprint(str(folder / "train.csv"))

    with open(folder / "test.csv", "a") as stream:
        stream.write(datagen.pixels_field(rows.images[0]) + "\n")

    assert source_fingerprint(str(folder / "train.csv")) != base


def test_fingerprint_of_demo_uses_settings():
    assert source_fingerprint("demo", demo_size=100) == source_fingerprint("demo", demo_size=100)
    assert source_fingerprint("demo", demo_size=100) != source_fingerprint("demo", demo_size=200)


def test_resolve_data_source(tmp_path):
    assert resolve_data_source("demo", tmp_path) == "demo"
    assert resolve_data_source("auto", tmp_path) == "demo"

    (tmp_path / "data" / "fer2013").mkdir(parents=True)
    assert resolve_data_source("auto", tmp_path) == str(tmp_path / "data" / "fer2013")

    (tmp_path / "mine.csv").write_text("emotion,pixels,Usage\n")
    assert resolve_data_source("mine.csv", tmp_path) == str(tmp_path / "mine.csv")
    assert resolve_data_source(str(tmp_path / "mine.csv"), "/") == str(tmp_path / "mine.csv")


def copy_of(rows: datagen.Rows, target: int, source: int, label: int | None = None) -> None:
    rows.images[target] = rows.images[source]
    if label is not None:
        rows.labels[target] = label


def test_duplicates_and_conflicts_counted(tmp_path):
    rows = datagen.make_rows((10, 3, 3), seed=21)
    training = np.flatnonzero(rows.usages == "Training")
    public = np.flatnonzero(rows.usages == "PublicTest")
    private = np.flatnonzero(rows.usages == "PrivateTest")
    copy_of(rows, public[0], training[0], label=rows.labels[training[0]])
    copy_of(rows, public[1], training[1], label=(rows.labels[training[1]] + 1) % 7)
    copy_of(rows, private[0], training[2], label=rows.labels[training[2]])
    copy_of(rows, training[3], training[4], label=(rows.labels[training[4]] + 2) % 7)
    rows.images[training[5]] = 128
    source = datagen.write_kaggle_csv(rows, tmp_path / "fer2013.csv")

    quality = prepare_dataset(source, tmp_path / "out.npz").info["quality"]

    assert quality["duplicates_across"] == {"train-val": 2, "train-test": 1, "val-test": 0}
    assert quality["conflicting_labels_across"] == {"train-val": 1, "train-test": 0, "val-test": 0}
    assert quality["duplicates_within"] == {"train": 1, "val": 0, "test": 0}
    assert quality["conflicting_labels_within"]["train"] == 1
    assert quality["blank_images"] == {"train": 1, "val": 0, "test": 0}
    assert any("2 val image(s) are exact copies of train images (1 with a different label)" in w for w in quality["warnings"])


def test_drop_cross_split_duplicates(tmp_path):
    rows = datagen.make_rows((10, 3, 3), seed=22)
    training = np.flatnonzero(rows.usages == "Training")
    public = np.flatnonzero(rows.usages == "PublicTest")
    private = np.flatnonzero(rows.usages == "PrivateTest")
    copy_of(rows, public[0], training[0])
    copy_of(rows, private[0], training[1])
    copy_of(rows, private[1], training[2])
    source = datagen.write_kaggle_csv(rows, tmp_path / "fer2013.csv")

    kept = prepare_dataset(source, tmp_path / "a.npz")
    dropped = prepare_dataset(source, tmp_path / "b.npz", drop_cross_split_duplicates=True)

    assert dropped.info["split_sizes"] == {
        "train": kept.info["split_sizes"]["train"],
        "val": kept.info["split_sizes"]["val"] - 1,
        "test": kept.info["split_sizes"]["test"] - 2,
    }
    assert dropped.info["quality"]["dropped_cross_split_duplicates"] == {"val": 1, "test": 2}
    assert dropped.info["quality"]["duplicates_across"]["train-val"] == 0
    assert dropped.info["quality"]["duplicates_across"]["train-test"] == 0
    train_bytes = {image.tobytes() for image in dropped.split_arrays(TRAIN)[0]}
    for split in (VAL, TEST):
        assert not any(image.tobytes() in train_bytes for image in dropped.split_arrays(split)[0])


def blur(image: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius=1.5)))


def test_blurred_training_images_warned(tmp_path, caplog):
    rows = datagen.make_rows((10, 3, 3), seed=23)
    clean = prepare_dataset(datagen.write_kaggle_csv(rows, tmp_path / "clean.csv"), tmp_path / "a.npz")
    for index in np.flatnonzero(rows.usages == "Training"):
        rows.images[index] = blur(rows.images[index])

    with caplog.at_level(logging.WARNING):
        blurred = prepare_dataset(datagen.write_kaggle_csv(rows, tmp_path / "blurred.csv"), tmp_path / "b.npz")

    assert not any("sharpness" in warning for warning in clean.info["quality"]["warnings"])
    sharpness_warnings = [w for w in blurred.info["quality"]["warnings"] if "sharpness" in w]
    assert len(sharpness_warnings) == 2
    assert "val images differ from train in sharpness: val is higher" in sharpness_warnings[0]
    stats = blurred.info["quality"]["image_stats"]
    assert stats["train"]["sharpness"] < stats["val"]["sharpness"] / 2
    assert "differ from train in sharpness" in caplog.text


def test_logs_each_step(rows, tmp_path, caplog):
    source = datagen.write_kaggle_csv(rows, tmp_path / "fer2013.csv")

    with caplog.at_level(logging.INFO, logger="fer.data.prepare"):
        prepare_dataset(source, tmp_path / "out.npz")

    assert "layout kaggle-csv" in caplog.text
    assert "official protocol" in caplog.text
    assert "'train': 70" in caplog.text
    assert "quality:" in caplog.text
    assert f"wrote {tmp_path / 'out.npz'}" in caplog.text


def test_demo_source(tmp_path):
    pytest.importorskip("fer.data.demo", reason="the demo generator is not written yet")

    data = prepare_dataset("demo", tmp_path / "demo.npz", demo_size=210, image_size=32)

    assert data.info["layout"] == "demo"
    assert data.info["source_name"] == "synthetic demo faces"
    assert data.info["protocol"] == "official"
    assert len(data.images) == 210
    assert data.info["image_size"] == [32, 32]


@pytest.mark.fer2013
@pytest.mark.skipif(not FER2013.is_dir(), reason="FER2013 not found under data/fer2013; extract data/fer2013.tar.gz there")
def test_real_fer2013(tmp_path):
    started = time.perf_counter()
    fingerprint = source_fingerprint(str(FER2013))
    fingerprint_seconds = time.perf_counter() - started

    data = prepare_dataset(FER2013, tmp_path / "fer2013.npz")

    assert len(fingerprint) == 64
    assert fingerprint_seconds < 1.0
    assert data.info["layout"] == "kaggle-folders"
    assert data.info["protocol"] == "official"
    assert data.info["split_sizes"] == {"train": 28709, "val": 3589, "test": 3589}
    assert data.info["class_counts"]["train"]["happy"] == 7215
    assert data.info["image_size"] == [48, 48]
    quality = data.info["quality"]
    assert sum(quality["duplicates_within"].values()) + sum(quality["duplicates_across"].values()) > 0
    assert quality["duplicates_across"]["train-test"] > 0
    assert not any("differ from train" in warning for warning in quality["warnings"])
