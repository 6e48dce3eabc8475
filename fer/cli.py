"""The ``fer`` command line: prepare a dataset, train one cell, predict with a checkpoint.

``fer train`` accepts every flag of the course script under the same name
(``--epochs``, ``--lr``, ``--batch_size``, ``--val_batch_size``,
``--optimizer``, ``--weight_d``, ``--momentum``, ``--gamma``, ``--step``,
``--channel_num``, ``-c/--checkpoint``, ``--mode``, ``--early_stop``,
``--data_aug``, ``--plot_cm``, ``--wandb``) and writes the same files as a
cell of the Snakemake workflow.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import fields
from pathlib import Path
from typing import Any, Sequence

import yaml

from fer import __version__
from fer.config import TrainConfig
from fer.constants import TEST
from fer.errors import ConfigError
from fer.logs import exit_on_user_error, setup_logging

logger = logging.getLogger(__name__)

HELP = {
    "arch": "architecture: cnn1, cnn3, cnn4, cnn4new, resnet18 or vgg",
    "augmentation": "augmentation policy: none, homework (the course's Ver. 1) or standard",
    "early_stopping": "early stopping: on or off",
    "seed": "random seed of weights, shuffling and augmentation",
    "epochs": "maximum number of epochs",
    "lr": "initial learning rate",
    "batch_size": "training batch size",
    "val_batch_size": "batch size for validation and test",
    "optimizer": "adam or sgd",
    "weight_d": "weight decay (L2 penalty)",
    "momentum": "SGD momentum",
    "nesterov": "use Nesterov momentum with SGD",
    "scheduler": "learning-rate schedule: step (StepLR), cosine, plateau (cut by gamma when val accuracy stalls) or none",
    "gamma": "factor the learning rate is multiplied by at each cut",
    "step": "StepLR period in epochs",
    "lr_patience": "epochs without val-accuracy gain before the plateau schedule cuts the rate",
    "channel_num": "base channel count C of the cnn models (the course default is 64)",
    "early_stop_rule": "rises: stop when val loss rose PATIENCE epochs in a row (course rule); patience: stop after PATIENCE epochs without improvement",
    "patience": "epochs counted by the early-stopping rule",
    "min_delta": "loss change below which the early-stopping rule ignores a rise or an improvement",
    "label_smoothing": "label smoothing of the cross-entropy loss (0 to 0.99)",
    "class_weighted_loss": "weight the loss by inverse class frequency",
    "tta": "evaluate with ten-crop test-time augmentation",
    "max_train_images": "train on a stratified subset of at most this many images (0 = all)",
    "device": "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps",
    "autocast": "bfloat16 autocast: auto (on CUDA only), bf16 (also on the CPU) or off",
    "deterministic": "use deterministic algorithms on CUDA (slower)",
    "checkpoint": "model.pt to start training from",
    "wandb": "log to Weights & Biases (needs 'pip install wandb')",
    "wandb_project": "Weights & Biases project name",
    "wandb_mode": "Weights & Biases mode: offline, online or disabled",
}


def add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--data", default="auto", help="dataset: a folder or CSV, a prepared .npz, 'demo', or 'auto' (data/fer2013 if present, else demo)")
    group.add_argument("--layout", default="auto", help="dataset layout when detection is ambiguous (default: auto)")
    group.add_argument("--protocol", default="auto", choices=["auto", "official", "holdout"], help="split protocol")
    group.add_argument("--val_fraction", type=float, default=0.12, help="validation fraction for the holdout protocol")
    group.add_argument("--split_seed", type=int, default=5566, help="seed of the holdout split")
    group.add_argument("--image_size", type=int, default=None, help="resize images to this size (default: keep)")
    group.add_argument("--on_corrupt", default="error", choices=["error", "skip"], help="what to do with corrupt images")
    group.add_argument("--demo_size", type=int, default=3500, help="number of synthetic images when --data demo")
    group.add_argument("--cache_dir", default="results/prepared", help="folder of prepared datasets")


def add_training_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training (named like the course script's flags)")
    for field in fields(TrainConfig):
        flag = f"--{field.name}"
        if field.type == "bool":
            group.add_argument(flag, action="store_true", default=None, help=HELP.get(field.name))
        elif field.name == "checkpoint":
            group.add_argument("-c", flag, default=None, help=HELP.get(field.name))
        else:
            kind = {"int": int, "float": float, "str": str}[field.type]
            group.add_argument(flag, type=kind, default=None, help=f"{HELP.get(field.name, '')} (default: {field.default})")
    group.add_argument("--early_stop", action="store_true", help="course switch: same as --early_stopping on")
    group.add_argument("--data_aug", action="store_true", help="course switch: same as --augmentation homework")
    group.add_argument("--plot_cm", action="store_true", help="also save the normalized confusion matrix as confusion_matrix.png")
    group.add_argument("--config", dest="config_file", default=None, help="YAML file of training settings; flags override it")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fer", description="Facial-expression classifiers on FER2013: prepare, train, test.")
    parser.add_argument("--version", action="version", version=f"fer {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    prepare = commands.add_parser("prepare", help="read a dataset once into a prepared .npz file")
    add_data_options(prepare)
    prepare.add_argument("--out", required=True, help="prepared .npz file to write")

    train = commands.add_parser("train", help="train one cell into a run folder")
    add_data_options(train)
    train.add_argument("--out", required=True, help="run folder for metrics.json, history.csv, model.pt, predictions.csv")
    train.add_argument("--mode", default="train", choices=["train", "test"], help="course switch: test runs 'fer test' with -c and --out as the predictions file")
    add_training_options(train)

    test = commands.add_parser("test", help="write id,label predictions of a checkpoint for the test images")
    add_data_options(test)
    test.add_argument("-c", "--checkpoint", required=True, help="model.pt of a finished run")
    test.add_argument("--out", required=True, help="predictions CSV to write (id,label)")
    test.add_argument("--split", default="test", choices=["test", "val", "train"], help="which split to predict")
    test.add_argument("--val_batch_size", type=int, default=128, help="batch size")
    test.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    return parser


def training_settings(args: argparse.Namespace) -> TrainConfig:
    """Merge the --config file and the flags into a TrainConfig."""
    values: dict[str, Any] = {}
    if args.config_file:
        path = Path(args.config_file)
        if not path.is_file():
            raise ConfigError(f"--config {path}: file not found; pass a YAML file of training settings")
        values.update(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    for field in fields(TrainConfig):
        value = getattr(args, field.name, None)
        if value is not None:
            values[field.name] = value
    if args.early_stop:
        values["early_stopping"] = "on"
    if args.data_aug:
        values["augmentation"] = "homework"
    return TrainConfig.from_mapping(values, where="fer train")


def prepare_from_args(args: argparse.Namespace, out: str | Path | None = None):
    """Prepare (or reuse) the dataset named by --data and return it."""
    from fer.data.dataset import load_prepared
    from fer.data.prepare import prepare_dataset, resolve_data_source, source_fingerprint

    if str(args.data).endswith(".npz"):
        return load_prepared(args.data)
    source = resolve_data_source(args.data)
    settings = dict(
        layout=args.layout, protocol=args.protocol, val_fraction=args.val_fraction, split_seed=args.split_seed,
        image_size=args.image_size, on_corrupt=args.on_corrupt, demo_size=args.demo_size,
    )
    if out is None:
        out = Path(args.cache_dir) / f"prepared-{source_fingerprint(source, **settings)}.npz"
        if Path(out).is_file():
            logger.info("using the prepared dataset %s", out)
            return load_prepared(out)
    return prepare_dataset(source, out, **settings, cache_dir=args.cache_dir)


def command_prepare(args: argparse.Namespace) -> None:
    data = prepare_from_args(args, out=args.out)
    logger.info("wrote %s: %s", args.out, data.split_sizes())


def command_train(args: argparse.Namespace) -> None:
    if args.mode == "test":
        if not args.checkpoint:
            raise ConfigError("--mode test needs -c CHECKPOINT (a model.pt); --out is the predictions CSV")
        args.split = "test"
        args.device = args.device or "auto"
        args.val_batch_size = args.val_batch_size or 128
        command_test(args)
        return

    from fer.fit import fit

    config = training_settings(args)
    data = prepare_from_args(args)
    metrics = fit(config, data, args.out)
    if args.plot_cm:
        save_confusion_matrix(metrics, Path(args.out) / "confusion_matrix.png")


def save_confusion_matrix(metrics: dict[str, Any], path: Path) -> None:
    import numpy as np

    from fer.plots import plot_confusion_matrix, save_figure

    scores = metrics["test"] or metrics["val"]
    axes = plot_confusion_matrix(np.asarray(scores["confusion_matrix"]))
    save_figure(axes.figure, path)
    logger.info("wrote %s", path)


def command_test(args: argparse.Namespace) -> None:
    from fer.predict import predict_to_csv

    data = prepare_from_args(args)
    split = {"train": 0, "val": 1, "test": TEST}[args.split]
    predict_to_csv(args.checkpoint, data, split, args.out, device=args.device, batch_size=args.val_batch_size)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    setup_logging()
    command = {"prepare": command_prepare, "train": command_train, "test": command_test}[args.command]
    exit_on_user_error(command, args)


if __name__ == "__main__":
    main()
