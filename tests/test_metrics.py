import logging

import numpy as np
import pytest

from fer.constants import CLASS_NAMES
from fer.metrics import classification_metrics


def test_metrics_match_hand_counts():
    y_true = np.array([0, 0, 1, 3, 3, 3, 6])
    y_pred = np.array([0, 3, 1, 3, 3, 0, 6])
    scores = classification_metrics(y_true, y_pred)

    assert scores["accuracy"] == pytest.approx(5 / 7)
    assert scores["per_class_recall"]["angry"] == pytest.approx(0.5)
    assert scores["per_class_recall"]["happy"] == pytest.approx(2 / 3)
    assert scores["confusion_matrix"][0] == [1, 0, 0, 1, 0, 0, 0]
    assert np.sum(scores["confusion_matrix"]) == 7


def test_macro_f1_penalizes_the_majority_guess():
    y_true = np.array([3] * 8 + [0, 1])
    y_pred = np.full(10, 3)
    scores = classification_metrics(y_true, y_pred)
    assert scores["accuracy"] == pytest.approx(0.8)
    assert scores["macro_f1"] < 0.2


def test_never_predicted_class_warns(caplog):
    y_true = np.arange(7)
    y_pred = np.zeros(7, dtype=int)
    with caplog.at_level(logging.WARNING, logger="fer.metrics"):
        classification_metrics(y_true, y_pred)
    assert "never predicts disgust" in caplog.text
    assert "class_weighted_loss" in caplog.text


def test_per_class_recall_covers_every_class():
    scores = classification_metrics(np.array([0, 1]), np.array([0, 1]))
    assert list(scores["per_class_recall"]) == list(CLASS_NAMES)
