"""Assign every image of a raw dataset to the train, validation or test split.

Two protocols:

- ``official``: FER2013's Usage decides, Training is train, PublicTest is
  validation and PrivateTest is test;
- ``holdout``: validation is a stratified, seeded fraction of the training
  images and test is every image outside training (the test folder or file).

Model selection and early stopping use validation only. The test split is for
the final number.
"""

from __future__ import annotations

import logging

import numpy as np

from fer.constants import SPLIT_NAMES, TEST, TRAIN, UNLABELED, VAL
from fer.data.dataset import OFFICIAL_USAGES, UNKNOWN_TRAIN_USAGE, RawDataset
from fer.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

PROTOCOLS = ("auto", "official", "holdout")
OFFICIAL_SPLITS = {"Training": TRAIN, "PublicTest": VAL, "PrivateTest": TEST}
TRAINING_USAGES = ("Training", UNKNOWN_TRAIN_USAGE)


def choose_protocol(usage: np.ndarray, requested: str) -> str:
    """Resolve ``requested`` ("auto", "official" or "holdout") for a dataset's Usage values."""
    if requested not in PROTOCOLS:
        raise ConfigError(f"config key 'protocol': unknown value {requested!r}; use one of {', '.join(PROTOCOLS)}")
    present = set(np.unique(usage).tolist())
    has_official_usage = present == set(OFFICIAL_USAGES)
    if requested == "auto":
        return "official" if has_official_usage else "holdout"
    if requested == "official" and not has_official_usage:
        raise ConfigError(
            f"config key 'protocol': 'official' needs the Usage of every image (Training, PublicTest and "
            f"PrivateTest), but this source gives {', '.join(sorted(present))}; set protocol: holdout or auto"
        )
    return requested


def validate_val_fraction(val_fraction: float) -> None:
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(
            f"config key 'val_fraction': invalid value {val_fraction!r}; use a fraction between 0 and 1, "
            "for example 0.12 (12 % of the training images)"
        )


def assign_splits(
    raw: RawDataset,
    protocol: str,
    *,
    val_fraction: float,
    split_seed: int,
    hashes: np.ndarray,
) -> np.ndarray:
    """Return the split code (TRAIN, VAL or TEST) of every image of ``raw``.

    ``protocol`` must be "official" or "holdout" (see choose_protocol).
    ``hashes`` (one pixel hash per image) orders the holdout draw, so the same
    images get the same split whatever layout or file order they come from.
    """
    if protocol == "official":
        splits = np.array([OFFICIAL_SPLITS[usage] for usage in raw.usage], dtype=np.uint8)
    else:
        splits = holdout_splits(raw, val_fraction=val_fraction, split_seed=split_seed, hashes=hashes)
    check_splits(raw, splits, protocol)
    return splits


def holdout_splits(raw: RawDataset, *, val_fraction: float, split_seed: int, hashes: np.ndarray) -> np.ndarray:
    validate_val_fraction(val_fraction)
    is_training = np.isin(raw.usage, TRAINING_USAGES)
    splits = np.where(is_training, TRAIN, TEST).astype(np.uint8)

    if not np.any(splits == TEST):
        raise empty_split_error(raw, TEST, "holdout")
    pool = np.flatnonzero(is_training)
    if np.any(raw.labels[pool] == UNLABELED):
        raise DataError(f"{raw.source}: some training images have no label; every training image needs a class")
    if len(pool) < 2:
        raise DataError(
            f"{raw.source}: {len(pool)} training image(s) found; the holdout protocol needs at least 2 "
            "to hold out a validation set"
        )

    pool = pool[np.lexsort((raw.labels[pool], hashes[pool]))]
    val_index = draw_validation(pool, raw.labels[pool], val_fraction, split_seed)
    splits[val_index] = VAL
    return splits


def draw_validation(pool: np.ndarray, labels: np.ndarray, val_fraction: float, split_seed: int) -> np.ndarray:
    """Draw a stratified validation subset of ``pool``; fall back to a plain random draw with a warning."""
    # Imported here because scikit-learn takes about 2 s to import, and the
    # workflow imports this package just to compute source fingerprints.
    from sklearn.model_selection import train_test_split

    try:
        _, val_index = train_test_split(pool, test_size=val_fraction, random_state=split_seed, stratify=labels)
    except ValueError as error:
        # Stratifying fails when a class has a single image or the validation set
        # is smaller than the number of classes.
        logger.warning("validation split is not stratified (%s); drawing it at random instead", error)
        _, val_index = train_test_split(pool, test_size=val_fraction, random_state=split_seed)
    return np.asarray(val_index)


def check_splits(raw: RawDataset, splits: np.ndarray, protocol: str) -> None:
    for code in range(len(SPLIT_NAMES)):
        if not np.any(splits == code):
            raise empty_split_error(raw, code, protocol)


def empty_split_error(raw: RawDataset, code: int, protocol: str) -> DataError:
    """Build the error for an empty split, naming the part of the source that is missing."""
    if code == TEST:
        fix = (
            "the source has no test images; add a test/ folder (or test.csv) beside the training images, "
            "or point data at the folder that contains both train/ and test/"
        )
    elif code == TRAIN:
        fix = "the source has no training images; add a train/ folder (or training rows)"
    else:
        fix = "the validation split is empty; raise val_fraction or use protocol: holdout"
    return DataError(f"{raw.source}: the {SPLIT_NAMES[code]} split is empty under the {protocol} protocol: {fix}")
