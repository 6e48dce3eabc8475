"""Tests of fer.plots: what each figure draws, and the PNG files it saves."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from test_aggregate import fake_data_info, write_fake_grid, write_fake_run

from fer import plots
from fer.aggregate import collect_histories, collect_runs, select_best
from fer.constants import CLASS_NAMES
from fer.errors import FerError
from fer.plots import (
    FIGURE_KEYS,
    normalize_confusion,
    plot_class_distribution,
    plot_confusion_matrix,
    plot_grid_overview,
    plot_learning_curves,
    plot_message,
    save_figure,
    select_comparison_runs,
    write_report_figures,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def horizontal_lines_at(ax, y: float) -> list:
    return [
        line for line in ax.get_lines()
        if len(set(line.get_ydata())) == 1 and np.isclose(line.get_ydata()[0], y)
    ]


# ---------------------------------------------------------------------------
# Learning curves
# ---------------------------------------------------------------------------


def test_learning_curves_one_line_per_level(tmp_path):
    table = collect_runs(write_fake_grid(tmp_path, archs=("cnn3",), augmentations=("none",), seeds=(1, 2)))
    axes = plot_learning_curves(collect_histories(table), factor="early_stopping")

    assert axes.shape == (2, 2)
    for ax in axes.flat:
        assert len(ax.get_lines()) == 2
    assert [ax.get_ylabel() for ax in axes.flat] == ["train loss", "validation loss", "train accuracy", "validation accuracy"]


def test_learning_curves_mark_each_stop(tmp_path):
    table = collect_runs(write_fake_grid(tmp_path, archs=("cnn3",), augmentations=("none",), seeds=(1, 2, 3)))
    histories = collect_histories(table)
    axes = plot_learning_curves(histories, factor="early_stopping")

    stopped_runs = int(table["stopped_early"].sum())
    for ax in axes.flat:
        markers = [c for c in ax.collections if isinstance(c, PathCollection) and c.get_label() == "stopped early"]
        assert sum(len(marker.get_offsets()) for marker in markers) == stopped_runs

    stop_epochs = sorted(table.loc[table["stopped_early"], "epochs_run"])
    offsets = np.concatenate([c.get_offsets() for c in axes.flat[0].collections if c.get_label() == "stopped early"])
    assert sorted(offsets[:, 0]) == stop_epochs


def test_learning_curves_baseline_on_val_accuracy(tmp_path):
    table = collect_runs(write_fake_grid(tmp_path, archs=("cnn3",), early_stopping=("off",)))
    axes = plot_learning_curves(collect_histories(table), factor="augmentation", baseline=0.25)

    assert len(horizontal_lines_at(axes[1, 1], 0.25)) == 1
    assert not horizontal_lines_at(axes[0, 0], 0.25)


def test_learning_curves_legend_lists_levels(tmp_path):
    table = collect_runs(write_fake_grid(tmp_path, archs=("cnn3",), early_stopping=("off",)))
    axes = plot_learning_curves(collect_histories(table), factor="augmentation")

    labels = [text.get_text() for text in axes[0, 0].get_legend().get_texts()]
    assert labels == ["none", "homework"]


def test_learning_curves_missing_column_raises():
    histories = pd.DataFrame({"epoch": [1], "train_loss": [1.0], "early_stopping": ["on"]})
    with pytest.raises(FerError, match="val_loss"):
        plot_learning_curves(histories, factor="early_stopping")


def test_select_comparison_runs_fixes_other_factors(tmp_path):
    table = collect_runs(write_fake_grid(tmp_path))
    best = table.iloc[0]
    runs = select_comparison_runs(table, best, "early_stopping")

    assert set(runs["early_stopping"]) == {"on", "off"}
    assert set(runs["arch"]) == {best["arch"]}
    assert set(runs["augmentation"]) == {best["augmentation"]}


def test_select_comparison_runs_single_level_is_none(tmp_path):
    table = collect_runs(write_fake_grid(tmp_path, early_stopping=("off",)))
    assert select_comparison_runs(table, table.iloc[0], "early_stopping") is None


# ---------------------------------------------------------------------------
# Confusion matrix, class distribution, grid overview
# ---------------------------------------------------------------------------


def test_confusion_matrix_rows_sum_to_one():
    matrix = np.random.default_rng(0).integers(0, 50, size=(7, 7))
    ax = plot_confusion_matrix(matrix, CLASS_NAMES)

    drawn = np.asarray(ax.collections[0].get_array()).reshape(7, 7)
    np.testing.assert_allclose(drawn.sum(axis=1), 1.0)
    np.testing.assert_allclose(drawn, matrix / matrix.sum(axis=1, keepdims=True))


def test_confusion_matrix_annotates_cells_and_classes():
    matrix = np.eye(7, dtype=int) * 10 + 1
    ax = plot_confusion_matrix(matrix)

    annotations = [text.get_text() for text in ax.texts]
    assert len(annotations) == 49
    assert annotations[0] == f"{11 / 17:.2f}"
    assert [label.get_text() for label in ax.get_yticklabels()] == list(CLASS_NAMES)
    assert [label.get_text() for label in ax.get_xticklabels()] == list(CLASS_NAMES)


def test_normalize_confusion_empty_row_stays_zero(caplog):
    matrix = np.array([[2, 2], [0, 0]])
    normalized = normalize_confusion(matrix)

    np.testing.assert_allclose(normalized, [[0.5, 0.5], [0.0, 0.0]])
    assert "no samples" in caplog.text


def test_confusion_matrix_rejects_non_square():
    with pytest.raises(FerError, match="square"):
        plot_confusion_matrix([[1, 2, 3], [4, 5, 6]], ["a", "b"])


def test_class_distribution_bar_per_class_with_counts():
    counts = fake_data_info()["class_counts"]["train"]
    ax = plot_class_distribution(counts)

    assert len(ax.patches) == len(counts)
    assert [patch.get_height() for patch in ax.patches] == list(counts.values())
    assert [text.get_text() for text in ax.texts] == [str(count) for count in counts.values()]


def test_class_distribution_states_majority_baseline():
    counts = fake_data_info()["class_counts"]["train"]
    ax = plot_class_distribution(counts)

    total = sum(counts.values())
    assert len(horizontal_lines_at(ax, counts["happy"])) == 1
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == [f"majority class happy: {counts['happy']} / {total} = {counts['happy'] / total:.3f}"]


def test_class_distribution_empty_raises():
    with pytest.raises(FerError, match="class counts"):
        plot_class_distribution({})


def test_grid_overview_points_and_baseline(tmp_path):
    table = collect_runs(write_fake_grid(tmp_path, seeds=(1, 2)))
    ax = plot_grid_overview(table, metric="test_accuracy", baseline=0.247)

    assert len(horizontal_lines_at(ax, 0.247)) == 1
    settings = table[["augmentation", "early_stopping"]].drop_duplicates()
    # seaborn 0.13 draws each setting's points as one Line2D with markers and no line.
    point_sets = [line for line in ax.get_lines() if line.get_marker() == "o" and len(line.get_xdata())]
    assert len(point_sets) == len(settings)
    assert [label.get_text() for label in ax.get_xticklabels()] == sorted(table["arch"].unique())
    drawn_means = sorted(np.concatenate([line.get_ydata() for line in point_sets]))
    expected = sorted(table.groupby(["arch", "augmentation", "early_stopping"])["test_accuracy"].mean())
    np.testing.assert_allclose(drawn_means, expected)


# ---------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------


def test_save_figure_writes_png_and_closes(tmp_path):
    figure, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = save_figure(figure, tmp_path / "figures" / "line.png")

    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert not plt.fignum_exists(figure.number)
    assert [p.name for p in path.parent.iterdir()] == ["line.png"]


def test_write_report_figures_draws_every_figure(tmp_path):
    table = collect_runs(write_fake_grid(tmp_path / "grid"))
    figures = write_report_figures(table, select_best(table), fake_data_info(), tmp_path / "figures")

    assert list(figures) == list(FIGURE_KEYS)
    for name, path in figures.items():
        assert path == tmp_path / "figures" / f"{name}.png"
        assert path.read_bytes().startswith(b"\x89PNG")
    assert plt.get_fignums() == []


def test_write_report_figures_single_level_note(tmp_path, monkeypatch):
    drawn_messages = []
    original = plots.plot_message
    monkeypatch.setattr(plots, "plot_message", lambda text, **kwargs: drawn_messages.append(text) or original(text, **kwargs))
    table = collect_runs(write_fake_grid(tmp_path / "grid", early_stopping=("on",), labeled=False))
    figures = write_report_figures(table, select_best(table), fake_data_info(labeled=False), tmp_path / "figures")

    assert list(figures) == list(FIGURE_KEYS)
    assert drawn_messages == [
        "No early stopping comparison: the runs at the best cell's other settings all have early stopping on."
    ]


def test_write_report_figures_without_class_counts(tmp_path, monkeypatch):
    drawn_messages = []
    original = plots.plot_message
    monkeypatch.setattr(plots, "plot_message", lambda text, **kwargs: drawn_messages.append(text) or original(text, **kwargs))
    table = collect_runs([write_fake_run(tmp_path / "grid")])
    data_info = fake_data_info()
    del data_info["class_counts"]
    figures = write_report_figures(table, select_best(table), data_info, tmp_path / "figures")

    assert set(figures) == set(FIGURE_KEYS)
    assert len(drawn_messages) == 3
    assert drawn_messages[-1] == "The dataset info has no training class counts."


def test_plot_message_shows_text():
    ax = plot_message("nothing to compare")
    assert [text.get_text() for text in ax.texts] == ["nothing to compare"]
