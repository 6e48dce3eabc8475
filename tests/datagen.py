"""Build small FER2013 sources in every supported layout from the same rows.

Tests import these helpers to check that each layout reads back the same
images, labels and splits. ``make_rows`` draws smooth random images (a
low-resolution random field scaled up, plus mild noise), so that JPEG files
stay close to the original pixels and blurring visibly lowers sharpness.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from fer.constants import CLASS_NAMES, NUM_CLASSES

USAGES = ("Training", "PublicTest", "PrivateTest")


@dataclass
class Rows:
    """Images (N, H, W) uint8 with their class labels and FER2013 Usage values."""

    images: np.ndarray
    labels: np.ndarray
    usages: np.ndarray

    def subset(self, usages: tuple[str, ...]) -> "Rows":
        mask = np.isin(self.usages, usages)
        return Rows(self.images[mask], self.labels[mask], self.usages[mask])


def smooth_images(count: int, size: int, rng: np.random.Generator) -> np.ndarray:
    images = np.empty((count, size, size), dtype=np.uint8)
    for index in range(count):
        coarse = rng.integers(30, 226, size=(6, 6), dtype=np.uint8)
        upscaled = np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC), dtype=np.float64)
        noisy = upscaled + rng.normal(0.0, 4.0, size=(size, size))
        images[index] = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    return images


def make_rows(per_class: tuple[int, int, int] = (10, 3, 3), *, size: int = 48, seed: int = 0) -> Rows:
    """Draw ``per_class[i]`` images of every class for each Usage (Training, PublicTest, PrivateTest).

    The default gives 70 + 21 + 21 = 112 rows, shuffled so that the usages interleave.
    """
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.tile(np.arange(NUM_CLASSES), count) for count in per_class])
    usages = np.concatenate([[usage] * (count * NUM_CLASSES) for usage, count in zip(USAGES, per_class)])
    order = rng.permutation(len(labels))
    images = smooth_images(len(labels), size, rng)
    return Rows(images=images, labels=labels[order].astype(np.int64), usages=usages[order])


def pixels_field(image: np.ndarray) -> str:
    return " ".join(str(value) for value in image.ravel().tolist())


def write_kaggle_csv(rows: Rows, path: Path) -> Path:
    """Write fer2013.csv: emotion,pixels,Usage."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["emotion", "pixels", "Usage"])
        for image, label, usage in zip(rows.images, rows.labels, rows.usages):
            writer.writerow([int(label), pixels_field(image), usage])
    return path


def write_icml_csv(rows: Rows, path: Path) -> Path:
    """Write icml_face_data.csv, whose header is 'emotion, Usage, pixels' with leading spaces."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as stream:
        stream.write("emotion, Usage, pixels\n")
        for image, label, usage in zip(rows.images, rows.labels, rows.usages):
            stream.write(f"{int(label)},{usage},{pixels_field(image)}\n")
    return path


def write_torchvision_csv(rows: Rows, folder: Path) -> Path:
    """Write torchvision's fer2013/train.csv (Training rows) and unlabeled test.csv (the other rows)."""
    folder.mkdir(parents=True, exist_ok=True)
    train, test = rows.subset(("Training",)), rows.subset(("PublicTest", "PrivateTest"))
    with open(folder / "train.csv", "w", newline="") as stream:
        stream.write("emotion,pixels\n")
        for image, label in zip(train.images, train.labels):
            stream.write(f'{int(label)},"{pixels_field(image)}"\n')
    with open(folder / "test.csv", "w", newline="") as stream:
        stream.write("pixels\n")
        for image in test.images:
            stream.write(f"{pixels_field(image)}\n")
    return folder


def save_image(image: np.ndarray, path: Path, *, quality: int = 95) -> None:
    """Save a uint8 array as an image; an (H, W, 3) array is saved as RGB."""
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(image)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        picture.save(path, quality=quality)
    else:
        picture.save(path)


def write_kaggle_folders(rows: Rows, folder: Path, *, extension: str = "png", prefixes: bool = True) -> Path:
    """Write train/<class>/Training_<n>.<ext> and test/<class>/PublicTest_<n>.<ext> or PrivateTest_<n>.<ext>.

    Without ``prefixes`` the files are named <n>.<ext>, so the Usage is unknown.
    """
    for index, (image, label, usage) in enumerate(zip(rows.images, rows.labels, rows.usages)):
        split_folder = "train" if usage == "Training" else "test"
        name = f"{usage}_{index:05d}.{extension}" if prefixes else f"{index:05d}.{extension}"
        save_image(image, folder / split_folder / CLASS_NAMES[label] / name)
    return folder


def write_class_folders(
    rows: Rows,
    folder: Path,
    *,
    split_names: dict[str, str] | None = None,
    rgb: bool = False,
    extension: str = "png",
) -> Path:
    """Write <split>/<Class>/<n>.<ext>, with split folder names mapped from the Usage values.

    The default maps Training, PublicTest and PrivateTest to train, val and
    test. Class folder names are capitalized to check that case is ignored.
    With ``rgb`` each image is written as RGB with equal channels.
    """
    split_names = split_names or {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
    for index, (image, label, usage) in enumerate(zip(rows.images, rows.labels, rows.usages)):
        pixels = np.repeat(image[:, :, None], 3, axis=2) if rgb else image
        path = folder / split_names[usage] / CLASS_NAMES[label].capitalize() / f"{index:05d}.{extension}"
        save_image(pixels, path)
    return folder


@dataclass
class CourseData:
    folder: Path
    train_ids: list[str]
    train_labels: np.ndarray
    test_ids: list[str]


def write_course(folder: Path, *, train_per_class: int = 6, test_count: int = 12, size: int = 64, seed: int = 1) -> CourseData:
    """Write the course layout: train.csv (id,label) with ids from 10000, train/<id>.jpg and unlabeled test/<id>.jpg from 7000."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(NUM_CLASSES), train_per_class)
    train_ids = [str(10000 + index) for index in range(len(labels))]
    test_ids = [str(7000 + index) for index in range(test_count)]
    images = smooth_images(len(labels) + test_count, size, rng)

    for image_id, image in zip(train_ids, images):
        save_image(image, folder / "train" / f"{image_id}.jpg")
    for image_id, image in zip(test_ids, images[len(labels) :]):
        save_image(image, folder / "test" / f"{image_id}.jpg")
    with open(folder / "train.csv", "w", newline="") as stream:
        stream.write("id,label\n")
        for image_id, label in zip(train_ids, labels):
            stream.write(f"{image_id},{label}\n")
    return CourseData(folder=folder, train_ids=train_ids, train_labels=labels, test_ids=test_ids)


def split_content(images: np.ndarray, labels: np.ndarray) -> list[tuple[int, bytes]]:
    """Sorted (label, pixel bytes) pairs: a split's content regardless of its order."""
    return sorted((int(label), image.tobytes()) for image, label in zip(images, labels))

