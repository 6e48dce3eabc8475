"""Render the ablation report as one self-contained HTML file.

Every sentence with a number is built here from the ablation table, the run
folders and the dataset info. The Jinja2 template only lays them out.
Figures are embedded as base64 PNG data URIs and the CSS is inline, so the
file opens offline and can be mailed as it is.
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import yaml

import fer
from fer.aggregate import (
    CELL_KEYS,
    FACTORS,
    METRICS_FILE_NAME,
    final_split,
    load_metrics,
    REFERENCE_LEVELS,
    majority_baseline,
    order_levels,
    summarize,
)
from fer.errors import FerError
from fer.io import atomic_open
from fer.plots import FACTOR_LABELS, FIGURE_KEYS

logger = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE_NAME = "report.html.j2"

# Path of the predictions for an unlabeled test split that the report names,
# unless ``runtime["submission_path"]`` gives another one.
DEFAULT_SUBMISSION_PATH = "results/submission.csv"

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# NOTE: mirrors the policies of fer.augment by name. A policy missing here is
# shown as "no description", so add one when a policy is registered.
AUGMENTATION_DESCRIPTIONS = {
    "none": "No augmentation: the training images are only normalized.",
    "homework": (
        "The course's 'Ver. 1': each training image gets one of a horizontal flip, "
        "a brightness and contrast jitter, or a rotation of up to ±30°."
    ),
    "standard": (
        "The recipe of published FER2013 models: random crop, horizontal flip, "
        "small rotations and random erasing."
    ),
}

# Training settings shown in the Techniques section: config key and label.
TRAINING_SETTINGS: tuple[tuple[str, str], ...] = (
    ("epochs", "maximum epochs"),
    ("optimizer", "optimizer"),
    ("lr", "initial learning rate"),
    ("weight_d", "weight decay"),
    ("momentum", "SGD momentum"),
    ("nesterov", "Nesterov momentum"),
    ("scheduler", "learning-rate schedule"),
    ("gamma", "StepLR factor"),
    ("step", "StepLR period (epochs)"),
    ("lr_patience", "plateau schedule patience (epochs)"),
    ("batch_size", "training batch size"),
    ("val_batch_size", "validation batch size"),
    ("channel_num", "channels C of the first block (models with fixed widths, such as cnn1 and resnet18, ignore it)"),
    ("label_smoothing", "label smoothing"),
    ("class_weighted_loss", "class-weighted loss"),
    ("tta", "ten-crop test-time augmentation"),
    ("max_train_images", "training images used (0 = all)"),
    ("autocast", "mixed precision (auto: bfloat16 on CUDA, float32 elsewhere)"),
)
EARLY_STOPPING_SETTINGS = ("early_stop_rule", "patience", "min_delta")


def render_report(
    *,
    table: pd.DataFrame,
    best: pd.Series | Mapping[str, Any],
    figures: Mapping[str, str | Path],
    data_info: Mapping[str, Any],
    config: Mapping[str, Any],
    out_path: str | Path,
    runtime: Mapping[str, Any] | None = None,
) -> None:
    """Write the HTML report of an ablation grid to ``out_path``, atomically.

    ``table`` comes from ``fer.aggregate.collect_runs`` and ``best`` from
    ``select_best``. ``figures`` maps names from ``fer.plots.FIGURE_KEYS`` to
    PNG files; a missing name leaves a note in its place. ``data_info`` is the
    prepared dataset's info dict and ``config`` the workflow config, shown as
    YAML. ``runtime`` may hold ``date``, ``submission_path`` and any other
    facts for the Run footer. The run folders in ``table["run_dir"]`` are read
    for the training settings and the best cell's per-class recall.
    """
    html = build_html(
        table=table, best=best, figures=figures, data_info=data_info,
        config=config, runtime=runtime or {},
    )
    with atomic_open(out_path, "w", encoding="utf-8") as stream:
        stream.write(html)
    logger.info("wrote the report to %s", out_path)


def build_html(
    *,
    table: pd.DataFrame,
    best: pd.Series | Mapping[str, Any],
    figures: Mapping[str, str | Path],
    data_info: Mapping[str, Any],
    config: Mapping[str, Any],
    runtime: Mapping[str, Any],
) -> str:
    """Return the report as an HTML string (see :func:`render_report`)."""
    best = dict(best)
    images = embed_figures(figures)
    run_metrics = _load_run_metrics(table)
    if _cell_of(best) not in run_metrics:
        raise FerError(f"the best cell {_cell_of(best)} is not a row of the ablation table; pass the row that select_best returned")
    best_metrics = run_metrics[_cell_of(best)]
    test_labeled = bool(table["test_accuracy"].notna().any())

    context = {
        "objective": _objective_context(table, data_info, test_labeled),
        "data": _data_context(data_info),
        "models": _models_context(table),
        "techniques": _techniques_context(table, run_metrics, config),
        "results": _results_context(table, best, best_metrics, images, data_info, test_labeled, runtime),
        "run": _run_context(table, data_info, config, runtime),
    }
    return _environment().get_template(TEMPLATE_NAME).render(**context)


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["score"] = format_score
    environment.filters["count"] = format_count
    return environment


# ---------------------------------------------------------------------------
# Formatting and inputs
# ---------------------------------------------------------------------------


def format_score(value: Any, digits: int = 3) -> str:
    """Format a fraction with ``digits`` decimals, or "n/a" for None and NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{float(value):.{digits}f}"


def format_count(value: Any) -> str:
    """Format a whole number with thousands separators, or "n/a" for None and NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{int(value):,}"


def embed_figures(figures: Mapping[str, str | Path]) -> dict[str, str]:
    """Read each PNG in ``figures`` and return it as a ``data:image/png;base64`` URI."""
    unknown = sorted(set(figures) - set(FIGURE_KEYS))
    if unknown:
        raise FerError(f"unknown report figure name(s) {', '.join(unknown)}; use names from {', '.join(FIGURE_KEYS)}")

    images = {}
    for name, path in figures.items():
        try:
            content = Path(path).read_bytes()
        except OSError as error:
            raise FerError(f"report figure {name!r} at {path} is unreadable ({error}); draw the figures again") from error
        if not content.startswith(PNG_SIGNATURE):
            raise FerError(f"report figure {name!r} at {path} is not a PNG file; save it with fer.plots.save_figure")
        images[name] = "data:image/png;base64," + base64.b64encode(content).decode("ascii")
    return images


def _cell_of(row: Mapping[str, Any]) -> tuple:
    return tuple(row[key] for key in CELL_KEYS)


def _load_run_metrics(table: pd.DataFrame) -> dict[tuple, dict[str, Any]]:
    return {
        _cell_of(run): load_metrics(Path(run["run_dir"]) / METRICS_FILE_NAME)
        for _, run in table.iterrows()
    }


def _mean_and_std(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "n/a"
    if len(values) == 1:
        return format_score(values.iloc[0])
    return f"{values.mean():.3f} ± {values.std():.3f}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# ---------------------------------------------------------------------------
# Objective and data
# ---------------------------------------------------------------------------


def _objective_context(table: pd.DataFrame, data_info: Mapping[str, Any], test_labeled: bool) -> dict[str, Any]:
    levels = {factor: order_levels(table[factor]) for factor in FACTORS}
    seeds = sorted(table["seed"].unique())
    grid = " × ".join(str(len(levels[factor])) for factor in FACTORS)
    return {
        "dataset": data_info.get("source_name", "an unnamed dataset"),
        "levels": [(FACTOR_LABELS[factor], ", ".join(levels[factor])) for factor in FACTORS],
        "seeds": ", ".join(str(seed) for seed in seeds),
        "grid_sentence": (
            f"{grid} settings × {_plural(len(seeds), 'seed')}: "
            f"{_plural(len(table), 'training run')} in this report."
        ),
        "final_metric": "test accuracy" if test_labeled else "validation accuracy (the test split has no labels)",
    }


def _data_context(data_info: Mapping[str, Any]) -> dict[str, Any]:
    class_counts = data_info.get("class_counts") or {}
    splits = [split for split in ("train", "val", "test") if class_counts.get(split)]
    class_names = list(data_info.get("class_names") or next((list(class_counts[s]) for s in splits), []))
    class_rows = []
    for name in class_names:
        cells = []
        for split in splits:
            total = sum(class_counts[split].values())
            count = class_counts[split].get(name, 0)
            cells.append((count, count / total if total else math.nan))
        class_rows.append({"name": name, "cells": cells})

    overview_keys = [
        ("source_name", "dataset"),
        ("layout", "layout"),
        ("protocol", "split protocol"),
        ("image_size", "image size"),
        ("mean", "pixel mean (0-1 scale)"),
        ("std", "pixel standard deviation"),
        ("test_labeled", "test split labeled"),
        ("notes", "notes from reading the source"),
    ]
    # The validation fraction and split seed only shape a hold-out split;
    # the official protocol ignores them.
    if data_info.get("protocol") != "official":
        overview_keys[3:3] = [("val_fraction", "validation fraction"), ("split_seed", "hold-out split seed")]
    overview = [(label, data_info[key]) for key, label in overview_keys if key in data_info]
    if data_info.get("skipped_files"):
        overview.append(("skipped files", f"{len(data_info['skipped_files'])}: {_format_value(data_info['skipped_files'][:10])}"))
    quality = dict(data_info.get("quality") or {})
    warnings = [str(warning) for warning in quality.pop("warnings", []) or []]
    return {
        "overview": [(label, _format_value(value)) for label, value in overview],
        "split_sizes": list((data_info.get("split_sizes") or {}).items()),
        "class_splits": splits,
        "class_rows": class_rows,
        "majority": _majority_sentence(data_info),
        "quality_rows": _quality_rows(quality),
        "warnings": warnings,
    }


def _majority_sentence(data_info: Mapping[str, Any]) -> str:
    majority_class = data_info.get("majority_class")
    if not majority_class:
        return "The dataset info names no majority class."
    parts = []
    for split, label in (("val", "validation"), ("test", "test")):
        baseline = majority_baseline(data_info, split)
        if baseline is not None:
            parts.append(f"{format_score(baseline)} on the {label} split")
    scores = " and ".join(parts) if parts else "an unknown accuracy (no class counts for validation or test)"
    return f"Always predicting the largest training class, {majority_class}, scores {scores}. This is the majority-class baseline."


def _quality_rows(quality: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Turn nested quality findings into (finding, text) rows, one per finding and split.

    A finding whose values are all scalars (counts per split) fits one row.
    A finding with nested mappings (statistics per split) gets one row per
    entry, and deeper levels are written inline.
    """
    rows = []
    for key, value in quality.items():
        if isinstance(value, Mapping) and any(isinstance(item, Mapping) for item in value.values()):
            rows.extend((f"{key} ({part})", _inline(item)) for part, item in value.items())
        else:
            rows.append((str(key), _inline(value)))
    return rows


def _inline(value: Any) -> str:
    if isinstance(value, Mapping):
        parts = []
        for key, item in value.items():
            text = _inline(item)
            parts.append(f"{key} ({text})" if isinstance(item, Mapping) else f"{key} {text}")
        return ", ".join(parts) if parts else "none"
    return _format_value(value)


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)) and all(isinstance(item, (str, int, float, bool)) or item is None for item in value):
        return ", ".join(_format_value(item) for item in value) if value else "none"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    return str(value)


# ---------------------------------------------------------------------------
# Models and techniques
# ---------------------------------------------------------------------------


def _models_context(table: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for arch, runs in table.groupby("arch", sort=True):
        rows.append({
            "arch": arch,
            "parameters": int(runs["parameters"].max()),
            "description": _describe_architecture(str(arch)),
        })
    return rows


def _describe_architecture(arch: str) -> str:
    # Imported here because fer.models loads torch, which takes seconds.
    from fer.models import describe_model

    try:
        return describe_model(arch)
    except FerError:
        return "no description registered"


def _techniques_context(table: pd.DataFrame, run_metrics: Mapping[tuple, Mapping[str, Any]], config: Mapping[str, Any]) -> dict[str, Any]:
    run_configs = [metrics.get("config") or {} for metrics in run_metrics.values()]
    augmentations = [
        (level, AUGMENTATION_DESCRIPTIONS.get(level, "no description"))
        for level in order_levels(table["augmentation"])
    ]
    early_stopping_configs = [
        run_config for run_config in run_configs if str(run_config.get("early_stopping", "")) not in REFERENCE_LEVELS
    ]
    return {
        "augmentations": augmentations,
        "early_stopping_levels": ", ".join(order_levels(table["early_stopping"])),
        "early_stopping_rule": _early_stopping_rule(early_stopping_configs, config),
        "settings": _settings_rows(run_configs, config),
    }


def _settings_rows(run_configs: list[Mapping[str, Any]], config: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """List each training setting with its value in the runs, marking values that vary."""
    rows = []
    for key, label in TRAINING_SETTINGS:
        values = _setting_values(key, run_configs, config)
        if values:
            text = ", ".join(values) + (" (varies by cell)" if len(values) > 1 else "")
            rows.append((label, key, text))
    return rows


def _setting_values(key: str, run_configs: list[Mapping[str, Any]], config: Mapping[str, Any]) -> list[str]:
    values = sorted({_format_value(run_config[key]) for run_config in run_configs if key in run_config})
    if values:
        return values
    found = find_setting(config, key)
    return [] if found is None else [_format_value(found)]


def find_setting(config: Mapping[str, Any], key: str) -> Any:
    """Return the first value of ``key`` in ``config``, searching nested mappings depth-first."""
    if key in config:
        return config[key]
    for value in config.values():
        if isinstance(value, Mapping):
            found = find_setting(value, key)
            if found is not None:
                return found
    return None


def _epochs(count: str) -> str:
    return f"{count} epoch" if count == "1" else f"{count} epochs"


def _early_stopping_rule(run_configs: list[Mapping[str, Any]], config: Mapping[str, Any]) -> str:
    values = {key: _setting_values(key, run_configs, config) for key in EARLY_STOPPING_SETTINGS}
    rules, patience = values["early_stop_rule"], values["patience"]
    if not rules:
        return "The runs' configs name no early-stopping rule."
    if len(rules) > 1 or len(patience) > 1:
        return f"The rule varies by cell: early_stop_rule {', '.join(rules)}, patience {', '.join(patience) or 'n/a'}."

    rule, patience_text = rules[0], (patience[0] if patience else "?")
    min_delta = values["min_delta"][0] if values["min_delta"] else "0"
    if rule == "rises":
        text = f"Training stops once the validation loss has risen {_epochs(patience_text)} in a row (the course's rule)"
    elif rule == "patience":
        text = f"Training stops once {_epochs(patience_text)} pass without the validation loss improving on its best value"
    else:
        return f"early_stop_rule {rule}, patience {patience_text}, min_delta {min_delta}."
    return f"{text}; a change counts only when larger than min_delta = {min_delta}. The evaluated weights are those of the epoch with the best validation accuracy."


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


def _results_context(
    table: pd.DataFrame,
    best: Mapping[str, Any],
    best_metrics: Mapping[str, Any],
    images: Mapping[str, str],
    data_info: Mapping[str, Any],
    test_labeled: bool,
    runtime: Mapping[str, Any],
) -> dict[str, Any]:
    metric = "test_accuracy" if test_labeled else "val_accuracy"
    return {
        "test_labeled": test_labeled,
        "submission_path": str(runtime.get("submission_path", DEFAULT_SUBMISSION_PATH)),
        "metric_label": metric.replace("_", " ").replace("val ", "validation "),
        "best_sentence": _best_sentence(best, test_labeled),
        "images": dict(images),
        "comparisons": {factor: _factor_context(table, factor, metric) for factor in ("early_stopping", "augmentation")},
        "confusion": _confusion_context(best_metrics),
        "distribution": _distribution_sentence(data_info),
        "summary": _summary_rows(table),
        "cells": _cell_rows(table, best),
    }


def _best_sentence(best: Mapping[str, Any], test_labeled: bool) -> str:
    cell = (
        f"{best['arch']} with augmentation {best['augmentation']}, early stopping {best['early_stopping']}, "
        f"seed {best['seed']}"
    )
    scores = f"validation accuracy {format_score(best['val_accuracy'])}, macro-F1 {format_score(best['val_macro_f1'])}"
    if test_labeled:
        test = f"On the test split it scores accuracy {format_score(best['test_accuracy'])} and macro-F1 {format_score(best['test_macro_f1'])}."
    else:
        test = "It has no test score because the test split is unlabeled."
    return f"The best cell, chosen on validation accuracy only, is {cell} ({scores}). {test}"


def _factor_context(table: pd.DataFrame, factor: str, metric: str) -> dict[str, Any]:
    levels = order_levels(table[factor])
    rows = []
    for level in levels:
        runs = table[table[factor] == level]
        rows.append({
            "level": level,
            "runs": len(runs),
            "stopped": int(runs["stopped_early"].sum()),
            "epochs_run": f"{runs['epochs_run'].mean():.1f}",
            "best_epoch": f"{runs['best_epoch'].mean():.1f}",
            "val_accuracy": _mean_and_std(runs["val_accuracy"]),
            "val_macro_f1": _mean_and_std(runs["val_macro_f1"]),
            "test_accuracy": _mean_and_std(runs["test_accuracy"]),
        })
    sentences = [_level_sentence(factor, table, metric)] + _paired_sentences(table, factor, metric)
    return {"label": FACTOR_LABELS[factor], "levels": levels, "rows": rows, "sentences": [s for s in sentences if s]}


def _level_sentence(factor: str, table: pd.DataFrame, metric: str) -> str:
    label = metric.replace("_", " ").replace("val ", "validation ")
    levels = order_levels(table[factor])
    if len(levels) < 2:
        return f"The grid has one {FACTOR_LABELS[factor]} setting ({levels[0]}), so it measures no effect of it."

    if factor == "early_stopping" and set(levels) == {"on", "off"}:
        with_it, without = table[table[factor] == "on"], table[table[factor] == "off"]
        stopped = int(with_it["stopped_early"].sum())
        sentence = (
            f"Early stopping stopped {stopped} of {_plural(len(with_it), 'run')} trained with it "
            f"(mean {with_it['epochs_run'].mean():.1f} epochs run vs {without['epochs_run'].mean():.1f} without); "
            f"mean {label} with it {format_score(with_it[metric].mean())} vs {format_score(without[metric].mean())} without."
        )
        return sentence + " " + _early_stopping_caveat(stopped)
    means = ", ".join(f"{level} {format_score(table.loc[table[factor] == level, metric].mean())}" for level in levels)
    return f"Mean {label} per {FACTOR_LABELS[factor]} setting: {means}."


def _early_stopping_caveat(stopped: int) -> str:
    # Without this, identical on/off scores read as "early stopping has no effect".
    if stopped == 0:
        return (
            "No run stopped early, so each pair trained the same epochs with the same seed and scores the same. "
            "Showing an effect needs runs long enough for the validation loss to stop improving."
        )
    return (
        "Runs with and without early stopping both keep the weights of their best validation epoch, so early "
        "stopping changes the scores only where it stops a run before that epoch; otherwise it saves training time."
    )


def _paired_sentences(table: pd.DataFrame, factor: str, metric: str) -> list[str]:
    """Compare each level with the reference level on runs that differ only in ``factor``."""
    levels = order_levels(table[factor])
    reference = next((level for level in REFERENCE_LEVELS if level in levels), None)
    if reference is None or len(levels) < 2:
        return []

    others = [key for key in CELL_KEYS if key != factor]
    pivot = table.pivot_table(index=others, columns=factor, values=metric, aggfunc="first")
    label = metric.replace("_", " ").replace("val ", "validation ")
    sentences = []
    for level in levels:
        if level == reference:
            continue
        pairs = pivot[[reference, level]].dropna()
        if pairs.empty:
            sentences.append(f"No run with {FACTOR_LABELS[factor]} {level} has a matching run with {reference}.")
            continue
        difference = pairs[level] - pairs[reference]
        sentences.append(
            f"{FACTOR_LABELS[factor].capitalize()} {level} beat {reference} in {int((difference > 0).sum())} of "
            f"{_plural(len(pairs), 'matched pair')} (same other settings and seed), "
            f"with a mean {label} difference of {difference.mean():+.3f}."
        )
    return sentences


def _confusion_context(best_metrics: Mapping[str, Any]) -> dict[str, Any]:
    split = final_split(best_metrics)
    scores = best_metrics[split]
    recall = scores["per_class_recall"]
    supports = [int(sum(row)) for row in scores["confusion_matrix"]]
    rows = [
        {"name": name, "recall": value, "support": supports[index] if index < len(supports) else None}
        for index, (name, value) in enumerate(recall.items())
    ]
    ranked = sorted(rows, key=lambda row: row["recall"])
    split_label = "test" if split == "test" else "validation"
    sentence = (
        f"The matrix shows the {split_label} split of the best cell, which was chosen on validation accuracy. "
        f"Highest recall: {ranked[-1]['name']} ({format_score(ranked[-1]['recall'])}); "
        f"lowest: {ranked[0]['name']} ({format_score(ranked[0]['recall'])})."
    ) if rows else f"The best cell's metrics list no per-class recall for the {split_label} split."
    return {"split": split_label, "rows": rows, "sentence": sentence}


def _distribution_sentence(data_info: Mapping[str, Any]) -> str:
    counts = (data_info.get("class_counts") or {}).get("train") or {}
    total = sum(counts.values())
    if not total:
        return "The dataset info has no training class counts."
    largest = max(counts, key=counts.get)
    smallest = min(counts, key=counts.get)
    return (
        f"The largest training class is {largest} with {counts[largest]:,} of {total:,} images "
        f"(prior {counts[largest] / total:.3f}); the smallest is {smallest} with {counts[smallest]:,} "
        f"({counts[smallest] / total:.3f}), {counts[largest] / max(counts[smallest], 1):.1f} times fewer."
    )


def _summary_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    summary = summarize(table)
    rows = []
    for _, row in summary.iterrows():
        rows.append({
            **{factor: row[factor] for factor in FACTORS},
            "seeds": int(row["seeds"]),
            "val_accuracy": _score_with_std(row, "val_accuracy"),
            "val_macro_f1": _score_with_std(row, "val_macro_f1"),
            "test_accuracy": _score_with_std(row, "test_accuracy"),
            "test_macro_f1": _score_with_std(row, "test_macro_f1"),
            "epochs_run": f"{row['epochs_run_mean']:.1f}",
            "stopped": f"{int(row['stopped_early_runs'])} / {int(row['seeds'])}",
        })
    return rows


def _score_with_std(row: pd.Series, score: str) -> str:
    mean, std = row[f"{score}_mean"], row[f"{score}_std"]
    if pd.isna(mean):
        return "n/a"
    return format_score(mean) if pd.isna(std) else f"{mean:.3f} ± {std:.3f}"


def _cell_rows(table: pd.DataFrame, best: Mapping[str, Any]) -> list[dict[str, Any]]:
    best_cell = _cell_of(best)
    return [{**run.to_dict(), "is_best": _cell_of(run) == best_cell} for _, run in table.iterrows()]


# ---------------------------------------------------------------------------
# Run footer
# ---------------------------------------------------------------------------


def _run_context(table: pd.DataFrame, data_info: Mapping[str, Any], config: Mapping[str, Any], runtime: Mapping[str, Any]) -> dict[str, Any]:
    date = runtime.get("date") or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    extra = [(str(key), _format_value(value)) for key, value in runtime.items() if key not in ("date", "submission_path")]
    return {
        "dataset": data_info.get("source_name", "unnamed dataset"),
        "devices": ", ".join(sorted(table["device"].astype(str).unique())),
        "version": fer.__version__,
        "date": str(date),
        "extra": extra,
        "config_yaml": _config_yaml(config),
    }


def _config_yaml(config: Mapping[str, Any]) -> str:
    # A JSON round trip turns paths and other objects into plain strings,
    # which safe_dump can write.
    plain = json.loads(json.dumps(config, default=str))
    return yaml.safe_dump(plain, sort_keys=False, allow_unicode=True).rstrip()
