from pathlib import Path

import pytest

from fer.config import TrainConfig
from fer.errors import ConfigError
from fer.workflow import cell_config, expand_cells, validate_config

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
BASE = {"data": "demo", "architectures": ["cnn3", "cnn4"], "augmentation": ["none", "homework"], "early_stopping": [False, True], "seeds": [1]}


def test_course_defaults():
    config = TrainConfig()
    assert (config.epochs, config.lr, config.batch_size, config.val_batch_size) == (30, 0.01, 64, 128)
    assert (config.optimizer, config.weight_d, config.gamma, config.step, config.channel_num) == ("adam", 0.01, 0.5, 20, 64)


def test_string_values_are_converted():
    config = TrainConfig.from_mapping({"epochs": "3", "lr": "0.001", "tta": "true"})
    assert config.epochs == 3
    assert config.lr == 0.001
    assert config.tta is True


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"epochs": 0}, "epochs = 0 is out of range"),
        ({"optimizer": "adm"}, "Did you mean 'adam'"),
        ({"lr": "fast"}, "lr = 'fast' is not a valid float"),
        ({"epochs": 2.5}, "epochs = 2.5 is not a whole number"),
        ({"gamma": 1.5}, "gamma = 1.5 is out of range"),
        ({"tta": "maybe"}, "tta = 'maybe' is not a boolean"),
    ],
)
def test_bad_values_name_key_and_value(values, expected):
    with pytest.raises(ConfigError, match=expected):
        TrainConfig.from_mapping(values)


def test_fingerprint_ignores_device_only():
    assert TrainConfig(device="cpu").fingerprint() == TrainConfig(device="cuda").fingerprint()
    assert TrainConfig(lr=0.1).fingerprint() != TrainConfig(lr=0.2).fingerprint()


def test_workflow_grid_expands_and_reads_yaml_booleans():
    study = validate_config(BASE, SCHEMA)
    cells = expand_cells(study)
    assert len(cells) == 8
    assert {cell.early_stopping for cell in cells} == {"on", "off"}
    assert cells[0].run_dir == "results/runs/cnn3/none/off/seed-1"


def test_arch_settings_change_only_that_architecture():
    study = validate_config(BASE | {"lr": 0.01, "arch_settings": {"cnn4": {"lr": 0.5}}}, SCHEMA)
    settings = {cell.arch: cell_config(study, cell).lr for cell in expand_cells(study)}
    assert settings == {"cnn3": 0.01, "cnn4": 0.5}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"epoch": 3}, "'epoch' is unknown. Did you mean 'epochs'"),
        ({"epochs": -1}, "'epochs' = -1 is invalid"),
        ({"architectures": ["cnn5"]}, "'architectures.0' = 'cnn5' is not allowed"),
        ({"optimizer": "rmsprop"}, "'optimizer' = 'rmsprop' is not allowed; use one of adam, sgd"),
        ({"arch_settings": {"cnn3": {"seeds": [1]}}}, "arch_settings.cnn3.seeds cannot differ per architecture"),
    ],
)
def test_workflow_config_errors(change, expected):
    with pytest.raises(ConfigError, match=expected):
        validate_config(BASE | change, SCHEMA)
