"""The study config of the Snakemake workflow: validation and the grid of cells.

The Snakefile calls these functions, so the rules stay short and the logic
is tested like the rest of the package.
"""

from __future__ import annotations

import difflib
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

from fer.config import TrainConfig
from fer.errors import ConfigError

GRID_KEYS = ("architectures", "augmentation", "early_stopping", "seeds")
PREPARE_KEYS = ("layout", "protocol", "val_fraction", "split_seed", "image_size", "on_corrupt", "drop_cross_split_duplicates", "demo_size")
RUNS_DIR = "results/runs"


@dataclass(frozen=True)
class Cell:
    """One training job of the grid."""

    arch: str
    augmentation: str
    early_stopping: str
    seed: int

    @property
    def run_dir(self) -> str:
        return f"{RUNS_DIR}/{self.arch}/{self.augmentation}/{self.early_stopping}/seed-{self.seed}"


def _on_off(value: Any) -> Any:
    # YAML 1.1 reads unquoted on/off as booleans; the grid wants the words.
    if value is True:
        return "on"
    if value is False:
        return "off"
    return value


def _integer_text(value: Any) -> Any:
    # Snakemake reads the items of a --config list such as seeds=[1,2,3] as
    # strings. Other text is left for the schema to reject with its key.
    if not isinstance(value, str):
        return value
    try:
        return int(value)
    except ValueError:
        return value


def normalize_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy with grid keys as lists, seeds as integers and on/off booleans as words."""
    normalized = dict(config)
    for key in GRID_KEYS:
        if key in normalized and not isinstance(normalized[key], (list, tuple)):
            normalized[key] = [normalized[key]]
    if "seeds" in normalized:
        normalized["seeds"] = [_integer_text(value) for value in normalized["seeds"]]
    if "early_stopping" in normalized:
        normalized["early_stopping"] = [_on_off(value) for value in normalized["early_stopping"]]
    if "autocast" in normalized:
        normalized["autocast"] = _on_off(normalized["autocast"])
    if normalized.get("checkpoint") is None:
        normalized.pop("checkpoint", None)
    return normalized


def validate_config(config: Mapping[str, Any], schema_path: str | Path) -> dict[str, Any]:
    """Validate the study config against the JSON schema and return it normalized.

    Raises ConfigError naming the key, the bad value and what is allowed.
    """
    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    normalized = normalize_config(config)
    _reject_unknown_keys(normalized, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(normalized), key=lambda error: list(error.absolute_path))
    if errors:
        raise ConfigError(_describe_schema_error(errors[0]))
    for arch, overrides in normalized.get("arch_settings", {}).items():
        _reject_unknown_keys(overrides, schema, where=f"arch_settings.{arch}")
        _reject_grid_keys(overrides, arch)
    for cell in expand_cells(normalized):
        cell_config(normalized, cell)
    return normalized


def _reject_unknown_keys(config: Mapping[str, Any], schema: Mapping[str, Any], where: str = "") -> None:
    known = list(schema["properties"])
    for key in config:
        if key not in known:
            match = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean {match[0]!r}?" if match else ""
            location = f"{where}.{key}" if where else key
            raise ConfigError(f"config key {location!r} is unknown.{hint} The keys are listed in config/config.yaml.")


def _reject_grid_keys(overrides: Mapping[str, Any], arch: str) -> None:
    for key in ("architectures", "augmentation", "early_stopping", "seeds", "data") + PREPARE_KEYS:
        if key in overrides:
            raise ConfigError(f"config key arch_settings.{arch}.{key} cannot differ per architecture; set {key} at the top level")


def _describe_schema_error(error: jsonschema.ValidationError) -> str:
    key = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    if error.validator == "required":
        return f"config is missing a required key: {error.message}; add it to config/config.yaml"
    if error.validator == "enum":
        allowed = ", ".join(str(value) for value in error.validator_value)
        return f"config key {key!r} = {error.instance!r} is not allowed; use one of {allowed}"
    return f"config key {key!r} = {error.instance!r} is invalid: {error.message}. Fix it in the config file or with --config {key.split('.')[0]}=VALUE"


def expand_cells(config: Mapping[str, Any]) -> list[Cell]:
    """Return every cell of the grid architectures x augmentation x early stopping x seeds."""
    grid = itertools.product(config["architectures"], config["augmentation"], config["early_stopping"], config["seeds"])
    return [Cell(arch, augmentation, early_stopping, int(seed)) for arch, augmentation, early_stopping, seed in grid]


def cell_config(config: Mapping[str, Any], cell: Cell) -> TrainConfig:
    """Resolve the training settings of one cell: top-level keys, then the architecture's overrides."""
    values = dict(config)
    values.update(config.get("arch_settings", {}).get(cell.arch, {}))
    values.update(arch=cell.arch, augmentation=cell.augmentation, early_stopping=cell.early_stopping, seed=cell.seed)
    where = f"config (cell {cell.run_dir})"
    return TrainConfig.from_mapping(values, where=where)


def prepare_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return the settings of the prepare step that the config sets."""
    return {key: config[key] for key in PREPARE_KEYS if key in config}
