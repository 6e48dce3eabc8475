"""Time prepare_dataset on the real FER2013: from the image folders, from the CSV, cache hit and load.

Usage: python benchmarks/prepare_benchmark.py [--data data/fer2013]

The CSV layout (fer2013.csv, emotion,pixels,Usage) is built from the image
folders in a temporary folder, so only the Kaggle image release is needed.
Without data/fer2013 the script prints why it skipped and exits with 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from fer.constants import SPLIT_NAMES
from fer.data.dataset import PreparedData, load_prepared
from fer.data.prepare import prepare_dataset, source_fingerprint

USAGE_OF_SPLIT = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as stream:
            for line in stream:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def write_kaggle_csv(data: PreparedData, path: Path) -> None:
    """Write the prepared images back as fer2013.csv, with Usage taken from the official split."""
    with open(path, "w") as stream:
        stream.write("emotion,pixels,Usage\n")
        for image, label, split in zip(data.images, data.labels, data.splits):
            usage = USAGE_OF_SPLIT[SPLIT_NAMES[split]]
            stream.write(f"{label},{' '.join(map(str, image.ravel().tolist()))},{usage}\n")


def timed(function, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def run(data_folder: Path, work: Path) -> list[tuple[str, float, str]]:
    results = []
    seconds, _ = timed(source_fingerprint, str(data_folder))
    results.append(("source_fingerprint, image folders", seconds, "35,887 stat calls"))

    seconds, folders = timed(prepare_dataset, data_folder, work / "folders.npz")
    results.append(("prepare from image folders", seconds, f"{len(folders.images):,} images, no cache"))

    csv_path = work / "csv" / "fer2013.csv"
    csv_path.parent.mkdir()
    write_kaggle_csv(folders, csv_path)
    size_mb = csv_path.stat().st_size / 1e6
    seconds, from_csv = timed(prepare_dataset, csv_path, work / "csv.npz")
    results.append(("prepare from fer2013.csv", seconds, f"{size_mb:.0f} MB CSV, no cache"))
    if from_csv.info["split_sizes"] != folders.info["split_sizes"]:
        raise SystemExit(f"split sizes differ: {from_csv.info['split_sizes']} vs {folders.info['split_sizes']}")

    cache = work / "cache"
    seconds, _ = timed(prepare_dataset, data_folder, work / "miss.npz", cache_dir=cache)
    results.append(("prepare from image folders, cache miss", seconds, "hash + read + write cache"))
    seconds, _ = timed(prepare_dataset, data_folder, work / "hit.npz", cache_dir=cache)
    results.append(("prepare from image folders, cache hit", seconds, "hash + copy"))
    seconds, _ = timed(prepare_dataset, csv_path, work / "csv_miss.npz", cache_dir=cache)
    results.append(("prepare from fer2013.csv, cache miss", seconds, "hash + read + write cache"))
    seconds, _ = timed(prepare_dataset, csv_path, work / "csv_hit.npz", cache_dir=cache)
    results.append(("prepare from fer2013.csv, cache hit", seconds, "hash + copy"))

    size_mb = (work / "hit.npz").stat().st_size / 1e6
    seconds, _ = timed(load_prepared, work / "hit.npz")
    results.append(("load_prepared", seconds, f"{size_mb:.0f} MB .npz"))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/fer2013"), help="FER2013 image folders (Kaggle layout)")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"skipped: {args.data} not found; extract FER2013 there (train/<class>/, test/<class>/) to run this benchmark")
        return 0

    # Only errors: the quality warnings of FER2013 would repeat once per prepare run.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="fer_prepare_benchmark_") as temporary:
        results = run(args.data, Path(temporary))

    print(f"machine: {os.cpu_count()} CPU(s), {cpu_model()}, Python {platform.python_version()}")
    print(f"load average at the end (1, 5, 15 min): {', '.join(f'{load:.1f}' for load in os.getloadavg())}")
    print()
    print(f"| {'step':<40} | {'seconds':>7} | notes")
    print(f"|{'-' * 42}|{'-' * 9}|{'-' * 30}")
    for step, seconds, notes in results:
        print(f"| {step:<40} | {seconds:7.2f} | {notes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
