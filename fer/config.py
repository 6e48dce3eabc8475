"""The typed training configuration shared by the CLI and the workflow.

Keys are named like the flags of the course script (``epochs``, ``lr``,
``batch_size``, ``val_batch_size``, ``optimizer``, ``weight_d``,
``momentum``, ``gamma``, ``step``, ``channel_num``), so a value can move
between ``--config KEY=VALUE`` and ``fer train --KEY VALUE`` unchanged.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from dataclasses import dataclass, fields
from typing import Any, Mapping

from fer.errors import ConfigError

ARCHITECTURES = ("cnn1", "cnn3", "cnn4", "cnn4new", "resnet18", "vgg")
AUGMENTATIONS = ("none", "homework", "standard")
EARLY_STOPPING = ("off", "on")
OPTIMIZERS = ("adam", "sgd")
SCHEDULERS = ("step", "cosine", "plateau", "none")
EARLY_STOP_RULES = ("rises", "patience")
DEVICES = ("auto", "cpu", "cuda", "mps")
AUTOCAST_MODES = ("auto", "bf16", "off")


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of one training cell.

    Defaults follow the course script: epochs 30, lr 0.01, batch sizes
    64/128, Adam, weight decay 1e-2, momentum 0.9 and 64 channels. The
    schedule is StepLR with gamma 0.5 every 20 epochs, the seed is 5566,
    and early stopping uses the course rule (validation loss rose 5 epochs
    in a row).
    """

    arch: str = "cnn3"
    augmentation: str = "none"
    early_stopping: str = "off"
    seed: int = 5566
    epochs: int = 30
    lr: float = 0.01
    batch_size: int = 64
    val_batch_size: int = 128
    optimizer: str = "adam"
    weight_d: float = 1e-2
    momentum: float = 0.9
    nesterov: bool = False
    scheduler: str = "step"
    gamma: float = 0.5
    step: int = 20
    lr_patience: int = 5
    channel_num: int = 64
    early_stop_rule: str = "rises"
    patience: int = 5
    min_delta: float = 0.0
    label_smoothing: float = 0.0
    class_weighted_loss: bool = False
    tta: bool = False
    max_train_images: int = 0
    device: str = "auto"
    autocast: str = "auto"
    deterministic: bool = False
    checkpoint: str = ""
    wandb: bool = False
    wandb_project: str = "fer-ablation"
    wandb_mode: str = "offline"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, where: str = "config") -> "TrainConfig":
        """Build a config from ``values``, ignoring keys that are not training settings.

        Raises ConfigError naming the key, the bad value and the allowed
        values. ``where`` names the origin in messages (a file or "--config").
        """
        known = {field.name: field for field in fields(cls)}
        converted = {}
        for name, value in values.items():
            if name in known:
                converted[name] = _convert(name, value, known[name].type, where)
        config = cls(**converted)
        config.validate(where=where)
        return config

    def validate(self, *, where: str = "config") -> None:
        _check_choice("arch", self.arch, ARCHITECTURES, where)
        _check_choice("augmentation", self.augmentation, AUGMENTATIONS, where)
        _check_choice("early_stopping", self.early_stopping, EARLY_STOPPING, where)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS, where)
        _check_choice("scheduler", self.scheduler, SCHEDULERS, where)
        _check_choice("early_stop_rule", self.early_stop_rule, EARLY_STOP_RULES, where)
        _check_choice("device", self.device.split(":")[0], DEVICES, where)
        _check_choice("autocast", self.autocast, AUTOCAST_MODES, where)
        _check_choice("wandb_mode", self.wandb_mode, ("offline", "online", "disabled"), where)
        for name in ("epochs", "batch_size", "val_batch_size", "step", "lr_patience", "channel_num", "patience"):
            _check_range(name, getattr(self, name), where, minimum=1)
        for name in ("lr", "momentum", "weight_d", "min_delta", "max_train_images"):
            _check_range(name, getattr(self, name), where, minimum=0)
        _check_range("lr", self.lr, where, minimum=0, exclusive=True)
        _check_range("gamma", self.gamma, where, minimum=0, exclusive=True, maximum=1)
        _check_range("label_smoothing", self.label_smoothing, where, minimum=0, maximum=0.99)
        if self.arch in ("cnn3",) and self.channel_num < 4:
            raise ConfigError(f"{where}: channel_num = {self.channel_num} is too small for cnn3, whose third block has channel_num/4 channels; use 4 or more")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Hash of every setting that changes the trained weights, used to match resume state."""
        ignored = {"device", "wandb", "wandb_project", "wandb_mode"}
        payload = {key: value for key, value in self.to_dict().items() if key not in ignored}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _convert(name: str, value: Any, annotation: Any, where: str) -> Any:
    """Convert a YAML or command-line value to the field's type, or raise ConfigError."""
    kind = {"int": int, "float": float, "bool": bool, "str": str}[str(annotation)]
    if value is None and kind is str:
        return ""
    if kind is bool:
        return _to_bool(name, value, where)
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind is int and isinstance(value, bool) or kind is float and isinstance(value, bool):
        raise ConfigError(f"{where}: {name} = {value!r} is not a number; give a {kind.__name__}")
    try:
        converted = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {name} = {value!r} is not a valid {kind.__name__}; give a {kind.__name__}") from None
    if kind is int and not isinstance(value, str) and converted != value:
        raise ConfigError(f"{where}: {name} = {value!r} is not a whole number; give an int")
    return converted


def _to_bool(name: str, value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0", ""):
        return False
    raise ConfigError(f"{where}: {name} = {value!r} is not a boolean; use true or false")


def _check_choice(name: str, value: str, allowed: tuple[str, ...], where: str) -> None:
    if value in allowed:
        return
    suggestion = difflib.get_close_matches(str(value), allowed, n=1)
    hint = f" Did you mean {suggestion[0]!r}?" if suggestion else ""
    raise ConfigError(f"{where}: {name} = {value!r} is not allowed; use one of {', '.join(allowed)}.{hint}")


def _check_range(name: str, value: float, where: str, *, minimum: float, maximum: float | None = None, exclusive: bool = False) -> None:
    too_small = value <= minimum if exclusive else value < minimum
    too_large = maximum is not None and value > maximum
    if too_small or too_large:
        bound = f"greater than {minimum}" if exclusive else f"at least {minimum}"
        if maximum is not None:
            bound += f" and at most {maximum}"
        raise ConfigError(f"{where}: {name} = {value!r} is out of range; it must be {bound}")


def suggest_key(name: str) -> str:
    """Return a 'Did you mean' hint for an unknown key, or an empty string."""
    candidates = [field.name for field in fields(TrainConfig)]
    match = difflib.get_close_matches(name, candidates, n=1)
    return f" Did you mean {match[0]!r}?" if match else ""
