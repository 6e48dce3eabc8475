"""Train one cell of the ablation grid into a run folder, resuming if it was killed.

A run folder holds, when training has finished:

- ``metrics.json``: validation and test metrics of the best epoch (by
  validation accuracy), epochs run, stop reason, parameter count, time,
  device, data summary and the resolved config;
- ``history.csv``: one row per epoch;
- ``model.pt``: the best weights with what ``fer test`` needs to use them;
- ``predictions.csv``: the best model's test predictions;
- ``config.yaml``: the resolved config.

While training runs, ``resume.pt`` contains the state after the last completed
epoch. Rerunning the same command continues from there and gives the same
numbers as an uninterrupted run on the CPU.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml
from torch import nn

from fer import __version__
from fer.config import TrainConfig
from fer.constants import CLASS_NAMES, TEST, TRAIN, VAL
from fer.data.dataset import PreparedData
from fer.devices import acquire_device
from fer.early_stopping import EarlyStopping
from fer.errors import ConfigError, DataError
from fer.io import atomic_open, atomic_path, write_json
from fer.metrics import classification_metrics
from fer.train import DeviceSplit, Normalizer, evaluate, split_to_device, train_one_epoch

logger = logging.getLogger(__name__)

RESUME_FILE = "resume.pt"
HISTORY_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "event"]


@dataclass
class TrainingState:
    """Everything that changes from epoch to epoch, saved after each one."""

    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_accuracy: float = -math.inf
    best_epoch: int = 0
    best_weights: dict[str, torch.Tensor] | None = None
    finished: bool = False
    stopped_early: bool = False
    stop_reason: str = ""
    seconds: float = 0.0


@dataclass
class Trainer:
    """The objects of one training run, built from a config."""

    config: TrainConfig
    device: torch.device
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loss_fn: nn.Module
    eval_loss_fn: nn.Module
    stopper: EarlyStopping | None
    augment: Any
    normalizer: Normalizer
    shuffle_generator: torch.Generator
    augment_generator: torch.Generator


def seed_everything(seed: int, deterministic: bool) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    if deterministic:
        # cuBLAS needs this workspace setting to be deterministic; it must be set before the first CUDA call.
        import os

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True


def build_optimizer(config: TrainConfig, parameters) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_d, nesterov=config.nesterov)
    return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_d)


def build_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer):
    if config.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step, gamma=config.gamma)
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if config.scheduler == "plateau":
        # Cut the rate when validation accuracy stalls, as the published FER2013 recipes do.
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=config.gamma, patience=config.lr_patience)
    return None


def class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights, normalized to mean 1, so rare classes such as Disgust count more."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / num_classes, 0.0)
    return torch.tensor(weights / weights[counts > 0].mean(), dtype=torch.float32)


def subsample_training(labels: np.ndarray, max_images: int, seed: int) -> np.ndarray | None:
    """Pick a stratified subset of at most ``max_images`` training rows, or None to keep all."""
    if max_images <= 0 or max_images >= len(labels):
        return None
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(np.arange(len(labels)), train_size=max_images, stratify=labels, random_state=seed)
    return np.sort(keep)


def build_trainer(config: TrainConfig, data: PreparedData, device: torch.device, train_labels: np.ndarray) -> Trainer:
    from fer.augment import build_augmentation
    from fer.models import build_model

    seed_everything(config.seed, config.deterministic)
    model = build_model(config.arch, num_classes=len(CLASS_NAMES), channel_num=config.channel_num, image_size=data.image_size)
    model = model.to(device).to(memory_format=torch.channels_last)
    if config.checkpoint:
        model.load_state_dict(load_checkpoint(config.checkpoint, device)["state_dict"])
        logger.info("started from the weights in %s", config.checkpoint)

    optimizer = build_optimizer(config, model.parameters())
    weights = class_weights(train_labels, len(CLASS_NAMES)).to(device) if config.class_weighted_loss else None
    shuffle_generator = torch.Generator().manual_seed(config.seed)
    augment_generator = torch.Generator(device=device).manual_seed(config.seed + 1)
    return Trainer(
        config=config,
        device=device,
        model=model,
        optimizer=optimizer,
        scheduler=build_scheduler(config, optimizer),
        loss_fn=nn.CrossEntropyLoss(weight=weights, label_smoothing=config.label_smoothing),
        eval_loss_fn=nn.CrossEntropyLoss(),
        stopper=EarlyStopping(config.early_stop_rule, config.patience, config.min_delta) if config.early_stopping == "on" else None,
        augment=build_augmentation(config.augmentation, data.image_size),
        normalizer=Normalizer(data.mean, data.std),
        shuffle_generator=shuffle_generator,
        augment_generator=augment_generator,
    )


def save_resume_state(path: Path, trainer: Trainer, state: TrainingState) -> None:
    payload = {
        "fingerprint": trainer.config.fingerprint(),
        "state": state.__dict__,
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict() if trainer.scheduler is not None else None,
        "stopper": trainer.stopper.state_dict() if trainer.stopper is not None else None,
        "shuffle_generator": trainer.shuffle_generator.get_state(),
        "augment_generator": trainer.augment_generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if trainer.device.type == "cuda" else None,
    }
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)


def load_resume_state(path: Path, trainer: Trainer) -> TrainingState | None:
    """Restore the trainer from ``path`` and return the saved state, or None to start afresh."""
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location=trainer.device, weights_only=False)
    except Exception as error:  # A damaged file must not stop a fresh start.
        logger.warning("ignoring unreadable resume state %s (%s); starting from epoch 1", path, error)
        return None
    if payload.get("fingerprint") != trainer.config.fingerprint():
        logger.info("resume state %s belongs to other settings; starting from epoch 1", path)
        return None

    trainer.model.load_state_dict(payload["model"])
    trainer.optimizer.load_state_dict(payload["optimizer"])
    if trainer.scheduler is not None:
        trainer.scheduler.load_state_dict(payload["scheduler"])
    if trainer.stopper is not None:
        trainer.stopper.load_state_dict(payload["stopper"])
    trainer.shuffle_generator.set_state(payload["shuffle_generator"])
    trainer.augment_generator.set_state(payload["augment_generator"].to(trainer.augment_generator.device) if trainer.device.type != "cpu" else payload["augment_generator"])
    torch.set_rng_state(payload["torch_rng"].cpu())
    if payload["cuda_rng"] is not None:
        torch.cuda.set_rng_state_all([state.cpu() for state in payload["cuda_rng"]])
    state = TrainingState(**payload["state"])
    logger.info("resuming after epoch %d from %s", state.epoch, path)
    return state


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def run_epoch(trainer: Trainer, train_split: DeviceSplit, val_split: DeviceSplit, state: TrainingState) -> None:
    """Train one epoch, validate, update the best weights, the schedule and early stopping."""
    config = trainer.config
    started = time.perf_counter()
    learning_rate = current_lr(trainer.optimizer)
    trained = train_one_epoch(
        trainer.model,
        train_split,
        optimizer=trainer.optimizer,
        loss_fn=trainer.loss_fn,
        normalizer=trainer.normalizer,
        augment=trainer.augment,
        batch_size=config.batch_size,
        shuffle_generator=trainer.shuffle_generator,
        augment_generator=trainer.augment_generator,
        autocast_mode=config.autocast,
    )
    validated = evaluate(trainer.model, val_split, loss_fn=trainer.eval_loss_fn, normalizer=trainer.normalizer, batch_size=config.val_batch_size, autocast_mode=config.autocast)
    state.epoch += 1

    events = []
    if validated.accuracy > state.best_accuracy:
        state.best_accuracy, state.best_epoch = validated.accuracy, state.epoch
        state.best_weights = copy.deepcopy({key: value.detach().cpu() for key, value in trainer.model.state_dict().items()})
        events.append("best")
    if isinstance(trainer.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        trainer.scheduler.step(validated.accuracy)
    elif trainer.scheduler is not None:
        trainer.scheduler.step()
    if trainer.stopper is not None and trainer.stopper.step(validated.loss):
        state.finished, state.stopped_early, state.stop_reason = True, True, trainer.stopper.reason
        events.append(f"stopped: {trainer.stopper.reason}")
    if state.epoch >= config.epochs and not state.finished:
        state.finished, state.stop_reason = True, f"reached the maximum of {config.epochs} epochs"

    seconds = time.perf_counter() - started
    state.seconds += seconds
    state.history.append(
        {
            "epoch": state.epoch,
            "train_loss": trained.loss,
            "train_acc": trained.accuracy,
            "val_loss": validated.loss,
            "val_acc": validated.accuracy,
            "lr": learning_rate,
            "seconds": round(seconds, 3),
            "event": "; ".join(events),
        }
    )
    logger.info(
        "epoch %d/%d  train loss %.4f acc %.4f  val loss %.4f acc %.4f  lr %.2e  %.1f s%s",
        state.epoch, config.epochs, trained.loss, trained.accuracy, validated.loss, validated.accuracy,
        learning_rate, seconds, f"  [{'; '.join(events)}]" if events else "",
    )


def fit(config: TrainConfig, data: PreparedData, out_dir: str | Path) -> dict[str, Any]:
    """Train one cell into ``out_dir`` and return its metrics (also written to metrics.json)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_data(data)
    started = time.perf_counter()

    with acquire_device(config.device) as device:
        train_images, train_labels, _ = data.split_arrays(TRAIN)
        keep = subsample_training(train_labels, config.max_train_images, config.seed)
        trainer = build_trainer(config, data, device, train_labels if keep is None else train_labels[keep])
        train_split = split_to_device(data, TRAIN, device, keep)
        val_split = split_to_device(data, VAL, device)
        logger.info(
            "training %s (augmentation %s, early stopping %s, seed %d) on %s (%d CPU threads) with %s: %d training, %d validation images",
            config.arch, config.augmentation, config.early_stopping, config.seed, device, torch.get_num_threads(),
            data.info.get("source_name", data.info.get("source", "the prepared dataset")), len(train_split), len(val_split),
        )

        wandb_run = start_wandb(config, data, out_dir)
        resume_path = out_dir / RESUME_FILE
        state = load_resume_state(resume_path, trainer) or TrainingState()
        while not state.finished:
            run_epoch(trainer, train_split, val_split, state)
            save_resume_state(resume_path, trainer, state)
            if wandb_run is not None:
                wandb_run.log({key: value for key, value in state.history[-1].items() if key != "event"})

        metrics = finish_run(trainer, data, state, out_dir, device, time.perf_counter() - started)
        if wandb_run is not None:
            wandb_run.summary.update({"val_accuracy": metrics["val"]["accuracy"], "test_accuracy": (metrics["test"] or {}).get("accuracy")})
            wandb_run.finish()
    resume_path.unlink(missing_ok=True)
    return metrics


def start_wandb(config: TrainConfig, data: PreparedData, out_dir: Path):
    """Start a Weights & Biases run when ``config.wandb`` is set, else return None."""
    if not config.wandb:
        return None
    try:
        import wandb
    except ImportError:
        raise ConfigError("wandb = true but the wandb package is not installed; run 'pip install wandb' or set wandb: false") from None
    name = f"{config.arch}-{config.augmentation}-es_{config.early_stopping}-seed{config.seed}"
    return wandb.init(project=config.wandb_project, mode=config.wandb_mode, dir=str(out_dir), name=name, config=config.to_dict() | {"data": data_summary(data)})


def check_data(data: PreparedData) -> None:
    if not data.is_labeled(TRAIN):
        raise DataError("the training split is empty or has unlabeled images; check the dataset's training labels")
    if not data.is_labeled(VAL):
        raise DataError("the validation split is empty or unlabeled; set val_fraction above 0 or provide labeled validation images")


def finish_run(trainer: Trainer, data: PreparedData, state: TrainingState, out_dir: Path, device: torch.device, seconds: float) -> dict[str, Any]:
    """Evaluate the best weights on validation and test data and write every output file."""
    from fer.augment import ten_crop_predict

    config = trainer.config
    trainer.model.load_state_dict(state.best_weights)
    tta = ten_crop_predict if config.tta else None
    evaluation_kwargs = dict(loss_fn=trainer.eval_loss_fn, normalizer=trainer.normalizer, batch_size=config.val_batch_size, autocast_mode=config.autocast, tta=tta)

    val_split = split_to_device(data, VAL, device)
    validated = evaluate(trainer.model, val_split, **evaluation_kwargs)
    val_metrics = classification_metrics(val_split.labels.cpu().numpy(), validated.predictions) | {"loss": validated.loss}

    test_split = split_to_device(data, TEST, device)
    test_metrics = None
    predictions = None
    if len(test_split) > 0:
        tested = evaluate(trainer.model, test_split, **evaluation_kwargs)
        predictions = tested.predictions
        if test_split.labeled:
            test_metrics = classification_metrics(test_split.labels.cpu().numpy(), predictions)
        write_predictions(out_dir / "predictions.csv", test_split, predictions)
    else:
        write_predictions(out_dir / "predictions.csv", test_split, np.zeros(0, dtype=np.int64))

    write_history(out_dir / "history.csv", state.history)
    save_checkpoint(out_dir / "model.pt", trainer, data, state)
    with atomic_open(out_dir / "config.yaml", "w", encoding="utf-8") as stream:
        yaml.safe_dump(config.to_dict(), stream, sort_keys=False)

    metrics = {
        "cell": {"arch": config.arch, "augmentation": config.augmentation, "early_stopping": config.early_stopping, "seed": config.seed},
        "val": val_metrics,
        "test": test_metrics,
        "best_epoch": state.best_epoch,
        "epochs_run": state.epoch,
        "stopped_early": state.stopped_early,
        "stop_reason": state.stop_reason,
        "parameters": sum(parameter.numel() for parameter in trainer.model.parameters()),
        "seconds": round(seconds, 2),
        "training_seconds": round(state.seconds, 2),
        "device": str(device) if device.type != "cuda" else f"{device} ({torch.cuda.get_device_name(device)})",
        # CPU results can differ between thread counts, so the count is part of the record.
        "cpu_threads": torch.get_num_threads(),
        "tta": config.tta,
        "data": data_summary(data),
        "config": config.to_dict(),
        "fer_version": __version__,
    }
    write_json(out_dir / "metrics.json", metrics)
    score = f"test accuracy {test_metrics['accuracy']:.4f}, macro-F1 {test_metrics['macro_f1']:.4f}" if test_metrics else "no test labels"
    logger.info("best epoch %d of %d (val accuracy %.4f); %s", state.best_epoch, state.epoch, val_metrics["accuracy"], score)
    return metrics


def data_summary(data: PreparedData) -> dict[str, Any]:
    keys = ("source", "source_name", "layout", "protocol", "split_sizes", "mean", "std", "image_size", "content_hash")
    return {key: data.info[key] for key in keys if key in data.info}


def write_history(path: Path, history: list[dict[str, Any]]) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as stream:
        pd.DataFrame(history, columns=HISTORY_COLUMNS).to_csv(stream, index=False, float_format="%.17g")


def write_predictions(path: Path, split: DeviceSplit, predictions: np.ndarray) -> None:
    """Write ``id,label`` (predicted class index) plus the class name and the true label where known."""
    labels = split.labels.cpu().numpy()
    frame = pd.DataFrame(
        {
            "id": split.ids,
            "label": predictions.astype(np.int64),
            "class_name": [CLASS_NAMES[index] for index in predictions],
            "true_label": np.where(labels >= 0, labels, -1),
        }
    )
    with atomic_open(path, "w", encoding="utf-8", newline="") as stream:
        frame.to_csv(stream, index=False)


def save_checkpoint(path: Path, trainer: Trainer, data: PreparedData, state: TrainingState) -> None:
    payload = {
        "state_dict": state.best_weights,
        "arch": trainer.config.arch,
        "channel_num": trainer.config.channel_num,
        "image_size": list(data.image_size),
        "mean": data.mean,
        "std": data.std,
        "class_names": list(CLASS_NAMES),
        "best_epoch": state.best_epoch,
        "config": trainer.config.to_dict(),
        "fer_version": __version__,
    }
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load a ``model.pt`` written by training; raises ConfigError for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} not found; pass the model.pt of a finished run, e.g. results/runs/cnn3/none/off/seed-5566/model.pt")
    try:
        payload = torch.load(path, map_location=device, weights_only=False)
    except Exception as error:
        raise ConfigError(f"checkpoint {path} is unreadable ({error}); pass a model.pt written by fer") from None
    if not isinstance(payload, dict) or "state_dict" not in payload or "arch" not in payload:
        raise ConfigError(f"checkpoint {path} was not written by fer (no 'state_dict' and 'arch'); pass a model.pt from a run folder")
    return payload
