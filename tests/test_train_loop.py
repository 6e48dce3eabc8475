"""The training loop: reproducibility, the CPU allocator setting and the training benchmark script."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from fer.augment import build_augmentation
from fer.constants import TRAIN, VAL
from fer.models import build_model
from fer.train import MALLOC_ENVIRONMENT, Normalizer, batch_indices, predict, split_to_device, train_one_epoch

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
IS_GLIBC = platform.libc_ver()[0] == "glibc"


def train_fresh_model(data, autocast: str, seed: int = 3) -> tuple[float, float, dict[str, torch.Tensor]]:
    """Train a new small cnn3 for one epoch and return its loss, accuracy and weights."""
    torch.manual_seed(seed)
    model = build_model("cnn3", channel_num=8, image_size=data.image_size).to(memory_format=torch.channels_last)
    result = train_one_epoch(
        model,
        split_to_device(data, TRAIN, CPU),
        optimizer=torch.optim.Adam(model.parameters(), lr=0.003),
        loss_fn=nn.CrossEntropyLoss(),
        normalizer=Normalizer(data.mean, data.std),
        augment=build_augmentation("homework", data.image_size),
        batch_size=32,
        shuffle_generator=torch.Generator().manual_seed(seed),
        augment_generator=torch.Generator().manual_seed(seed + 1),
        autocast_mode=autocast,
    )
    return result.loss, result.accuracy, model.state_dict()


def environment_without_malloc_settings() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name not in MALLOC_ENVIRONMENT}


def run_python(code: str, env: dict[str, str]) -> str:
    completed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("autocast", ["off", "bf16"])
def test_one_epoch_is_bit_identical_between_runs(tiny_data, autocast):
    first_loss, first_accuracy, first_weights = train_fresh_model(tiny_data, autocast)
    second_loss, second_accuracy, second_weights = train_fresh_model(tiny_data, autocast)

    assert first_loss == second_loss
    assert first_accuracy == second_accuracy
    for name, weight in first_weights.items():
        assert torch.equal(weight, second_weights[name]), name


@pytest.mark.parametrize("shuffled", [False, True])
def test_batch_indices_cover_each_row_once(shuffled):
    generator = torch.Generator().manual_seed(0) if shuffled else None
    batches = list(batch_indices(10, 4, generator=generator, device=CPU))

    assert [len(batch) for batch in batches] == [4, 4, 2]
    rows = torch.cat(batches)
    assert sorted(rows.tolist()) == list(range(10))
    assert (rows.tolist() != list(range(10))) == shuffled


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_predict_keeps_row_order_in_either_memory_format(tiny_data, memory_format):
    torch.manual_seed(0)
    model = build_model("cnn3", channel_num=8, image_size=tiny_data.image_size).to(memory_format=memory_format).eval()
    split = split_to_device(tiny_data, VAL, CPU)
    normalizer = Normalizer(tiny_data.mean, tiny_data.std)

    logits = predict(model, split, normalizer=normalizer, batch_size=7, autocast_mode="off")

    with torch.no_grad():
        expected = model(normalizer(split.images.float() / 255.0))
    assert logits.shape == (len(split), 7)
    torch.testing.assert_close(logits, expected)


@pytest.mark.skipif(not IS_GLIBC, reason="the allocator setting applies to glibc's malloc only")
def test_allocator_setting_stops_repeated_page_faults():
    # Allocate and free one 64 MiB tensor again and again. With glibc's
    # defaults each round maps fresh pages and faults them in; with the
    # setting the heap keeps the block. Until small objects freed between
    # rounds let the holes in the heap merge (7 rounds with glibc 2.36),
    # rounds fault either way, so the first 12 are not counted.
    code = """
import resource, sys, torch
from fer.train import tune_cpu_allocator
applied = tune_cpu_allocator() if sys.argv[1] == "tuned" else False
pages = 64 * 2**20 // resource.getpagesize()

def allocate_and_free(rounds):
    for _ in range(rounds):
        block = torch.empty(pages * resource.getpagesize() // 4, dtype=torch.float32)
        block.fill_(1.0)
        del block

allocate_and_free(12)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
allocate_and_free(5)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(applied, faults / pages)
"""
    env = environment_without_malloc_settings()
    tuned = subprocess.run([sys.executable, "-c", code, "tuned"], env=env, capture_output=True, text=True, timeout=120)
    default = subprocess.run([sys.executable, "-c", code, "default"], env=env, capture_output=True, text=True, timeout=120)
    assert tuned.returncode == 0, tuned.stderr
    assert default.returncode == 0, default.stderr

    applied, tuned_rounds = tuned.stdout.split()
    _, default_rounds = default.stdout.split()
    assert applied == "True"
    assert float(tuned_rounds) < 1, "with the setting, no counted round should fault its pages in"
    assert float(default_rounds) > 4, "with glibc's defaults, each of the 5 counted rounds should fault its pages in"


def test_allocator_setting_respects_malloc_environment():
    code = "from fer.train import tune_cpu_allocator; print(tune_cpu_allocator())"
    env = environment_without_malloc_settings() | {"MALLOC_MMAP_MAX_": "65536"}

    assert run_python(code, env) == "False"


@pytest.mark.skipif(not IS_GLIBC, reason="the allocator setting applies to glibc's malloc only")
def test_allocator_setting_leaves_results_unchanged():
    code = """
import json
import fer.train
from tests.conftest import make_prepared
from tests.test_train_loop import train_fresh_model
loss, accuracy, weights = train_fresh_model(make_prepared(), "off")
print(json.dumps([fer.train._allocator_tuned, loss, accuracy, weights["0.0.weight"].flatten().tolist()]))
"""
    tuned = json.loads(run_python(code, environment_without_malloc_settings()))
    untouched = json.loads(run_python(code, environment_without_malloc_settings() | {"MALLOC_MMAP_MAX_": "65536"}))

    assert tuned[0] is True
    assert untouched[0] is False
    assert tuned[1:] == untouched[1:]


def test_benchmark_script_runs_on_demo_data(tmp_path):
    command = [
        sys.executable, "benchmarks/train_benchmark.py", "--data", "demo", "--archs", "cnn3", "--images", "96",
        "--val_images", "40", "--channel_num", "4", "--batch_size", "32", "--rounds", "1", "--workers", "0",
        "--threads", "1", "--cache_dir", str(tmp_path / "cache"),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT)

    assert completed.returncode == 0, completed.stderr
    rows = [line for line in completed.stdout.splitlines() if line.startswith("| cnn3 |")]
    assert [row.split("|")[2].strip() for row in rows] == ["baseline, 0 workers", "ours fp32", "ours bf16"]
    assert "96 training and 40 validation images" in completed.stdout
    accuracies = [float(value) for row in rows for value in row.split("|")[7].split(",")]
    assert all(0.0 <= value <= 1.0 for value in accuracies)
