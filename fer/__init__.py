"""Ablation studies of facial-expression classifiers on FER2013."""

from fer.constants import CLASS_NAMES, NUM_CLASSES

__version__ = "0.1.0"

__all__ = ["CLASS_NAMES", "NUM_CLASSES", "__version__"]
