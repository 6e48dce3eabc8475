"""Tests of fer.report: sections, embedded figures, generated text and unlabeled test data."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from test_aggregate import fake_data_info, write_fake_grid

from fer.aggregate import collect_runs, select_best
from fer.errors import FerError
from fer.plots import FIGURE_KEYS, write_report_figures
from fer.report import render_report

SECTION_HEADINGS = (
    "<h2>Objective</h2>",
    "<h2>Data</h2>",
    "<h2>Models</h2>",
    "<h2>Techniques</h2>",
    "<h2>Results</h2>",
    '<h3 id="early-stopping">Early stopping</h3>',
    '<h3 id="augmentation">Data augmentation</h3>',
    '<h3 id="confusion-matrix">Confusion matrix</h3>',
    '<h3 id="data-distribution">Data distribution</h3>',
    '<h3 id="ablation-table">Ablation table</h3>',
    "<h2>Run</h2>",
)
CONFIG = {"grid": {"architectures": ["cnn3", "resnet18"], "seeds": [1, 2]}, "train": {"epochs": 12}}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def labeled_grid(tmp_path_factory):
    """Runs, figures and data info of a labeled 2 x 2 x 2 grid with two seeds."""
    root = tmp_path_factory.mktemp("labeled")
    table = collect_runs(write_fake_grid(root / "grid", seeds=(1, 2)))
    best = select_best(table)
    data_info = fake_data_info()
    figures = write_report_figures(table, best, data_info, root / "figures")
    plt.close("all")
    return {"table": table, "best": best, "data_info": data_info, "figures": figures}


def render(tmp_path, grid, **overrides) -> str:
    arguments = {
        "table": grid["table"], "best": grid["best"], "figures": grid["figures"],
        "data_info": grid["data_info"], "config": CONFIG, "out_path": tmp_path / "report.html",
    }
    arguments.update(overrides)
    render_report(**arguments)
    return arguments["out_path"].read_text(encoding="utf-8")


def test_report_has_sections_in_order(tmp_path, labeled_grid):
    html = render(tmp_path, labeled_grid)

    positions = [html.find(heading) for heading in SECTION_HEADINGS]
    assert -1 not in positions, [heading for heading, position in zip(SECTION_HEADINGS, positions) if position == -1]
    assert positions == sorted(positions)


def test_report_embeds_every_figure(tmp_path, labeled_grid):
    html = render(tmp_path, labeled_grid)

    sources = re.findall(r'<img src="([^"]*)"', html)
    assert len(sources) == len(FIGURE_KEYS)
    expected = {
        "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
        for path in labeled_grid["figures"].values()
    }
    assert set(sources) == expected
    for path in labeled_grid["figures"].values():
        assert str(path) not in html
        assert path.name not in html


def test_report_has_no_external_resources(tmp_path, labeled_grid):
    html = render(tmp_path, labeled_grid)

    assert not re.search(r'(src|href)="(?!data:|#)', html)
    assert "<script" not in html
    assert "<link" not in html
    assert "@import" not in html
    assert "url(" not in html


def test_report_highlights_best_row(tmp_path, labeled_grid):
    html = render(tmp_path, labeled_grid)
    best = labeled_grid["best"]

    best_rows = re.findall(r'<tr class="best">(.*?)</tr>', html, flags=re.S)
    assert len(best_rows) == 1
    cells = re.findall(r"<td[^>]*>(.*?)</td>", best_rows[0])
    assert cells[:4] == [best["arch"], best["augmentation"], best["early_stopping"], str(best["seed"])]
    assert cells[4] == f"{best['val_accuracy']:.3f}"


def test_report_lists_every_run(tmp_path, labeled_grid):
    html = render(tmp_path, labeled_grid)
    cells_table = html[html.index('<table id="cells">'):]
    cells_table = cells_table[: cells_table.index("</table>")]

    assert cells_table.count("<tr") == len(labeled_grid["table"]) + 1


def test_report_early_stopping_sentence_from_data(tmp_path, labeled_grid):
    html = render(tmp_path, labeled_grid)
    table = labeled_grid["table"]
    with_it = table[table["early_stopping"] == "on"]
    without = table[table["early_stopping"] == "off"]

    expected = (
        f"Early stopping stopped {int(with_it['stopped_early'].sum())} of {len(with_it)} runs trained with it "
        f"(mean {with_it['epochs_run'].mean():.1f} epochs run vs {without['epochs_run'].mean():.1f} without); "
        f"mean test accuracy with it {with_it['test_accuracy'].mean():.3f} vs {without['test_accuracy'].mean():.3f} without."
    )
    assert expected in html


def test_report_equal_early_stopping_pairs(tmp_path, labeled_grid):
    never_stopped = labeled_grid["table"].assign(stopped_early=False)

    html = render(tmp_path, labeled_grid, table=never_stopped)

    assert "Early stopping stopped 0 of" in html
    assert "No run stopped early, so each pair trained the same epochs" in html


def test_report_early_stopping_caveat(tmp_path, labeled_grid):
    assert labeled_grid["table"]["stopped_early"].any()

    html = render(tmp_path, labeled_grid)

    assert "changes the scores only where it stops a run before that epoch" in html


def test_report_matched_pairs_sentence_from_data(tmp_path, labeled_grid):
    html = render(tmp_path, labeled_grid)
    pivot = labeled_grid["table"].pivot_table(
        index=["arch", "early_stopping", "seed"], columns="augmentation", values="test_accuracy"
    )
    difference = pivot["homework"] - pivot["none"]

    expected = (
        f"Augmentation homework beat none in {int((difference > 0).sum())} of {len(difference)} matched pairs"
    )
    assert expected in html
    assert f"mean test accuracy difference of {difference.mean():+.3f}" in html


def test_report_confusion_names_validation_choice(tmp_path, labeled_grid):
    html = render(tmp_path, labeled_grid)
    best = labeled_grid["best"]
    metrics = json.loads((Path(best["run_dir"]) / "metrics.json").read_text(encoding="utf-8"))
    recall = metrics["test"]["per_class_recall"]
    lowest = min(recall, key=recall.get)

    assert "The matrix shows the test split of the best cell, which was chosen on validation accuracy." in html
    assert f"lowest: {lowest} ({recall[lowest]:.3f})" in html


def test_report_data_section_facts(tmp_path, labeled_grid):
    html = render(tmp_path, labeled_grid)
    info = labeled_grid["data_info"]

    assert info["source_name"] in html
    assert info["layout"] in html
    for warning in info["quality"]["warnings"]:
        assert warning in html
    assert "<td>duplicates</td><td>within_train 3, across_splits 1</td>" in html
    assert "<td>blank</td><td>2</td>" in html
    assert "<td>image_stats (train)</td><td>brightness 129.5, contrast 54</td>" in html
    val = info["class_counts"]["val"]
    assert f"scores {val['happy'] / sum(val.values()):.3f} on the validation split" in html
    assert f"and {info['majority_baseline_test']:.3f} on the test split" in html
    train = info["class_counts"]["train"]
    assert f"{train['happy']} of {sum(train.values()):,} images" in html


def test_report_escapes_text(tmp_path, labeled_grid):
    data_info = dict(labeled_grid["data_info"], source_name="<script>alert(1)</script>")
    html = render(tmp_path, labeled_grid, data_info=data_info, config={"note": "<b>bold</b>"})

    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>bold</b>" not in html


def test_report_run_footer(tmp_path, labeled_grid):
    html = render(tmp_path, labeled_grid, runtime={"date": "2024-05-01", "snakemake": "8.20.1"})
    footer = html[html.index('<footer id="run">'):]

    assert "2024-05-01" in footer
    assert "8.20.1" in footer
    assert "cpu" in footer
    assert "architectures:" in footer
    assert "- resnet18" in footer


def test_report_missing_figure_leaves_note(tmp_path, labeled_grid):
    figures = {key: path for key, path in labeled_grid["figures"].items() if key != "augmentation"}
    html = render(tmp_path, labeled_grid, figures=figures)

    assert len(re.findall(r"<img ", html)) == len(FIGURE_KEYS) - 1
    assert "No figure: Learning curves per augmentation policy" in html


def test_report_unreadable_figure_names_file(tmp_path, labeled_grid):
    missing = tmp_path / "nowhere.png"
    with pytest.raises(FerError, match="unreadable") as raised:
        render(tmp_path, labeled_grid, figures={"overview": missing})
    assert str(missing) in str(raised.value)


def test_report_rejects_non_png_figure(tmp_path, labeled_grid):
    fake = tmp_path / "figure.png"
    fake.write_text("not a picture")
    with pytest.raises(FerError, match="not a PNG"):
        render(tmp_path, labeled_grid, figures={"overview": fake})


def test_report_rejects_unknown_figure_name(tmp_path, labeled_grid):
    with pytest.raises(FerError, match="unknown report figure"):
        render(tmp_path, labeled_grid, figures={"roc": labeled_grid["figures"]["overview"]})


def test_report_bad_metrics_file_names_it(tmp_path, labeled_grid):
    table = collect_runs(write_fake_grid(tmp_path / "grid", archs=("cnn3",), augmentations=("none",)))
    broken = table["run_dir"].iloc[0] + "/metrics.json"
    with open(broken, "w", encoding="utf-8") as stream:
        stream.write("{")

    with pytest.raises(FerError, match="unreadable") as raised:
        render(tmp_path, labeled_grid, table=table, best=table.iloc[1], figures={})
    assert broken in str(raised.value)


def test_report_unlabeled_test(tmp_path):
    table = collect_runs(write_fake_grid(tmp_path / "grid", labeled=False))
    best = select_best(table)
    data_info = fake_data_info(labeled=False)
    figures = write_report_figures(table, best, data_info, tmp_path / "figures")
    html = render(
        tmp_path, {"table": table, "best": best, "figures": figures, "data_info": data_info},
        runtime={"submission_path": "results/submission.csv"},
    )

    assert "The test split has no labels, so this report has no test score." in html
    assert "<code>results/submission.csv</code>" in html
    assert "test accuracy</th>" not in html
    assert "validation split of the best cell" in html
    with_it = table[table["early_stopping"] == "on"]
    assert f"mean validation accuracy with it {with_it['val_accuracy'].mean():.3f}" in html


def test_report_single_level_has_no_curves(tmp_path):
    table = collect_runs(write_fake_grid(tmp_path / "grid", archs=("cnn3",), early_stopping=("off",)))
    best = select_best(table)
    data_info = fake_data_info()
    figures = write_report_figures(table, best, data_info, tmp_path / "figures")
    html = render(tmp_path, {"table": table, "best": best, "figures": figures, "data_info": data_info})

    assert "No learning-curve comparison, because every run has the same early stopping setting." in html
    assert "The grid has one early stopping setting (off), so it measures no effect of it." in html
    assert len(re.findall(r"<img ", html)) == len(FIGURE_KEYS) - 1


def test_report_write_is_atomic(tmp_path, labeled_grid):
    render(tmp_path, labeled_grid)
    assert [path.name for path in tmp_path.iterdir()] == ["report.html"]
