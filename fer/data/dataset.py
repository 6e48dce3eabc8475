"""The prepared dataset: every image of a source decoded once into arrays.

A prepared dataset is one ``.npz`` file that training cells load in well
under a second. It holds:

- ``images``: uint8 array of shape (N, H, W), grayscale;
- ``labels``: int64 array of shape (N,), class index 0-6 or ``UNLABELED``;
- ``splits``: uint8 array of shape (N,), ``TRAIN``, ``VAL`` or ``TEST``;
- ``ids``: string array of shape (N,), the image's id in its source (a file
  name, a CSV row or a course id), used in prediction files;
- ``info``: a JSON object with the source, layout, split protocol,
  normalization statistics, class counts and data-quality findings.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer.constants import CLASS_NAMES, SPLIT_NAMES, TEST, TRAIN, UNLABELED, VAL
from fer.errors import DataError
from fer.io import atomic_path


@dataclass
class PreparedData:
    images: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    ids: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        count = len(self.images)
        if not (len(self.labels) == len(self.splits) == len(self.ids) == count):
            raise ValueError("images, labels, splits and ids must have the same length")

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[1]), int(self.images.shape[2])

    def indices(self, split: int) -> np.ndarray:
        return np.flatnonzero(self.splits == split)

    def split_arrays(self, split: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the images, labels and ids of one split."""
        index = self.indices(split)
        return self.images[index], self.labels[index], self.ids[index]

    def is_labeled(self, split: int) -> bool:
        """Return whether every image of ``split`` has a label (False for an empty split)."""
        labels = self.labels[self.splits == split]
        return len(labels) > 0 and bool(np.all(labels != UNLABELED))

    def class_counts(self, split: int) -> dict[str, int]:
        labels = self.labels[(self.splits == split) & (self.labels != UNLABELED)]
        counts = np.bincount(labels, minlength=len(CLASS_NAMES))
        return {name: int(count) for name, count in zip(CLASS_NAMES, counts)}

    def split_sizes(self) -> dict[str, int]:
        return {name: int(np.sum(self.splits == code)) for code, name in enumerate(SPLIT_NAMES)}

    @property
    def mean(self) -> float:
        return float(self.info["mean"])

    @property
    def std(self) -> float:
        return float(self.info["std"])


def normalization_stats(images: np.ndarray) -> tuple[float, float]:
    """Compute the mean and standard deviation of ``images`` on a 0-1 scale.

    Accumulates in float64 over chunks, so the full FER2013 training split
    needs no float copy of its 66 M pixels.
    """
    total, total_squared, count = 0.0, 0.0, 0
    for start in range(0, len(images), 4096):
        chunk = images[start : start + 4096].astype(np.float64) / 255.0
        total += float(chunk.sum())
        total_squared += float(np.square(chunk).sum())
        count += chunk.size
    if count == 0:
        raise DataError("cannot compute normalization statistics: the training split is empty")
    mean = total / count
    std = max((total_squared / count - mean * mean) ** 0.5, 1e-6)
    return mean, std


def save_prepared(data: PreparedData, path: str | Path) -> None:
    """Write ``data`` to ``path`` atomically as an uncompressed ``.npz``."""
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as stream:
            np.savez(
                stream,
                images=np.ascontiguousarray(data.images, dtype=np.uint8),
                labels=data.labels.astype(np.int64),
                splits=data.splits.astype(np.uint8),
                ids=data.ids.astype(str),
                info=np.array(json.dumps(data.info)),
            )


def load_prepared(path: str | Path) -> PreparedData:
    """Load a prepared dataset written by :func:`save_prepared`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"prepared dataset {path} not found; run the prepare step (snakemake or 'fer prepare') first")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return PreparedData(
                images=archive["images"],
                labels=archive["labels"],
                splits=archive["splits"],
                ids=archive["ids"],
                info=json.loads(str(archive["info"])),
            )
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
        raise DataError(f"prepared dataset {path} is unreadable ({error}); delete it and prepare the data again") from error


__all__ = ["PreparedData", "RawDataset", "load_prepared", "save_prepared", "normalization_stats", "TRAIN", "VAL", "TEST"]


# Usage values of a raw dataset. The three official FER2013 names are used
# when the source gives them (the Usage column or the file-name prefix).
# "train" and "test" mark images whose source only tells which folder or file
# they came from.
OFFICIAL_USAGES = ("Training", "PublicTest", "PrivateTest")
UNKNOWN_TRAIN_USAGE, UNKNOWN_TEST_USAGE = "train", "test"


@dataclass
class RawDataset:
    """Images as read from a source, before splitting.

    ``usage`` is one of ``OFFICIAL_USAGES``, ``"train"`` or ``"test"`` per
    image. ``layout`` names the reader that produced it.
    """

    images: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    ids: np.ndarray
    source: str
    layout: str
    notes: list[str] = field(default_factory=list)
