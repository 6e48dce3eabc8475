"""Prepare a dataset: read any supported source, split it, check its quality and write one .npz file.

``prepare_dataset`` is what the workflow's prepare step calls. The result is
cached by the content of the source files plus the settings, so preparing
the same data again only copies the cached file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from fer.constants import CLASS_NAMES, SPLIT_NAMES, TEST, TRAIN
from fer.data.dataset import PreparedData, RawDataset, load_prepared, normalization_stats, save_prepared
from fer.data.folders import relative_name
from fer.data.images import is_hidden, validate_on_corrupt
from fer.data.layouts import LayoutPlan, detect_layout, read_layout, validate_layout_name
from fer.data.quality import assess_quality, cross_split_duplicates, image_hashes
from fer.data.splits import PROTOCOLS, assign_splits, choose_protocol, validate_val_fraction
from fer.errors import ConfigError, DataError
from fer.io import atomic_path

logger = logging.getLogger(__name__)

DEMO_SOURCE = "demo"
DEFAULT_FER2013_FOLDER = Path("data") / "fer2013"

# Part of every cache key. Raise it when a change to the readers, the split,
# the quality checks or the demo generator changes what a prepared file
# contains, because the key hashes only the source files and the settings.
PREPARED_FORMAT_VERSION = 1

FER2013_LAYOUTS = ("kaggle-csv", "icml-csv", "torchvision-csv", "kaggle-folders")

HASH_BLOCK = 1 << 20


# ----------------------------------------------------------------------------- source resolution


def resolve_data_source(value: str, project_root: str | Path = ".") -> str:
    """Resolve the config value ``data`` to "demo" or to the path of an existing dataset.

    "demo" stays "demo". "auto" means ``data/fer2013`` under ``project_root``
    when that folder exists, and the synthetic demo otherwise. Any other value
    is a folder or file path, relative to ``project_root`` unless absolute,
    and must exist.
    """
    if value == DEMO_SOURCE:
        return DEMO_SOURCE
    root = Path(project_root)
    if value == "auto":
        folder = root / DEFAULT_FER2013_FOLDER
        if folder.is_dir():
            return str(folder)
        logger.info("data: auto found no %s, so the synthetic demo dataset is used", folder)
        return DEMO_SOURCE

    path = Path(value) if Path(value).is_absolute() else root / value
    if not path.exists():
        raise DataError(
            f"config key 'data': dataset path {value!r} not found (looked at {path}). Download FER2013 and "
            f"extract it to {root / DEFAULT_FER2013_FOLDER}, fix the path, or set data: demo for synthetic faces."
        )
    return str(path)


# ----------------------------------------------------------------------------- fingerprints and content hashes


def walk_files(folder: Path) -> Iterable[os.DirEntry]:
    """Yield every non-hidden file below ``folder`` as a DirEntry, recursively."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if is_hidden(entry.name):
                continue
            if entry.is_dir():
                yield from walk_files(Path(entry.path))
            else:
                yield entry


def fingerprint_entries(source: Path) -> Iterable[os.DirEntry | Path]:
    """Files whose change can change what prepare_dataset reads from ``source``.

    For a folder this is every file below it. For a CSV file it is the file,
    its sibling files (torchvision's partner train.csv or test.csv) and the
    sibling train/ and test/ folders (the course layout's images).
    """
    if source.is_dir():
        yield from walk_files(source)
        return
    with os.scandir(source.parent) as entries:
        for entry in entries:
            if entry.is_file() and not is_hidden(entry.name):
                yield entry
    for folder in ("train", "test"):
        if (source.parent / folder).is_dir():
            yield from walk_files(source.parent / folder)


def settings_text(settings: dict[str, Any]) -> str:
    return json.dumps(settings, sort_keys=True, default=str)


def source_fingerprint(source: str, **settings: Any) -> str:
    """Hash the relative paths, sizes and modification times of the source's files, plus ``settings``.

    Reads no file content, so it takes well under a second for FER2013's
    35,887 image files. Use it as a Snakemake param so that a changed dataset
    re-runs the prepare step. Raises DataError when ``source`` does not exist.
    """
    digest = hashlib.sha256(settings_text({"source": str(source), **settings}).encode())
    if source == DEMO_SOURCE:
        return digest.hexdigest()

    path = Path(source)
    if not path.exists():
        raise DataError(f"dataset source {source!r} not found; fix the config key 'data' or use data: demo")
    base = path if path.is_dir() else path.parent
    rows = []
    for entry in fingerprint_entries(path):
        stat = entry.stat()
        rows.append(f"{relative_name(entry.path, base)}\t{stat.st_size}\t{stat.st_mtime_ns}")
    for row in sorted(rows):
        digest.update(row.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def hash_source(plan: LayoutPlan | None, settings: dict[str, Any]) -> tuple[str, dict[Path, bytes]]:
    """Compute the cache key: SHA-256 of the source files' relative paths and bytes plus the settings.

    Also returns the bytes of each image file, so that decoding does not read
    the files a second time. CSV files are hashed in blocks and not kept.
    """
    digest = hashlib.sha256(settings_text({"format": PREPARED_FORMAT_VERSION, **settings}).encode())
    contents: dict[Path, bytes] = {}
    if plan is None:
        return digest.hexdigest(), contents

    for path in plan.source_files():
        # The relative path is hashed too, because a class folder name is a label.
        digest.update(relative_name(path, plan.root).encode() + b"\0")
        if path.suffix.lower() == ".csv":
            with open(path, "rb") as stream:
                while block := stream.read(HASH_BLOCK):
                    digest.update(block)
        else:
            contents[path] = path.read_bytes()
            digest.update(contents[path])
        digest.update(b"\0")
    return digest.hexdigest(), contents


# ----------------------------------------------------------------------------- reading


def read_demo(demo_size: int, image_size: int | None) -> RawDataset:
    # Imported here so that reading real data does not depend on the demo generator.
    from fer.data.demo import generate_demo

    return generate_demo(demo_size, image_size=image_size or 48)


def describe_source(source: str, layout: str, protocol: str) -> str:
    if layout == "demo":
        return "synthetic demo faces"
    # Any train/<class>/ and test/<class>/ tree matches the Kaggle folder
    # layout; only PublicTest/PrivateTest file names show it is FER2013.
    if layout == "kaggle-folders" and protocol != "official":
        return f"class folders ({source})"
    if layout in FER2013_LAYOUTS:
        return f"FER2013 ({source})"
    if layout == "course":
        return f"course FER images ({source})"
    return f"class folders ({source})"


def validate_settings(layout: str, protocol: str, val_fraction: float, image_size: int | None, on_corrupt: str) -> None:
    validate_layout_name(layout)
    if protocol not in PROTOCOLS:
        raise ConfigError(f"config key 'protocol': unknown value {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    validate_val_fraction(val_fraction)
    validate_on_corrupt(on_corrupt)
    if image_size is not None and (not isinstance(image_size, int) or image_size < 8):
        raise ConfigError(
            f"config key 'image_size': invalid value {image_size!r}; use an integer of at least 8 "
            "(48 for FER2013) or leave it unset to keep the images' own size"
        )


# ----------------------------------------------------------------------------- building the prepared data


def drop_train_copies(
    raw: RawDataset, splits: np.ndarray, hashes: np.ndarray
) -> tuple[RawDataset, np.ndarray, np.ndarray, dict[str, int]]:
    """Remove validation and test images whose pixels also occur in train."""
    copies = cross_split_duplicates(hashes, splits)
    dropped = {name: int(np.sum(copies & (splits == code))) for code, name in enumerate(SPLIT_NAMES) if code != TRAIN}
    keep = ~copies
    kept = RawDataset(
        images=raw.images[keep], labels=raw.labels[keep], usage=raw.usage[keep], ids=raw.ids[keep],
        source=raw.source, layout=raw.layout, notes=raw.notes,
    )
    logger.info(
        "dropped %d validation and %d test image(s) that are copies of training images", dropped["val"], dropped["test"]
    )
    return kept, splits[keep], hashes[keep], dropped


def class_statistics(data: PreparedData) -> dict[str, Any]:
    """Class counts per split and the majority-class baselines."""
    counts = {name: data.class_counts(code) for code, name in enumerate(SPLIT_NAMES)}
    train_counts = np.array([counts["train"][name] for name in CLASS_NAMES])
    majority = int(np.argmax(train_counts))
    test_labels = data.labels[data.splits == TEST]
    test_labeled = data.is_labeled(TEST)
    return {
        "class_counts": counts,
        "majority_class": CLASS_NAMES[majority],
        "majority_baseline": float(train_counts[majority] / train_counts.sum()),
        "majority_baseline_test": float(np.mean(test_labels == majority)) if test_labeled else None,
        "test_labeled": test_labeled,
    }


def build_prepared(
    raw: RawDataset, *, protocol: str, val_fraction: float, split_seed: int, drop_duplicates: bool
) -> tuple[PreparedData, dict[str, Any]]:
    """Split ``raw`` and compute its normalization statistics, class counts and quality findings."""
    hashes = image_hashes(raw.images)
    protocol = choose_protocol(raw.usage, protocol)
    splits = assign_splits(raw, protocol, val_fraction=val_fraction, split_seed=split_seed, hashes=hashes)

    dropped = None
    if drop_duplicates:
        raw, splits, hashes, dropped = drop_train_copies(raw, splits, hashes)
        empty = [name for code, name in enumerate(SPLIT_NAMES) if not np.any(splits == code)]
        if empty:
            raise DataError(
                f"{raw.source}: after dropping copies of training images the {', '.join(empty)} split is empty; "
                "set drop_cross_split_duplicates: false"
            )

    data = PreparedData(images=raw.images, labels=raw.labels, splits=splits, ids=raw.ids)
    quality = assess_quality(data.images, data.labels, splits, data.ids, hashes)
    if dropped is not None:
        quality["dropped_cross_split_duplicates"] = dropped
    mean, std = normalization_stats(data.images[splits == TRAIN])
    info = {"protocol": protocol, "mean": mean, "std": std, "quality": quality, **class_statistics(data)}
    return data, info


def log_quality(quality: dict[str, Any]) -> None:
    duplicates = sum(quality["duplicates_within"].values()) + sum(quality["duplicates_across"].values())
    logger.info(
        "quality: %d duplicate image(s) within splits, %d across splits, %d blank image(s), image stats %s",
        sum(quality["duplicates_within"].values()), sum(quality["duplicates_across"].values()),
        sum(quality["blank_images"].values()), quality["image_stats"],
    )
    if not duplicates and not quality["warnings"]:
        logger.info("quality: no findings")
    for warning in quality["warnings"]:
        logger.warning("quality: %s", warning)


# ----------------------------------------------------------------------------- cache


def copy_atomically(source: Path, target: Path) -> None:
    with atomic_path(target) as temporary:
        shutil.copyfile(source, temporary)


def load_cached(cache_file: Path, source: str, out: Path) -> PreparedData | None:
    """Return the cached prepared data written to ``out``, or None when there is no usable cache file."""
    if not cache_file.is_file():
        return None
    try:
        data = load_prepared(cache_file)
    except DataError as error:
        logger.warning("ignoring unreadable cache file %s: %s", cache_file, error)
        return None

    if data.info.get("source") == source:
        copy_atomically(cache_file, out)
    else:
        # Same content under another path: keep the cache, but record the path given this time.
        data.info["source"] = source
        data.info["source_name"] = describe_source(source, data.info["layout"], data.info["protocol"])
        save_prepared(data, out)
    return data


# ----------------------------------------------------------------------------- entry point


def prepare_dataset(
    source: str | Path,
    out: str | Path,
    *,
    layout: str = "auto",
    protocol: str = "auto",
    val_fraction: float = 0.12,
    split_seed: int = 5566,
    image_size: int | None = None,
    on_corrupt: str = "error",
    drop_cross_split_duplicates: bool = False,
    demo_size: int = 3500,
    cache_dir: str | Path | None = None,
) -> PreparedData:
    """Read ``source``, split it, check its quality and write the result to ``out`` atomically.

    ``source`` is "demo" or a folder or CSV file in any layout of fer.data.layouts.
    With ``cache_dir``, the result is also stored as ``cache_dir/<content hash>.npz``
    and reused while the source files and settings are unchanged. On any error
    nothing is written, neither ``out`` nor a cache file.

    ``on_corrupt`` applies to image files only: an invalid CSV row always
    raises DataError. ``drop_cross_split_duplicates`` removes validation and
    test images whose pixels also occur in train.
    """
    started = time.perf_counter()
    source_text, out = str(source), Path(out)
    validate_settings(layout, protocol, val_fraction, image_size, on_corrupt)
    settings = {
        "layout": layout, "protocol": protocol, "val_fraction": val_fraction, "split_seed": split_seed,
        "image_size": image_size, "on_corrupt": on_corrupt, "drop_cross_split_duplicates": drop_cross_split_duplicates,
    }

    plan = None
    if source_text == DEMO_SOURCE:
        settings["demo_size"] = demo_size
    else:
        plan = detect_layout(source_text, layout)
        logger.info("source %s: layout %s, %d file(s)", source_text, plan.layout, len(plan.source_files()))
    key, contents = hash_source(plan, settings)

    cache_file = Path(cache_dir) / f"{key}.npz" if cache_dir is not None else None
    if cache_file is not None:
        cached = load_cached(cache_file, source_text, out)
        if cached is not None:
            seconds = time.perf_counter() - started
            logger.info("reused cached %s for %s; wrote %s in %.1f s", cache_file, source_text, out, seconds)
            return cached

    if plan is None:
        raw, skipped = read_demo(demo_size, image_size), []
    else:
        raw, skipped = read_layout(plan, image_size=image_size, on_corrupt=on_corrupt, contents=contents)
    logger.info(
        "read %d images of %dx%d from %s in %.1f s",
        len(raw.images), raw.images.shape[2], raw.images.shape[1], source_text, time.perf_counter() - started,
    )

    data, info = build_prepared(
        raw, protocol=protocol, val_fraction=val_fraction, split_seed=split_seed,
        drop_duplicates=drop_cross_split_duplicates,
    )
    data.info = {
        "source": source_text,
        "source_name": describe_source(source_text, raw.layout, info["protocol"]),
        "layout": raw.layout,
        "val_fraction": val_fraction,
        "split_seed": split_seed,
        "image_size": list(data.image_size),
        "class_names": list(CLASS_NAMES),
        "split_sizes": data.split_sizes(),
        "content_hash": key,
        "skipped_files": skipped,
        "notes": list(raw.notes),
        **info,
    }
    logger.info(
        "split %s with the %s protocol: %s; majority class %s (%.3f of train)",
        data.info["source_name"], data.info["protocol"], data.info["split_sizes"],
        data.info["majority_class"], data.info["majority_baseline"],
    )
    log_quality(data.info["quality"])

    if cache_file is not None:
        save_prepared(data, cache_file)
        copy_atomically(cache_file, out)
    else:
        save_prepared(data, out)
    logger.info("wrote %s in %.1f s", out, time.perf_counter() - started)
    return data
