"""Reading, preparing and generating facial-expression datasets."""

from fer.data.dataset import PreparedData, load_prepared, save_prepared

__all__ = ["PreparedData", "load_prepared", "save_prepared"]
