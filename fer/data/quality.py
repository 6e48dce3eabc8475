"""Data-quality findings of a split dataset: duplicates, label conflicts, blank images, distribution shift.

FER2013 is known to contain exact duplicates, some of them across the
official splits and some with different labels. Duplicates between train
and test inflate test accuracy, so they are counted and can be dropped.
"""

from __future__ import annotations

import hashlib
import logging
from itertools import combinations
from typing import Any

import numpy as np

from fer.constants import SPLIT_NAMES, TRAIN, UNLABELED

logger = logging.getLogger(__name__)

# A shift of a per-image statistic between train and another split is
# reported when it is both large and unlikely to be chance: Cohen's d above
# 0.5 (Cohen's conventional "medium" effect) and Welch's |t| above 4 (a
# two-sided p below about 1e-4). The t gate keeps splits of a few dozen
# images from warning about sampling noise.
SHIFT_EFFECT_SIZE = 0.5
SHIFT_MIN_T = 4.0

# Images per chunk when computing per-image statistics in float32.
CHUNK = 4096

# How many example ids a finding lists.
MAX_EXAMPLES = 10


def image_hashes(images: np.ndarray) -> np.ndarray:
    """Hash the pixel bytes of every image (hex BLAKE2b, 128 bits)."""
    return np.array([hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest() for image in images])


def laplacian_variance(images: np.ndarray) -> np.ndarray:
    """Variance of the 4-neighbour Laplacian of each image, a standard sharpness measure.

    Images smaller than 3x3 have no interior and get 0.
    """
    if images.shape[1] < 3 or images.shape[2] < 3:
        return np.zeros(len(images))
    variances = np.empty(len(images))
    for start in range(0, len(images), CHUNK):
        x = images[start : start + CHUNK].astype(np.float32)
        laplacian = (
            x[:, :-2, 1:-1] + x[:, 2:, 1:-1] + x[:, 1:-1, :-2] + x[:, 1:-1, 2:] - 4.0 * x[:, 1:-1, 1:-1]
        )
        variances[start : start + CHUNK] = laplacian.reshape(len(x), -1).var(axis=1)
    return variances


def per_image_stats(images: np.ndarray) -> dict[str, np.ndarray]:
    """Brightness (mean), contrast (standard deviation) and sharpness of each image, on the 0-255 scale."""
    flat = images.reshape(len(images), -1)
    brightness, contrast = np.empty(len(images)), np.empty(len(images))
    for start in range(0, len(images), CHUNK):
        chunk = flat[start : start + CHUNK].astype(np.float32)
        brightness[start : start + CHUNK] = chunk.mean(axis=1)
        contrast[start : start + CHUNK] = chunk.std(axis=1)
    return {"brightness": brightness, "contrast": contrast, "sharpness": laplacian_variance(images)}


def compare_to_train(train: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """Cohen's d (other minus train, pooled standard deviation) and Welch's t of two samples."""
    if len(train) < 2 or len(other) < 2:
        return {"cohens_d": 0.0, "welch_t": 0.0}
    difference = float(other.mean() - train.mean())
    var_train, var_other = train.var(ddof=1), other.var(ddof=1)
    pooled = np.sqrt(((len(train) - 1) * var_train + (len(other) - 1) * var_other) / (len(train) + len(other) - 2))
    standard_error = np.sqrt(var_train / len(train) + var_other / len(other))
    return {
        "cohens_d": round(difference / pooled, 3) if pooled > 0 else 0.0,
        "welch_t": round(difference / standard_error, 2) if standard_error > 0 else 0.0,
    }


def count_duplicates_within(hashes: np.ndarray, labels: np.ndarray) -> tuple[int, int]:
    """Count images that repeat an earlier image, and repeated images whose copies disagree on the label."""
    unique, inverse = np.unique(hashes, return_inverse=True)
    repeats = len(hashes) - len(unique)
    conflicts = 0
    if repeats:
        labeled = labels != UNLABELED
        seen: dict[int, set[int]] = {}
        for group, label in zip(inverse[labeled], labels[labeled]):
            seen.setdefault(int(group), set()).add(int(label))
        conflicts = sum(1 for group_labels in seen.values() if len(group_labels) > 1)
    return repeats, conflicts


def count_duplicates_across(
    hashes_a: np.ndarray, labels_a: np.ndarray, hashes_b: np.ndarray, labels_b: np.ndarray
) -> tuple[int, int]:
    """Count images of b whose pixels also occur in a, and of those the labeled ones no copy in a agrees with."""
    labels_in_a: dict[str, set[int]] = {}
    for image_hash, label in zip(hashes_a.tolist(), labels_a.tolist()):
        labels_in_a.setdefault(image_hash, set()).add(label)

    shared, conflicting = 0, 0
    for image_hash, label in zip(hashes_b.tolist(), labels_b.tolist()):
        if image_hash not in labels_in_a:
            continue
        shared += 1
        known = labels_in_a[image_hash] - {UNLABELED}
        if label != UNLABELED and known and label not in known:
            conflicting += 1
    return shared, conflicting


def cross_split_duplicates(hashes: np.ndarray, splits: np.ndarray) -> np.ndarray:
    """Mask of validation and test images whose pixels also occur in the training split."""
    training = set(hashes[splits == TRAIN].tolist())
    return (splits != TRAIN) & np.isin(hashes, list(training))


def assess_quality(
    images: np.ndarray, labels: np.ndarray, splits: np.ndarray, ids: np.ndarray, hashes: np.ndarray
) -> dict[str, Any]:
    """Collect the data-quality findings of a split dataset as a JSON-ready dict with a list of warnings."""
    present = [(code, name) for code, name in enumerate(SPLIT_NAMES) if np.any(splits == code)]
    quality: dict[str, Any] = {
        "duplicates_within": {},
        "conflicting_labels_within": {},
        "duplicates_across": {},
        "conflicting_labels_across": {},
    }

    for code, name in present:
        mask = splits == code
        repeats, conflicts = count_duplicates_within(hashes[mask], labels[mask])
        quality["duplicates_within"][name] = repeats
        quality["conflicting_labels_within"][name] = conflicts

    for (code_a, name_a), (code_b, name_b) in combinations(present, 2):
        a, b = splits == code_a, splits == code_b
        shared, conflicting = count_duplicates_across(hashes[a], labels[a], hashes[b], labels[b])
        quality["duplicates_across"][f"{name_a}-{name_b}"] = shared
        quality["conflicting_labels_across"][f"{name_a}-{name_b}"] = conflicting

    stats = per_image_stats(images)
    blank = images.reshape(len(images), -1).min(axis=1) == images.reshape(len(images), -1).max(axis=1)
    quality["blank_images"] = {name: int(np.sum(blank & (splits == code))) for code, name in present}
    quality["blank_examples"] = ids[blank][:MAX_EXAMPLES].tolist()
    quality["image_stats"] = {
        name: {key: round(float(values[splits == code].mean()), 3) for key, values in stats.items()}
        for code, name in present
    }
    quality["shift_vs_train"] = shift_against_train(stats, splits, present)
    quality["warnings"] = quality_warnings(quality)
    return quality


def shift_against_train(stats: dict[str, np.ndarray], splits: np.ndarray, present: list[tuple[int, str]]) -> dict:
    """Compare each statistic of validation and test with train (Cohen's d and Welch's t).

    Sharpness is compared on a log scale because the Laplacian variance is
    heavily right-skewed.
    """
    compared = {key: (np.log1p(values) if key == "sharpness" else values) for key, values in stats.items()}
    train = splits == TRAIN
    return {
        name: {key: compare_to_train(values[train], values[splits == code]) for key, values in compared.items()}
        for code, name in present
        if code != TRAIN
    }


def quality_warnings(quality: dict[str, Any]) -> list[str]:
    warnings = []
    for pair, shared in quality["duplicates_across"].items():
        if shared:
            conflicting = quality["conflicting_labels_across"][pair]
            first, second = pair.split("-")
            fix = "; drop_cross_split_duplicates: true removes them" if first == "train" else ""
            warnings.append(
                f"{shared} {second} image(s) are exact copies of {first} images "
                f"({conflicting} with a different label){fix}"
            )
    for name, repeats in quality["duplicates_within"].items():
        if repeats:
            conflicting = quality["conflicting_labels_within"][name]
            warnings.append(
                f"{repeats} {name} image(s) repeat another {name} image "
                f"({conflicting} group(s) of copies with conflicting labels)"
            )
    for name, count in quality["blank_images"].items():
        if count:
            warnings.append(f"{count} {name} image(s) are blank (a single gray level)")
    for name, comparisons in quality["shift_vs_train"].items():
        for key, comparison in comparisons.items():
            effect = comparison["cohens_d"]
            if abs(effect) > SHIFT_EFFECT_SIZE and abs(comparison["welch_t"]) > SHIFT_MIN_T:
                direction = "higher" if effect > 0 else "lower"
                train_mean, other_mean = quality["image_stats"]["train"][key], quality["image_stats"][name][key]
                warnings.append(
                    f"{name} images differ from train in {key}: {name} is {direction} by Cohen's d = {effect:+.2f} "
                    f"(mean train {train_mean:.1f}, {name} {other_mean:.1f}); "
                    "check that both went through the same preprocessing"
                )
    return warnings
