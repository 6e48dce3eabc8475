"""The submission file: the best cell's test predictions in the course's ``id,label`` format."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from fer.errors import FerError
from fer.io import atomic_open

logger = logging.getLogger(__name__)


def write_submission(predictions_path: str | Path, out: str | Path) -> pd.DataFrame:
    """Copy the ``id`` and ``label`` columns of a run's predictions.csv to ``out``."""
    predictions = pd.read_csv(predictions_path)
    missing = {"id", "label"} - set(predictions.columns)
    if missing:
        raise FerError(f"{predictions_path} lacks the column(s) {', '.join(sorted(missing))}; rerun the training job that wrote it")
    submission = predictions[["id", "label"]]
    with atomic_open(out, "w", encoding="utf-8", newline="") as stream:
        submission.to_csv(stream, index=False)
    logger.info("wrote %d predictions of %s to %s", len(submission), predictions_path, out)
    return submission
