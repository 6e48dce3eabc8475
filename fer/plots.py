"""Figures of the ablation report, drawn with seaborn.

Each ``plot_*`` function draws on the axes it is given (or on a new figure
when none is given) and returns them. None of them saves. ``save_figure``
writes a figure to PNG, and ``write_report_figures`` draws and saves every
figure the report embeds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

# The workflow renders figures on machines without a display, and Agg needs none.
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from fer.aggregate import (  # noqa: E402
    FACTORS,
    METRICS_FILE_NAME,
    collect_histories,
    final_split,
    load_metrics,
    majority_baseline,
    order_levels,
)
from fer.constants import CLASS_NAMES  # noqa: E402
from fer.errors import FerError  # noqa: E402
from fer.io import atomic_path  # noqa: E402

logger = logging.getLogger(__name__)

DEFAULT_DPI = 120
PALETTE = "colorblind"
LINE_STYLES = ("-", "--", ":", "-.")

# Panels of the learning-curve figure: history column and axis label, row by row.
CURVE_PANELS: tuple[tuple[str, str], ...] = (
    ("train_loss", "train loss"),
    ("val_loss", "validation loss"),
    ("train_acc", "train accuracy"),
    ("val_acc", "validation accuracy"),
)

# Names of the figures that write_report_figures returns and the report embeds.
FIGURE_KEYS: tuple[str, ...] = ("early_stopping", "augmentation", "confusion_matrix", "class_distribution", "overview")

FACTOR_LABELS = {"arch": "architecture", "augmentation": "augmentation", "early_stopping": "early stopping"}


def plot_learning_curves(
    histories: pd.DataFrame,
    *,
    factor: str,
    axes: np.ndarray | None = None,
    baseline: float | None = None,
    title: str | None = None,
) -> np.ndarray:
    """Draw train/val loss and accuracy per epoch, one line per level of ``factor``.

    ``histories`` is a long table as built by ``fer.aggregate.collect_histories``:
    one row per run and epoch, with the history columns, ``factor`` and
    ``event``. Several seeds of one level are drawn as their mean with a
    band of one standard deviation. An "X" marks the epoch of each run whose
    ``event`` contains "stopped". ``baseline`` (the majority-class
    accuracy) is drawn as a dashed line on the validation accuracy panel.
    Returns the 2x2 array of axes.
    """
    required = [column for column, _ in CURVE_PANELS] + ["epoch", factor]
    missing = [column for column in required if column not in histories.columns]
    if missing:
        raise FerError(f"learning-curve data lacks the column(s) {', '.join(missing)}; build it with fer.aggregate.collect_histories")

    if axes is None:
        figure, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex=True, constrained_layout=True)
    axes = np.asarray(axes)
    levels = order_levels(histories[factor])
    colors = dict(zip(levels, sns.color_palette(PALETTE, len(levels))))
    data = histories.assign(**{factor: histories[factor].astype(str)})

    # Runs of one seed share their first epochs, so the curves of two levels
    # overlap until they diverge. Line styles keep both visible there.
    styles = {level: LINE_STYLES[index % len(LINE_STYLES)] for index, level in enumerate(levels)}
    for ax, (column, label) in zip(axes.flat, CURVE_PANELS):
        for level in levels:
            sns.lineplot(
                data=data[data[factor] == level], x="epoch", y=column, color=colors[level],
                linestyle=styles[level], errorbar="sd", ax=ax, legend=False,
            )
        _mark_stops(ax, data, column, factor, colors)
        ax.set_ylabel(label)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)

    _add_curve_legend(axes.flat[0], levels, colors, styles, factor, data)
    if baseline is not None:
        line = axes.flat[3].axhline(baseline, color="0.4", linestyle="--", linewidth=1, label=f"majority baseline {baseline:.3f}")
        axes.flat[3].legend(handles=[line], loc="lower right", fontsize="small")
    if title:
        axes.flat[0].figure.suptitle(title)
    return axes


def _mark_stops(ax: Axes, data: pd.DataFrame, column: str, factor: str, colors: Mapping[str, Any]) -> None:
    stops = data[data["event"].astype(str).str.contains("stopped", regex=False)] if "event" in data else data.iloc[0:0]
    for level, rows in stops.groupby(factor):
        ax.scatter(
            rows["epoch"], rows[column], marker="X", s=70, color=colors[level],
            edgecolors="black", linewidths=0.8, zorder=3, label="stopped early",
        )


def _add_curve_legend(
    ax: Axes, levels: Sequence[str], colors: Mapping[str, Any], styles: Mapping[str, str], factor: str, data: pd.DataFrame
) -> None:
    handles = [plt.Line2D([], [], color=colors[level], linestyle=styles[level], label=level) for level in levels]
    if "event" in data and data["event"].astype(str).str.contains("stopped", regex=False).any():
        handles.append(
            plt.Line2D([], [], marker="X", linestyle="none", color="0.5", markeredgecolor="black", label="stopped early")
        )
    ax.legend(handles=handles, title=FACTOR_LABELS.get(factor, factor), loc="upper right", fontsize="small")


def normalize_confusion(matrix: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Divide each row (a true class) by its total, so rows sum to 1.

    A row without samples stays all zero, and a warning names its index.
    """
    counts = np.asarray(matrix, dtype=float)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise FerError(f"confusion matrix has shape {counts.shape}, expected a square matrix (rows = true class)")

    totals = counts.sum(axis=1, keepdims=True)
    empty_rows = np.flatnonzero(totals[:, 0] == 0)
    if len(empty_rows):
        logger.warning("confusion matrix rows %s have no samples; they are drawn as zeros", empty_rows.tolist())
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def plot_confusion_matrix(
    matrix: Sequence[Sequence[float]] | np.ndarray,
    class_names: Sequence[str] = CLASS_NAMES,
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Draw the row-normalized confusion matrix (rows = true class) with each cell annotated."""
    normalized = normalize_confusion(matrix)
    if len(class_names) != normalized.shape[0]:
        raise FerError(f"confusion matrix has {normalized.shape[0]} rows but {len(class_names)} class names were given")

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 6), constrained_layout=True)
    sns.heatmap(
        normalized, annot=True, fmt=".2f", cmap="Blues", vmin=0.0, vmax=1.0, square=True,
        xticklabels=class_names, yticklabels=class_names, cbar_kws={"label": "fraction of true class"}, ax=ax,
    )
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.tick_params(axis="y", rotation=0)
    if title:
        ax.set_title(title)
    return ax


def plot_class_distribution(class_counts: Mapping[str, int], *, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Draw one bar per class with its count on top, and a dashed line at the majority class.

    The line is labeled with the majority class's prior, which is the
    accuracy of always predicting that class on these images.
    """
    if not class_counts:
        raise FerError("class counts are empty; the dataset info needs class_counts with at least one class")
    names = list(class_counts)
    counts = np.array([int(class_counts[name]) for name in names])
    total = int(counts.sum())

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
    bars = ax.bar(names, counts, color=sns.color_palette(PALETTE, len(names)))
    ax.bar_label(bars, labels=[str(count) for count in counts], padding=2)

    majority = int(np.argmax(counts))
    if total > 0:
        prior = counts[majority] / total
        ax.axhline(
            counts[majority], color="0.3", linestyle="--", linewidth=1,
            label=f"majority class {names[majority]}: {counts[majority]} / {total} = {prior:.3f}",
        )
        ax.legend(loc="upper left", fontsize="small")
    ax.set_ylim(0, max(counts.max(), 1) * 1.15)
    ax.set_xlabel("class")
    ax.set_ylabel("images")
    if title:
        ax.set_title(title)
    return ax


def plot_grid_overview(
    table: pd.DataFrame,
    *,
    metric: str = "test_accuracy",
    baseline: float | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Draw ``metric`` per architecture, one point per augmentation x early-stopping setting.

    Points are means over seeds with one standard deviation as error bar.
    ``baseline`` (the majority-class accuracy) is drawn as a dashed line.
    """
    missing = [column for column in (*FACTORS, metric) if column not in table.columns]
    if missing:
        raise FerError(f"grid overview data lacks the column(s) {', '.join(missing)}; build it with fer.aggregate.collect_runs")

    data = table.assign(setting="aug " + table["augmentation"].astype(str) + ", early stop " + table["early_stopping"].astype(str))
    settings = [
        f"aug {augmentation}, early stop {stopping}"
        for augmentation in order_levels(table["augmentation"])
        for stopping in order_levels(table["early_stopping"])
    ]
    settings = [setting for setting in settings if setting in set(data["setting"])]
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 5), constrained_layout=True)
    sns.pointplot(
        data=data, x="arch", y=metric, hue="setting", order=sorted(data["arch"].unique()),
        hue_order=settings, palette=PALETTE, errorbar="sd",
        # seaborn 0.13 divides the dodge width by (settings - 1).
        dodge=0.4 if len(settings) > 1 else False, linestyle="none", markers="o", capsize=0.05, ax=ax,
    )
    if baseline is not None:
        ax.axhline(baseline, color="0.4", linestyle="--", linewidth=1, label=f"majority baseline {baseline:.3f}")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.set_xlabel("architecture")
    ax.set_ylabel(metric.replace("_", " "))
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
    return ax


def plot_message(text: str, *, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Draw ``text`` in an empty frame, in place of a figure that the data cannot support."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 2.5), constrained_layout=True)
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize="large", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def save_figure(figure: Figure, path: str | Path, dpi: int = DEFAULT_DPI) -> Path:
    """Write ``figure`` as PNG atomically and close it. Returns ``path``."""
    path = Path(path)
    try:
        with atomic_path(path) as temporary:
            figure.savefig(temporary, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(figure)
    return path


def select_comparison_runs(table: pd.DataFrame, best: Mapping[str, Any], factor: str) -> pd.DataFrame | None:
    """Pick the runs that compare the levels of ``factor`` around the best cell.

    Keeps the best cell's architecture and its level of the other factors,
    and every seed. Returns None when those runs have fewer than two levels
    of ``factor``, so there is nothing to compare.
    """
    if factor not in FACTORS:
        raise FerError(f"unknown grid factor {factor!r}; expected one of {', '.join(FACTORS)}")
    keep = np.ones(len(table), dtype=bool)
    for other in FACTORS:
        if other != factor:
            keep &= (table[other] == best[other]).to_numpy()
    runs = table[keep]
    if runs[factor].nunique() < 2:
        return None
    return runs


def grid_metric(table: pd.DataFrame) -> str:
    """Return "test_accuracy" when any run has a test score, else "val_accuracy"."""
    return "test_accuracy" if table["test_accuracy"].notna().any() else "val_accuracy"


def write_report_figures(
    table: pd.DataFrame,
    best: Mapping[str, Any],
    data_info: Mapping[str, Any],
    out_dir: str | Path,
) -> dict[str, Path]:
    """Draw every report figure and save it as ``{name}.png`` under ``out_dir``.

    Returns the written paths keyed by the names in ``FIGURE_KEYS``. Every
    file is written, so a workflow can declare all of them as outputs. A
    figure that the data cannot support (one level of a factor around the
    best cell, no training class counts) is a frame with the reason instead.
    """
    out_dir = Path(out_dir)
    drawn = {
        "early_stopping": _draw_comparison(table, best, data_info, "early_stopping"),
        "augmentation": _draw_comparison(table, best, data_info, "augmentation"),
        "confusion_matrix": _draw_best_confusion(best, data_info),
        "class_distribution": _draw_class_distribution(data_info),
        "overview": _draw_overview(table, data_info),
    }
    return {name: save_figure(figure, out_dir / f"{name}.png") for name, figure in drawn.items()}


def _draw_comparison(table: pd.DataFrame, best: Mapping[str, Any], data_info: Mapping[str, Any], factor: str) -> Figure:
    runs = select_comparison_runs(table, best, factor)
    if runs is None:
        logger.info("no %s comparison: the runs around the best cell have one level of it", factor)
        text = f"No {FACTOR_LABELS[factor]} comparison: the runs at the best cell's other settings all have {FACTOR_LABELS[factor]} {best[factor]}."
        return plot_message(text).figure

    axes = plot_learning_curves(
        collect_histories(runs), factor=factor, baseline=majority_baseline(data_info, "val"),
        title=_comparison_title(factor, best, runs),
    )
    return axes.flat[0].figure


def _draw_best_confusion(best: Mapping[str, Any], data_info: Mapping[str, Any]) -> Figure:
    metrics = load_metrics(Path(best["run_dir"]) / METRICS_FILE_NAME)
    split = final_split(metrics)
    ax = plot_confusion_matrix(
        metrics[split]["confusion_matrix"], data_info.get("class_names") or CLASS_NAMES,
        title=f"best cell on validation: {best['arch']}, {split} split",
    )
    return ax.figure


def _draw_class_distribution(data_info: Mapping[str, Any]) -> Figure:
    train_counts = (data_info.get("class_counts") or {}).get("train")
    if not train_counts:
        logger.warning("dataset info has no class_counts.train, so the class distribution figure shows a note instead")
        return plot_message("The dataset info has no training class counts.").figure
    return plot_class_distribution(train_counts, title="training images per class").figure


def _draw_overview(table: pd.DataFrame, data_info: Mapping[str, Any]) -> Figure:
    metric = grid_metric(table)
    ax = plot_grid_overview(
        table, metric=metric, baseline=majority_baseline(data_info, metric.split("_")[0]),
        title=f"{metric.replace('_', ' ')} per grid cell (mean ± sd over seeds)",
    )
    return ax.figure


def _comparison_title(factor: str, best: Mapping[str, Any], runs: pd.DataFrame) -> str:
    fixed = ", ".join(f"{FACTOR_LABELS[other]} {best[other]}" for other in FACTORS if other != factor)
    seeds = runs["seed"].nunique()
    return f"{FACTOR_LABELS[factor]}: levels compared at {fixed} ({seeds} seed{'s' if seeds != 1 else ''}, mean ± sd)"
