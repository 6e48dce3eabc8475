"""Tests of fer.aggregate on run folders that the tests write themselves.

``write_fake_run`` and ``write_fake_grid`` are also used by test_plots.py and
test_report.py.
"""

from __future__ import annotations

import itertools
import json
import math
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fer.aggregate import (
    TABLE_COLUMNS,
    collect_histories,
    collect_runs,
    load_metrics,
    majority_baseline,
    order_levels,
    read_history,
    read_table,
    select_best,
    summarize,
    write_table,
)
from fer.constants import CLASS_NAMES
from fer.errors import FerError

PARAMETERS = {"cnn3": 30_471, "cnn4": 670_000, "resnet18": 11_170_000}


def fake_split_scores(rng: np.random.Generator, accuracy: float, images: int = 140) -> dict:
    """Return valid split metrics: a random confusion matrix with recall and F1 derived from it."""
    matrix = rng.integers(0, 6, size=(len(CLASS_NAMES), len(CLASS_NAMES)))
    matrix[np.diag_indices_from(matrix)] += rng.integers(5, 20, size=len(CLASS_NAMES))
    recall = np.diag(matrix) / matrix.sum(axis=1)
    return {
        "accuracy": accuracy,
        "macro_f1": round(accuracy - rng.uniform(0.02, 0.08), 4),
        "per_class_recall": {name: float(value) for name, value in zip(CLASS_NAMES, recall)},
        "confusion_matrix": matrix.tolist(),
    }


def fake_history(rng: np.random.Generator, epochs: int, stopped: bool) -> pd.DataFrame:
    epoch = np.arange(1, epochs + 1)
    train_loss = 1.9 * np.exp(-epoch / 8) + 0.2 + rng.uniform(0, 0.05, epochs)
    val_loss = 1.7 * np.exp(-epoch / 6) + 0.02 * epoch + 0.6 + rng.uniform(0, 0.05, epochs)
    history = pd.DataFrame({
        "epoch": epoch,
        "train_loss": train_loss,
        "train_acc": 1 - train_loss / 2.2,
        "val_loss": val_loss,
        "val_acc": 0.6 - 0.2 * np.exp(-epoch / 5) + rng.uniform(-0.01, 0.01, epochs),
        "lr": 0.01,
        "seconds": rng.uniform(1, 2, epochs),
        "event": "",
    })
    history.loc[int(np.argmax(history["val_acc"])), "event"] = "best"
    if stopped:
        last = history.index[-1]
        history.loc[last, "event"] = "; ".join(filter(None, [history.loc[last, "event"], "stopped: validation loss rose 5 epochs in a row"]))
    return history


def write_fake_run(
    root: Path,
    *,
    arch: str = "cnn3",
    augmentation: str = "none",
    early_stopping: str = "off",
    seed: int = 1,
    val_accuracy: float | None = None,
    val_macro_f1: float | None = None,
    test_accuracy: float | None = None,
    labeled: bool = True,
    parameters: int | None = None,
    epochs: int = 12,
    stopped: bool | None = None,
) -> Path:
    """Write metrics.json and history.csv of one cell under ``root`` and return the metrics path."""
    rng = np.random.default_rng(zlib.crc32(f"{arch}/{augmentation}/{early_stopping}/{seed}".encode()))
    run_dir = root / "runs" / arch / augmentation / early_stopping / f"seed-{seed}"
    run_dir.mkdir(parents=True)
    stopped = (early_stopping == "on") if stopped is None else stopped
    epochs_run = epochs - 3 if stopped else epochs

    val = fake_split_scores(rng, round(rng.uniform(0.3, 0.6), 4) if val_accuracy is None else val_accuracy)
    if val_macro_f1 is not None:
        val["macro_f1"] = val_macro_f1
    val["loss"] = 1.2
    test = None
    if labeled:
        test = fake_split_scores(rng, round(rng.uniform(0.3, 0.6), 4) if test_accuracy is None else test_accuracy)

    history = fake_history(rng, epochs_run, stopped)
    metrics = {
        "cell": {"arch": arch, "augmentation": augmentation, "early_stopping": early_stopping, "seed": seed},
        "val": val,
        "test": test,
        "best_epoch": int(history["val_acc"].idxmax()) + 1,
        "epochs_run": epochs_run,
        "stopped_early": stopped,
        "stop_reason": "validation loss rose 5 epochs in a row" if stopped else "",
        "parameters": PARAMETERS.get(arch, 1000) if parameters is None else parameters,
        "seconds": round(float(history["seconds"].sum()), 2),
        "device": "cpu",
        "data": {"source_name": "fake faces", "layout": "kaggle-folders", "protocol": "official"},
        "config": {
            "arch": arch, "augmentation": augmentation, "early_stopping": early_stopping, "seed": seed,
            "epochs": epochs, "lr": 0.01, "optimizer": "adam", "weight_d": 0.01, "scheduler": "step",
            "gamma": 0.5, "step": 20, "batch_size": 64, "val_batch_size": 128, "channel_num": 64,
            "early_stop_rule": "rises", "patience": 5, "min_delta": 0.0,
        },
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    history.to_csv(run_dir / "history.csv", index=False)
    return run_dir / "metrics.json"


def write_fake_grid(
    root: Path,
    *,
    archs: tuple[str, ...] = ("cnn3", "resnet18"),
    augmentations: tuple[str, ...] = ("none", "homework"),
    early_stopping: tuple[str, ...] = ("off", "on"),
    seeds: tuple[int, ...] = (1,),
    labeled: bool = True,
) -> list[Path]:
    return [
        write_fake_run(root, arch=arch, augmentation=augmentation, early_stopping=stopping, seed=seed, labeled=labeled)
        for arch, augmentation, stopping, seed in itertools.product(archs, augmentations, early_stopping, seeds)
    ]


def fake_data_info(labeled: bool = True) -> dict:
    train = {"angry": 399, "disgust": 44, "fear": 410, "happy": 722, "sad": 483, "surprise": 317, "neutral": 497}
    val = {name: max(count // 8, 1) for name, count in train.items()}
    info = {
        "source_name": "fake faces (tests)",
        "layout": "kaggle-folders",
        "protocol": "official",
        "val_fraction": 0.0,
        "mean": 0.5077,
        "std": 0.2551,
        "image_size": [48, 48],
        "class_names": list(CLASS_NAMES),
        "split_sizes": {"train": sum(train.values()), "val": sum(val.values()), "test": sum(val.values())},
        "class_counts": {"train": train, "val": val, "test": dict(val) if labeled else {}},
        "majority_class": "happy",
        "majority_baseline": train["happy"] / sum(train.values()),
        "test_labeled": labeled,
        "quality": {
            "duplicates": {"within_train": 3, "across_splits": 1},
            "blank": 2,
            "image_stats": {"train": {"brightness": 129.5, "contrast": 54.0}, "val": {"brightness": 128.9, "contrast": 54.1}},
            "warnings": ["2 blank images in train", "1 image appears in both train and test"],
        },
    }
    info["majority_baseline_test"] = val["happy"] / sum(val.values()) if labeled else None
    return info


# ---------------------------------------------------------------------------
# collect_runs
# ---------------------------------------------------------------------------


def test_collect_runs_has_one_row_per_cell(tmp_path):
    paths = write_fake_grid(tmp_path)
    table = collect_runs(paths)

    assert list(table.columns) == list(TABLE_COLUMNS)
    assert len(table) == len(paths)
    assert not table.duplicated(["arch", "augmentation", "early_stopping", "seed"]).any()


def test_collect_runs_copies_metric_values(tmp_path):
    paths = write_fake_grid(tmp_path)
    table = collect_runs(paths)

    for path in paths:
        metrics = json.loads(path.read_text())
        row = table[table["run_dir"] == str(path.parent)].iloc[0]
        assert row["val_accuracy"] == metrics["val"]["accuracy"]
        assert row["test_macro_f1"] == metrics["test"]["macro_f1"]
        assert row["epochs_run"] == metrics["epochs_run"]
        assert row["stopped_early"] == metrics["stopped_early"]
        assert row["parameters"] == metrics["parameters"]


def test_collect_runs_unlabeled_test_is_nan(tmp_path):
    table = collect_runs(write_fake_grid(tmp_path, labeled=False))

    assert table["test_accuracy"].isna().all()
    assert table["test_macro_f1"].isna().all()
    assert table["val_accuracy"].notna().all()


def test_collect_runs_boolean_levels_become_on_off(tmp_path):
    path = write_fake_run(tmp_path, early_stopping="on")
    metrics = json.loads(path.read_text())
    metrics["cell"]["early_stopping"] = True
    path.write_text(json.dumps(metrics))

    assert collect_runs([path])["early_stopping"].tolist() == ["on"]


def test_collect_runs_rejects_empty_list():
    with pytest.raises(FerError, match="no metrics.json"):
        collect_runs([])


def test_collect_runs_rejects_duplicate_cells(tmp_path):
    first = write_fake_run(tmp_path / "a", arch="cnn3", seed=3)
    second = write_fake_run(tmp_path / "b", arch="cnn3", seed=3)

    with pytest.raises(FerError, match="same grid cell") as raised:
        collect_runs([first, second])
    assert str(second) in str(raised.value)


# ---------------------------------------------------------------------------
# load_metrics errors
# ---------------------------------------------------------------------------


def test_load_metrics_missing_file_names_it(tmp_path):
    path = tmp_path / "runs" / "metrics.json"
    with pytest.raises(FerError, match="not found") as raised:
        load_metrics(path)
    assert str(path) in str(raised.value)


def test_load_metrics_invalid_json_names_file(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("{\"cell\": ", encoding="utf-8")
    with pytest.raises(FerError, match="unreadable") as raised:
        collect_runs([path])
    assert str(path) in str(raised.value)


def test_load_metrics_not_an_object(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(FerError, match="expected an object") as raised:
        load_metrics(path)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize(
    ("remove", "reported"),
    [(("val", "macro_f1"), "val.macro_f1"), (("cell", "seed"), "cell.seed"), (("epochs_run",), "epochs_run"), (("test",), "test")],
)
def test_load_metrics_missing_key_names_file_and_key(tmp_path, remove, reported):
    path = write_fake_run(tmp_path)
    metrics = json.loads(path.read_text())
    node = metrics
    for part in remove[:-1]:
        node = node[part]
    del node[remove[-1]]
    path.write_text(json.dumps(metrics))

    with pytest.raises(FerError) as raised:
        collect_runs([path])
    assert str(path) in str(raised.value)
    assert reported in str(raised.value)


def test_load_metrics_rejects_text_accuracy(tmp_path):
    path = write_fake_run(tmp_path)
    metrics = json.loads(path.read_text())
    metrics["test"]["accuracy"] = "0.5"
    path.write_text(json.dumps(metrics))

    with pytest.raises(FerError, match="test.accuracy") as raised:
        load_metrics(path)
    assert str(path) in str(raised.value)


def test_load_metrics_rejects_test_without_confusion_matrix(tmp_path):
    path = write_fake_run(tmp_path)
    metrics = json.loads(path.read_text())
    del metrics["test"]["confusion_matrix"]
    path.write_text(json.dumps(metrics))

    with pytest.raises(FerError, match="test.confusion_matrix"):
        load_metrics(path)


# ---------------------------------------------------------------------------
# select_best
# ---------------------------------------------------------------------------


def test_select_best_ignores_test_accuracy(tmp_path):
    paths = [
        write_fake_run(tmp_path, arch="cnn3", val_accuracy=0.55, test_accuracy=0.99),
        write_fake_run(tmp_path, arch="resnet18", val_accuracy=0.60, test_accuracy=0.10),
        write_fake_run(tmp_path, arch="cnn4", val_accuracy=0.58, test_accuracy=0.95),
    ]
    best = select_best(collect_runs(paths))

    assert best["arch"] == "resnet18"
    assert best["val_accuracy"] == 0.60


def test_select_best_tie_goes_to_macro_f1(tmp_path):
    paths = [
        write_fake_run(tmp_path, arch="cnn3", val_accuracy=0.6, val_macro_f1=0.50),
        write_fake_run(tmp_path, arch="resnet18", val_accuracy=0.6, val_macro_f1=0.55),
    ]
    assert select_best(collect_runs(paths))["arch"] == "resnet18"


def test_select_best_tie_goes_to_fewer_parameters(tmp_path):
    paths = [
        write_fake_run(tmp_path, arch="resnet18", val_accuracy=0.6, val_macro_f1=0.5, test_accuracy=0.9),
        write_fake_run(tmp_path, arch="cnn3", val_accuracy=0.6, val_macro_f1=0.5, test_accuracy=0.1),
    ]
    assert select_best(collect_runs(paths))["arch"] == "cnn3"


def test_select_best_empty_table_raises():
    with pytest.raises(FerError, match="empty"):
        select_best(pd.DataFrame(columns=list(TABLE_COLUMNS)))


# ---------------------------------------------------------------------------
# summarize, write_table, histories, baselines
# ---------------------------------------------------------------------------


def test_summarize_averages_over_seeds(tmp_path):
    table = collect_runs(write_fake_grid(tmp_path, archs=("cnn3",), augmentations=("none",), seeds=(1, 2, 3)))
    summary = summarize(table)

    assert len(summary) == 2
    for _, row in summary.iterrows():
        runs = table[table["early_stopping"] == row["early_stopping"]]
        assert row["seeds"] == 3
        assert math.isclose(row["val_accuracy_mean"], runs["val_accuracy"].mean())
        assert math.isclose(row["val_accuracy_std"], runs["val_accuracy"].std())
        assert row["stopped_early_runs"] == runs["stopped_early"].sum()


def test_summarize_single_seed_has_nan_std(tmp_path):
    summary = summarize(collect_runs(write_fake_grid(tmp_path)))
    assert summary["val_accuracy_std"].isna().all()
    assert (summary["seeds"] == 1).all()


def test_write_table_round_trip(tmp_path):
    table = collect_runs(write_fake_grid(tmp_path / "grid", labeled=False))
    path = tmp_path / "out" / "ablation.csv"
    write_table(table, path)
    read = read_table(path)

    assert list(read.columns) == list(TABLE_COLUMNS)
    assert read["val_accuracy"].tolist() == table["val_accuracy"].tolist()
    assert read["test_accuracy"].isna().all()
    assert [p.name for p in path.parent.iterdir()] == ["ablation.csv"]


def test_read_table_missing_column_names_file(tmp_path):
    path = tmp_path / "ablation.csv"
    path.write_text("arch,seed\ncnn3,1\n")
    with pytest.raises(FerError, match="val_accuracy") as raised:
        read_table(path)
    assert str(path) in str(raised.value)


def test_read_history_missing_column_names_file(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,train_loss\n1,0.5\n")
    with pytest.raises(FerError, match="val_loss") as raised:
        read_history(path)
    assert str(path) in str(raised.value)


def test_collect_histories_marks_stop(tmp_path):
    paths = [
        write_fake_run(tmp_path, early_stopping="on", stopped=True),
        write_fake_run(tmp_path, early_stopping="off", stopped=False),
    ]
    table = collect_runs(paths)
    # Remove the stop event from one file: the table's stopped_early flag must restore it.
    history_path = Path(table.loc[table["early_stopping"] == "on", "run_dir"].iloc[0]) / "history.csv"
    history = pd.read_csv(history_path)
    history["event"] = ""
    history.to_csv(history_path, index=False)

    histories = collect_histories(table)
    stops = histories[histories["event"].str.contains("stopped")]
    assert stops["early_stopping"].tolist() == ["on"]
    assert stops["epoch"].tolist() == [table.loc[table["early_stopping"] == "on", "epochs_run"].iloc[0]]
    assert set(histories["early_stopping"]) == {"on", "off"}


def test_order_levels_reference_first():
    assert order_levels(["on", "off"]) == ["off", "on"]
    assert order_levels(["standard", "homework", "none", "homework"]) == ["none", "homework", "standard"]
    assert order_levels(["resnet18", "cnn3"]) == ["cnn3", "resnet18"]


def test_majority_baseline_prefers_stored_value():
    info = fake_data_info()
    info["majority_baseline_test"] = 0.3
    assert majority_baseline(info, "test") == 0.3


def test_majority_baseline_val_from_counts():
    info = fake_data_info()
    counts = info["class_counts"]["val"]
    assert math.isclose(majority_baseline(info, "val"), counts["happy"] / sum(counts.values()))


def test_majority_baseline_computed_from_counts():
    info = fake_data_info()
    del info["majority_baseline_test"]
    counts = info["class_counts"]["test"]
    assert math.isclose(majority_baseline(info, "test"), counts["happy"] / sum(counts.values()))


def test_majority_baseline_none_without_labels():
    info = fake_data_info(labeled=False)
    assert majority_baseline(info, "test") is None
