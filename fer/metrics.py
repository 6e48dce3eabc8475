"""Classification metrics for imbalanced 7-class FER results."""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

from fer.constants import CLASS_NAMES

logger = logging.getLogger(__name__)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str] = CLASS_NAMES) -> dict[str, Any]:
    """Compute accuracy, macro-F1, per-class recall and the confusion matrix (counts, rows = true class).

    A class that is never predicted has F1 0 and a class absent from
    ``y_true`` has recall 0. Both cases are logged as warnings, because they
    pull macro-F1 down in a way that accuracy does not show.
    """
    labels = list(range(len(class_names)))
    _warn_degenerate(y_true, y_pred, class_names)
    recall = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_class_recall": {name: float(value) for name, value in zip(class_names, recall)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def _warn_degenerate(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]) -> None:
    never_predicted = [name for index, name in enumerate(class_names) if not np.any(y_pred == index)]
    absent = [name for index, name in enumerate(class_names) if not np.any(y_true == index)]
    if never_predicted:
        logger.warning(
            "the model never predicts %s, so F1 is 0 for each of them in macro-F1; "
            "class_weighted_loss: true or more epochs usually help",
            ", ".join(never_predicted),
        )
    if absent:
        logger.warning("no images of %s in this split, so their recall is reported as 0", ", ".join(absent))
