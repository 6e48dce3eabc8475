"""The fer command line on small generated datasets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from datagen import make_rows, write_course, write_kaggle_csv

SMALL = ["--arch", "cnn3", "--channel_num", "4", "--epochs", "2", "--batch_size", "16", "--device", "cpu"]


def fer(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fer.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_train_and_test_on_course_layout(tmp_path):
    course = write_course(tmp_path / "course", train_per_class=8, test_count=12)
    trained = fer("train", "--data", str(tmp_path / "course"), "--out", "run", *SMALL, "--early_stop", "--data_aug", "--plot_cm", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr

    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"] is None  # the course's test images are unlabeled
    assert metrics["config"]["augmentation"] == "homework"
    assert metrics["config"]["early_stopping"] == "on"
    assert metrics["data"]["layout"] == "course"
    assert (tmp_path / "run" / "confusion_matrix.png").is_file()

    tested = fer("test", "-c", "run/model.pt", "--data", str(tmp_path / "course"), "--out", "submission.csv", cwd=tmp_path)
    assert tested.returncode == 0, tested.stderr
    submission = pd.read_csv(tmp_path / "submission.csv")
    assert list(submission.columns) == ["id", "label"]
    assert len(submission) == 12
    assert submission["label"].between(0, 6).all()
    assert set(submission["id"].astype(str)) == {str(identifier) for identifier in course.test_ids}


def test_mode_test_matches_fer_test(tmp_path):
    write_kaggle_csv(make_rows((6, 2, 2), size=48), tmp_path / "fer2013.csv")
    assert fer("train", "--data", "fer2013.csv", "--out", "run", *SMALL, cwd=tmp_path).returncode == 0

    fer("test", "-c", "run/model.pt", "--data", "fer2013.csv", "--out", "a.csv", cwd=tmp_path)
    course_style = fer("train", "--mode", "test", "-c", "run/model.pt", "--data", "fer2013.csv", "--out", "b.csv", cwd=tmp_path)
    assert course_style.returncode == 0, course_style.stderr
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    assert "accuracy" in course_style.stderr  # the test split is labeled


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["train", "--data", "missing-folder", "--out", "run"], "missing-folder"),
        (["train", "--data", "demo", "--out", "run", "--optimizer", "adamw"], "optimizer = 'adamw' is not allowed"),
        (["train", "--data", "demo", "--out", "run", "--epochs", "0"], "epochs = 0 is out of range"),
        (["test", "-c", "nothing.pt", "--data", "demo", "--out", "p.csv"], "checkpoint nothing.pt not found"),
    ],
)
def test_user_errors_print_one_line_without_traceback(tmp_path, args, expected):
    result = fer(*args, cwd=tmp_path)
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_prepare_writes_a_loadable_file(tmp_path):
    write_kaggle_csv(make_rows((4, 2, 2), size=48), tmp_path / "fer2013.csv")
    result = fer("prepare", "--data", "fer2013.csv", "--out", "prepared.npz", cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    from fer.data.dataset import load_prepared

    data = load_prepared(tmp_path / "prepared.npz")
    assert data.split_sizes() == {"train": 28, "val": 14, "test": 14}
