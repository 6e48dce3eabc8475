"""Shared fixtures: small prepared datasets built from the demo generator."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from fer.data.dataset import PreparedData, normalization_stats

PROJECT_ROOT = Path(__file__).resolve().parents[1]
USAGE_CODES = {"Training": 0, "PublicTest": 1, "PrivateTest": 2}


def make_prepared(num_images: int = 420, image_size: int = 32, seed: int = 0) -> PreparedData:
    """Build a small PreparedData from the demo generator without the prepare step."""
    from fer.data.demo import generate_demo

    raw = generate_demo(num_images, image_size=image_size, seed=seed)
    splits = np.array([USAGE_CODES[usage] for usage in raw.usage], dtype=np.uint8)
    mean, std = normalization_stats(raw.images[splits == 0])
    info = {"source": "demo", "source_name": "test demo", "layout": "demo", "protocol": "official", "mean": mean, "std": std}
    return PreparedData(raw.images, raw.labels.astype(np.int64), splits, raw.ids, info)


@pytest.fixture(scope="session")
def tiny_data() -> PreparedData:
    return make_prepared()


@pytest.fixture
def cli_env() -> dict[str, str]:
    """Environment for running fer or snakemake in a subprocess with this interpreter's tools first on PATH."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env
