"""Early-stopping rules on the validation loss.

Two rules are available:

- ``rises`` (the course rule): stop once the validation loss has risen
  ``patience`` epochs in a row, each epoch's loss being more than
  ``min_delta`` above the epoch before it.
- ``patience``: stop once ``patience`` epochs have passed without the
  validation loss improving on its best value by more than ``min_delta``.

Either way the weights that are evaluated are the best by validation
accuracy, not the weights of the last epoch.
"""

from __future__ import annotations

import math
from typing import Any

from fer.config import EARLY_STOP_RULES
from fer.errors import ConfigError


class EarlyStopping:
    def __init__(self, rule: str = "rises", patience: int = 5, min_delta: float = 0.0) -> None:
        if rule not in EARLY_STOP_RULES:
            raise ConfigError(f"early_stop_rule = {rule!r} is not allowed; use one of {', '.join(EARLY_STOP_RULES)}")
        self.rule = rule
        self.patience = patience
        self.min_delta = min_delta
        self.previous_loss = math.inf
        self.best_loss = math.inf
        self.counter = 0
        self.reason = ""

    def step(self, val_loss: float) -> bool:
        """Record one epoch's validation loss and return True when training should stop."""
        if self.rule == "rises":
            rose = val_loss > self.previous_loss + self.min_delta
            self.counter = self.counter + 1 if rose else 0
            self.previous_loss = val_loss
            if self.counter >= self.patience:
                self.reason = f"validation loss rose {self.counter} epochs in a row"
        else:
            if val_loss < self.best_loss - self.min_delta:
                self.best_loss = val_loss
                self.counter = 0
            else:
                self.counter += 1
            if self.counter >= self.patience:
                self.reason = f"validation loss did not improve for {self.counter} epochs"
        return self.counter >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "patience": self.patience,
            "min_delta": self.min_delta,
            "previous_loss": self.previous_loss,
            "best_loss": self.best_loss,
            "counter": self.counter,
            "reason": self.reason,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
