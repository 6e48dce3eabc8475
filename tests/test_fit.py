"""Training one cell: outputs, reproducibility and resuming after a kill."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from fer.config import TrainConfig
from fer.data.dataset import save_prepared
from fer.fit import RESUME_FILE, fit

FAST = dict(arch="cnn3", channel_num=8, epochs=3, lr=0.003, batch_size=32, val_batch_size=64, device="cpu")


def deterministic_columns(history: pd.DataFrame) -> pd.DataFrame:
    # `seconds` is wall-clock time, the one column that differs between runs.
    return history.drop(columns=["seconds"])


def test_fit_writes_every_output(tiny_data, tmp_path):
    metrics = fit(TrainConfig(**FAST), tiny_data, tmp_path)

    for name in ("metrics.json", "history.csv", "model.pt", "predictions.csv", "config.yaml"):
        assert (tmp_path / name).is_file(), name
    assert not (tmp_path / RESUME_FILE).exists()
    assert json.loads((tmp_path / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    history = pd.read_csv(tmp_path / "history.csv")
    assert list(history["epoch"]) == [1, 2, 3]
    assert metrics["epochs_run"] == 3
    assert metrics["stopped_early"] is False
    assert 1 <= metrics["best_epoch"] <= 3
    assert history.loc[metrics["best_epoch"] - 1, "val_acc"] == pytest.approx(history["val_acc"].max())
    assert len(metrics["test"]["confusion_matrix"]) == 7
    predictions = pd.read_csv(tmp_path / "predictions.csv")
    assert len(predictions) == tiny_data.split_sizes()["test"]
    assert set(predictions.columns) >= {"id", "label"}


def test_same_seed_gives_identical_history(tiny_data, tmp_path):
    config = TrainConfig(**FAST, augmentation="homework")
    fit(config, tiny_data, tmp_path / "a")
    fit(config, tiny_data, tmp_path / "b")
    first = pd.read_csv(tmp_path / "a" / "history.csv")
    second = pd.read_csv(tmp_path / "b" / "history.csv")
    pd.testing.assert_frame_equal(deterministic_columns(first), deterministic_columns(second), check_exact=True)


def test_other_seed_gives_other_history(tiny_data, tmp_path):
    fit(TrainConfig(**FAST, seed=1), tiny_data, tmp_path / "a")
    fit(TrainConfig(**FAST, seed=2), tiny_data, tmp_path / "b")
    first = pd.read_csv(tmp_path / "a" / "history.csv")
    second = pd.read_csv(tmp_path / "b" / "history.csv")
    assert not first["train_loss"].equals(second["train_loss"])


def test_early_stopping_marks_the_history(tiny_data, tmp_path):
    # With a min_delta far above any loss change, no epoch after the first counts as an improvement.
    config = TrainConfig(**(FAST | {"epochs": 8}), early_stopping="on", early_stop_rule="patience", patience=2, min_delta=100.0)
    metrics = fit(config, tiny_data, tmp_path)
    history = pd.read_csv(tmp_path / "history.csv").fillna("")
    assert metrics["stopped_early"] is True
    assert metrics["epochs_run"] == 3
    assert "stopped: validation loss did not improve for 2 epochs" in history["event"].iloc[-1]


def test_checkpoint_holds_best_weights(tiny_data, tmp_path):
    metrics = fit(TrainConfig(**FAST), tiny_data, tmp_path)
    checkpoint = torch.load(tmp_path / "model.pt", weights_only=False)
    assert checkpoint["arch"] == "cnn3"
    assert checkpoint["best_epoch"] == metrics["best_epoch"]
    assert checkpoint["mean"] == pytest.approx(tiny_data.mean)


def _train_command(data_path: Path, out: Path, epochs: int) -> list[str]:
    return [
        sys.executable, "-m", "fer.cli", "train", "--data", str(data_path), "--out", str(out),
        "--arch", "cnn4", "--channel_num", "8", "--epochs", str(epochs), "--lr", "0.003",
        "--batch_size", "16", "--data_aug", "--early_stop", "--patience", "50", "--device", "cpu",
    ]


@pytest.mark.slow
def test_killed_run_resumes_to_identical_result(tiny_data, tmp_path):
    data_path = tmp_path / "data.npz"
    save_prepared(tiny_data, data_path)
    epochs = 5

    subprocess.run(_train_command(data_path, tmp_path / "whole", epochs), check=True, capture_output=True)

    killed_dir = tmp_path / "killed"
    process = subprocess.Popen(_train_command(data_path, killed_dir, epochs), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    resume_file = killed_dir / RESUME_FILE
    deadline = time.monotonic() + 300
    while not resume_file.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    # The first epoch is saved, so the process is now inside epoch 2.
    time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert resume_file.exists(), "the run finished or failed before it could be killed"
    assert not (killed_dir / "metrics.json").exists()

    resumed = subprocess.run(_train_command(data_path, killed_dir, epochs), check=True, capture_output=True, text=True)
    assert "resuming after epoch" in resumed.stderr

    whole = pd.read_csv(tmp_path / "whole" / "history.csv")
    again = pd.read_csv(killed_dir / "history.csv")
    pd.testing.assert_frame_equal(deterministic_columns(whole), deterministic_columns(again), check_exact=True)
    first = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    second = json.loads((killed_dir / "metrics.json").read_text())
    assert first["test"] == second["test"]
    assert first["val"] == second["val"]


@pytest.mark.parametrize(
    "options",
    [
        {"optimizer": "sgd", "nesterov": True, "scheduler": "plateau", "lr_patience": 1},
        {"scheduler": "cosine", "label_smoothing": 0.1, "class_weighted_loss": True},
        {"augmentation": "standard", "tta": True, "scheduler": "none"},
        {"arch": "vgg", "channel_num": 4, "autocast": "bf16"},
    ],
)
def test_recipe_options_train(tiny_data, tmp_path, options):
    config = TrainConfig(**(FAST | {"epochs": 2} | options))
    metrics = fit(config, tiny_data, tmp_path)
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    for key, value in options.items():
        assert metrics["config"][key] == value
    history = pd.read_csv(tmp_path / "history.csv")
    assert history["train_loss"].notna().all()


def test_cosine_schedule_lowers_the_rate(tiny_data, tmp_path):
    fit(TrainConfig(**(FAST | {"epochs": 3}), scheduler="cosine"), tiny_data, tmp_path)
    rates = pd.read_csv(tmp_path / "history.csv")["lr"].tolist()
    assert rates[0] == pytest.approx(FAST["lr"])
    assert rates[0] > rates[1] > rates[2]


def test_wandb_without_package_is_a_config_error(tiny_data, tmp_path, monkeypatch):
    import builtins

    from fer.errors import ConfigError

    real_import = builtins.__import__

    def import_without_wandb(name, *args, **kwargs):
        if name == "wandb":
            raise ImportError("No module named 'wandb'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", import_without_wandb)
    with pytest.raises(ConfigError, match="pip install wandb"):
        fit(TrainConfig(**FAST, wandb=True), tiny_data, tmp_path)
