"""Collect the metrics of every grid cell into one table and pick the best cell.

Each training run writes ``metrics.json`` and ``history.csv`` into its own
folder, ``results/runs/{arch}/{aug}/{es}/seed-{seed}/``. This module reads
them, checks that the keys the report needs are there, and turns them into
pandas tables. Model selection uses validation numbers only: the test split
is for the final score.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from fer.errors import FerError
from fer.io import atomic_open

logger = logging.getLogger(__name__)

# Grid factors of a cell, in the order the run folders nest them.
FACTORS: tuple[str, ...] = ("arch", "augmentation", "early_stopping")
CELL_KEYS: tuple[str, ...] = (*FACTORS, "seed")

# Levels of a factor that mean "technique not used". Comparisons measure the
# other levels against them, and tables and plots list them first.
REFERENCE_LEVELS: tuple[str, ...] = ("off", "none")

TABLE_COLUMNS: tuple[str, ...] = (
    *CELL_KEYS,
    "val_accuracy",
    "val_macro_f1",
    "test_accuracy",
    "test_macro_f1",
    "best_epoch",
    "epochs_run",
    "stopped_early",
    "parameters",
    "seconds",
    "device",
    "run_dir",
)

# Keys of metrics.json that the table and the report read. "test" must be
# present too, but it may be null when the test images are unlabeled.
REQUIRED_METRICS_KEYS: tuple[str, ...] = (
    "cell.arch",
    "cell.augmentation",
    "cell.early_stopping",
    "cell.seed",
    "val.accuracy",
    "val.macro_f1",
    "best_epoch",
    "epochs_run",
    "stopped_early",
    "parameters",
    "seconds",
    "device",
)
REQUIRED_SPLIT_KEYS: tuple[str, ...] = ("accuracy", "macro_f1", "per_class_recall", "confusion_matrix")
REQUIRED_HISTORY_COLUMNS: tuple[str, ...] = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc")

METRICS_FILE_NAME = "metrics.json"
HISTORY_FILE_NAME = "history.csv"


def load_metrics(path: str | Path) -> dict[str, Any]:
    """Read one ``metrics.json`` and check the keys that the table and report use.

    Raises FerError naming the file when it is missing, is not valid JSON,
    lacks a key, or contains a non-numeric score.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as stream:
            metrics = json.load(stream)
    except FileNotFoundError as error:
        raise FerError(f"metrics file {path} not found; train that grid cell again") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FerError(f"metrics file {path} is unreadable ({error}); delete it and train that grid cell again") from error

    if not isinstance(metrics, dict):
        raise FerError(f"metrics file {path} contains a JSON {type(metrics).__name__}, expected an object; train that grid cell again")

    _check_metrics_keys(metrics, path)
    return metrics


def _check_metrics_keys(metrics: Mapping[str, Any], path: Path) -> None:
    missing = [key for key in REQUIRED_METRICS_KEYS if not _has_key(metrics, key)]
    if "test" not in metrics:
        missing.append("test")
    if missing:
        raise FerError(
            f"metrics file {path} lacks the key(s) {', '.join(missing)}; "
            "it was written by another version of the training code, so train that grid cell again"
        )

    for split in ("val", "test"):
        scores = metrics[split]
        if scores is None and split == "test":
            continue
        if not isinstance(scores, dict):
            raise FerError(f"metrics file {path}: '{split}' is {scores!r}, expected an object with {', '.join(REQUIRED_SPLIT_KEYS)}")
        for key in REQUIRED_SPLIT_KEYS:
            if key not in scores:
                raise FerError(f"metrics file {path} lacks the key {split}.{key}; train that grid cell again")
        for key in ("accuracy", "macro_f1"):
            if not _is_number(scores[key]):
                raise FerError(f"metrics file {path}: {split}.{key} is {scores[key]!r}, expected a number between 0 and 1")


def _has_key(metrics: Mapping[str, Any], dotted_key: str) -> bool:
    node: Any = metrics
    for part in dotted_key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _factor_level(value: Any) -> str:
    # YAML 1.1 reads on/off as booleans, so a config may hand them over as such.
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def metrics_to_row(metrics: Mapping[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """Flatten checked metrics (see :func:`load_metrics`) into one table row."""
    cell = metrics["cell"]
    test = metrics["test"] or {}
    return {
        "arch": _factor_level(cell["arch"]),
        "augmentation": _factor_level(cell["augmentation"]),
        "early_stopping": _factor_level(cell["early_stopping"]),
        "seed": int(cell["seed"]),
        "val_accuracy": float(metrics["val"]["accuracy"]),
        "val_macro_f1": float(metrics["val"]["macro_f1"]),
        "test_accuracy": float(test.get("accuracy", math.nan)),
        "test_macro_f1": float(test.get("macro_f1", math.nan)),
        "best_epoch": int(metrics["best_epoch"]),
        "epochs_run": int(metrics["epochs_run"]),
        "stopped_early": bool(metrics["stopped_early"]),
        "parameters": int(metrics["parameters"]),
        "seconds": float(metrics["seconds"]),
        "device": str(metrics["device"]),
        "run_dir": str(run_dir),
    }


def collect_runs(metrics_paths: Sequence[str | Path]) -> pd.DataFrame:
    """Build the ablation table: one row per grid cell, columns ``TABLE_COLUMNS``.

    ``test_accuracy`` and ``test_macro_f1`` are NaN for cells whose test split
    is unlabeled. Rows are sorted by arch, augmentation, early stopping and
    seed. Raises FerError for an empty list, an unreadable file or two files
    of the same cell.
    """
    if not metrics_paths:
        raise FerError("no metrics.json files to collect; train at least one grid cell first")

    rows = []
    seen: dict[tuple, Path] = {}
    for path in map(Path, metrics_paths):
        row = metrics_to_row(load_metrics(path), run_dir=path.parent)
        cell = tuple(row[key] for key in CELL_KEYS)
        if cell in seen:
            raise FerError(f"metrics files {seen[cell]} and {path} describe the same grid cell {cell}; delete the stale one")
        seen[cell] = path
        rows.append(row)

    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    table = table.sort_values(list(CELL_KEYS), kind="stable").reset_index(drop=True)
    logger.info("collected %d runs from %d metrics files", len(table), len(metrics_paths))
    return table


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Average the scores of each arch x augmentation x early-stopping setting over its seeds.

    Returns one row per setting with ``seeds`` (the count), and ``*_mean``
    and ``*_std`` for validation and test accuracy and macro-F1. The standard
    deviation is the sample one, so it is NaN for a single seed. Further
    columns: the mean epochs run, how many runs stopped early, the parameter
    count and the mean seconds per run.
    """
    _check_table(table)
    scores = ["val_accuracy", "val_macro_f1", "test_accuracy", "test_macro_f1"]
    grouped = table.groupby(list(FACTORS), sort=True)

    summary = grouped[scores].agg(["mean", "std"])
    summary.columns = [f"{score}_{statistic}" for score, statistic in summary.columns]
    summary.insert(0, "seeds", grouped["seed"].nunique())
    summary["epochs_run_mean"] = grouped["epochs_run"].mean()
    summary["stopped_early_runs"] = grouped["stopped_early"].sum().astype(int)
    summary["parameters"] = grouped["parameters"].max()
    summary["seconds_mean"] = grouped["seconds"].mean()
    return summary.reset_index()


def select_best(table: pd.DataFrame) -> pd.Series:
    """Return the row with the highest validation accuracy.

    Ties go to the higher validation macro-F1, then to the model with fewer
    parameters, then to the first row in table order. Test scores are never
    looked at, so the final test number stays unbiased.
    """
    _check_table(table)
    if table.empty:
        raise FerError("the ablation table is empty, so there is no best cell; train at least one grid cell first")

    order = table.sort_values(
        ["val_accuracy", "val_macro_f1", "parameters"],
        ascending=[False, False, True],
        kind="stable",
    )
    best = order.iloc[0]
    logger.info(
        "best cell on validation: %s (val accuracy %.4f)",
        ", ".join(f"{key}={best[key]}" for key in CELL_KEYS),
        best["val_accuracy"],
    )
    return best


def write_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write ``table`` as CSV atomically, without the index."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as stream:
        table.to_csv(stream, index=False)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table written by :func:`write_table` and check its columns."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype={key: str for key in FACTORS})
    except FileNotFoundError as error:
        raise FerError(f"ablation table {path} not found; collect the runs first") from error
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise FerError(f"ablation table {path} is unreadable ({error}); delete it and collect the runs again") from error
    _check_table(table, source=str(path))
    return table


def read_history(path: str | Path) -> pd.DataFrame:
    """Read one run's ``history.csv``, one row per epoch.

    The ``event`` column is filled with empty strings when absent. Raises
    FerError naming the file when it is missing, unreadable or lacks a column.
    """
    path = Path(path)
    try:
        history = pd.read_csv(path, dtype={"event": str})
    except FileNotFoundError as error:
        raise FerError(f"history file {path} not found; train that grid cell again") from error
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise FerError(f"history file {path} is unreadable ({error}); delete it and train that grid cell again") from error

    missing = [column for column in REQUIRED_HISTORY_COLUMNS if column not in history.columns]
    if missing:
        raise FerError(
            f"history file {path} lacks the column(s) {', '.join(missing)}; "
            f"expected at least {', '.join(REQUIRED_HISTORY_COLUMNS)}"
        )
    if "event" not in history.columns:
        history["event"] = ""
    history["event"] = history["event"].fillna("").astype(str)
    return history


def collect_histories(runs: pd.DataFrame) -> pd.DataFrame:
    """Stack the ``history.csv`` of each run in ``runs`` into one long table.

    Each epoch row gets the run's cell keys. A run that stopped early but
    whose history has no "stopped" event gets one on its last epoch, so
    plots can mark where training stopped.
    """
    _check_table(runs)
    frames = []
    for _, run in runs.iterrows():
        history = read_history(Path(run["run_dir"]) / HISTORY_FILE_NAME)
        for key in CELL_KEYS:
            history[key] = run[key]
        if bool(run["stopped_early"]) and not history["event"].str.contains("stopped", regex=False).any() and len(history):
            history.loc[history.index[-1], "event"] = "stopped"
        frames.append(history)

    if not frames:
        return pd.DataFrame(columns=[*REQUIRED_HISTORY_COLUMNS, "event", *CELL_KEYS])
    return pd.concat(frames, ignore_index=True)


def order_levels(levels: Iterable[Any]) -> list[str]:
    """Sort factor levels as text, with the reference levels ("off", "none") first."""
    unique = {str(level) for level in levels}
    return sorted(unique, key=lambda level: (level not in REFERENCE_LEVELS, level))


def final_split(metrics: Mapping[str, Any]) -> str:
    """Name the split that gives a run's final scores: "test" when labeled, else "val"."""
    return "test" if metrics.get("test") else "val"


# Dataset-info keys that store the majority-class baseline of a split. The
# prepare step stores the training prior and the test accuracy only.
STORED_BASELINE_KEYS = {"train": "majority_baseline", "test": "majority_baseline_test"}


def majority_baseline(data_info: Mapping[str, Any], split: str) -> float | None:
    """Return the accuracy of always predicting the training majority class on ``split``.

    Uses the value stored in the dataset info when there is one (see
    ``STORED_BASELINE_KEYS``), else computes it from ``class_counts``.
    Returns None when neither is available or the split has no labels.
    """
    stored_key = STORED_BASELINE_KEYS.get(split)
    if stored_key and _is_number(data_info.get(stored_key)):
        return float(data_info[stored_key])

    counts = (data_info.get("class_counts") or {}).get(split) or {}
    majority_class = data_info.get("majority_class")
    total = sum(counts.values())
    if not majority_class or majority_class not in counts or total == 0:
        return None
    return counts[majority_class] / total


def _check_table(table: pd.DataFrame, source: str = "the ablation table") -> None:
    missing = [column for column in TABLE_COLUMNS if column not in table.columns]
    if missing:
        raise FerError(f"{source} lacks the column(s) {', '.join(missing)}; build it with fer.aggregate.collect_runs")
