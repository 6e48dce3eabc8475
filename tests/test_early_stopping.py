import pytest

from fer.early_stopping import EarlyStopping
from fer.errors import ConfigError


def run(stopper: EarlyStopping, losses: list[float]) -> int | None:
    """Return the 1-based epoch at which the stopper fires, or None."""
    for epoch, loss in enumerate(losses, start=1):
        if stopper.step(loss):
            return epoch
    return None


def test_rises_stops_after_consecutive_rises():
    losses = [1.0, 0.9, 0.95, 1.0, 1.1]
    assert run(EarlyStopping("rises", patience=3), losses) == 5


def test_rises_counter_resets_on_a_fall():
    losses = [1.0, 1.1, 1.2, 1.0, 1.1, 1.2]
    assert run(EarlyStopping("rises", patience=3), losses) is None


def test_rises_reason_names_the_count():
    stopper = EarlyStopping("rises", patience=2)
    run(stopper, [1.0, 1.1, 1.2])
    assert stopper.reason == "validation loss rose 2 epochs in a row"


def test_patience_counts_epochs_without_improvement():
    losses = [1.0, 0.8, 0.9, 0.85, 0.81, 0.82]
    assert run(EarlyStopping("patience", patience=3), losses) == 5


def test_patience_min_delta_ignores_tiny_gains():
    losses = [1.0, 0.999, 0.998, 0.997]
    assert run(EarlyStopping("patience", patience=3, min_delta=0.01), losses) == 4


def test_state_round_trip_continues_identically():
    losses = [1.0, 1.1, 0.9, 1.0, 1.05, 1.2, 1.3]
    whole = EarlyStopping("rises", patience=3)
    expected = run(whole, losses)

    first = EarlyStopping("rises", patience=3)
    run(first, losses[:4])
    second = EarlyStopping("rises", patience=3)
    second.load_state_dict(first.state_dict())
    resumed = run(second, losses[4:])

    assert expected == 6
    assert resumed is not None and resumed + 4 == expected


def test_unknown_rule_is_a_config_error():
    with pytest.raises(ConfigError, match="early_stop_rule = 'sometimes'"):
        EarlyStopping("sometimes")
