"""Time one training epoch of fer's pipeline against a per-sample PIL DataLoader pipeline.

Usage: python benchmarks/train_benchmark.py [--data data/fer2013 | --data demo]
       [--archs cnn3 cnn4 resnet18] [--images N] [--channel_num C] [--batch_size 64]
       [--device auto] [--threads T] [--workers 0 2] [--rounds 2]

Pipelines, each training the same model from the same initial weights on the
same N training images with the same batch size and Adam settings:

- baseline: the course script's way. The training images are written as PNG
  files into a Kaggle-style folder (``train/<class>/``). A torch ``Dataset``
  opens each one with PIL in ``__getitem__`` and applies the homework
  augmentation as torchvision transforms: RandomChoice of flip, colour jitter
  and rotation, then CenterCrop + Pad, ToTensor and Normalize. A
  ``DataLoader`` with shuffle=True feeds a plain float32 NCHW loop. It runs
  once per ``--workers`` value.
- ours fp32 / ours bf16: ``fer.fit.build_trainer`` and
  ``fer.train.train_one_epoch`` with the "homework" augmentation, autocast
  off or bfloat16.

Every round trains each pipeline for one epoch from a fresh model. The order
alternates between rounds, so slow spells of a shared machine hit each
pipeline alike. Round r uses seed + r - 1, so the rounds also show how much
one-epoch accuracy moves with the seed. Speed is the best round. Accuracy is
measured on the same validation images for all pipelines.

Each run gets a fresh process, because fer's training changes a process-wide
setting (glibc's malloc, see ``fer.train.tune_cpu_allocator``) that would
otherwise speed up the baselines run after it. PNG keeps the pixels of the
prepared dataset exactly, which a JPEG re-encode would not, so both pipelines
learn from identical images.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torchvision
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from fer.augment import HomeworkAugmentation
from fer.config import ARCHITECTURES, TrainConfig
from fer.constants import CLASS_NAMES, TRAIN, VAL
from fer.data.dataset import PreparedData, load_prepared
from fer.data.prepare import DEMO_SOURCE, prepare_dataset
from fer.errors import FerError
from fer.fit import build_trainer, subsample_training
from fer.models import build_model
from fer.train import Normalizer, evaluate, split_to_device, train_one_epoch

# Speed-up of the best fer pipeline over the baseline without workers that
# the project set as its goal on a 2-core CPU.
GOAL_RATIO = {"cnn3": 2.0, "cnn4": 2.0, "resnet18": 1.5}

# Two one-epoch accuracies count as equal when they differ by at most this
# many points, or by the largest round-to-round change of either pipeline
# when that is larger.
ACCURACY_TOLERANCE_POINTS = 3.0

# Validation batch size of the course script.
VAL_BATCH_SIZE = 128


@dataclass
class Settings:
    """Settings shared by every run of one benchmark invocation."""

    images: int
    val_images: int
    batch_size: int
    channel_num: int
    lr: float
    weight_d: float
    seed: int
    rounds: int
    workers: list[int]
    threads: int
    device: str
    # Start method a plain script gets on this platform, used again for the
    # DataLoader workers of the baseline, because a spawned run would
    # otherwise spawn its workers too.
    start_method: str


@dataclass(frozen=True)
class Pipeline:
    """One way to train: the baseline with a number of DataLoader workers, or fer's with an autocast mode."""

    kind: str  # "baseline" or "ours"
    autocast: str = "off"
    workers: int = 0

    @property
    def name(self) -> str:
        if self.kind == "baseline":
            return f"baseline, {self.workers} workers"
        return f"ours {'bf16' if self.autocast == 'bf16' else 'fp32'}"


@dataclass
class Workspace:
    """The files and row selections every run reads, written once by the parent process."""

    prepared: Path
    items: list[tuple[Path, int]]
    keep: np.ndarray
    val_keep: np.ndarray
    settings: Settings


@dataclass
class Timing:
    """Wall-clock and CPU seconds of one epoch."""

    wall: float = 0.0
    cpu: float = 0.0


@dataclass
class PipelineResult:
    """The rounds of one pipeline on one architecture."""

    pipeline: Pipeline
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)

    def images_per_second(self, images: int) -> float:
        return images / min(self.seconds)

    def images_per_cpu_second(self, images: int) -> float:
        return images / min(self.cpu_seconds)

    @property
    def mean_accuracy(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def accuracy_spread(self) -> float:
        return float(np.ptp(self.accuracies))


def cpu_seconds() -> float:
    """Return the CPU time of this process plus that of its finished child processes.

    DataLoader workers count once they have exited, which non-persistent
    workers do at the end of each epoch.
    """
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@contextlib.contextmanager
def stopwatch() -> Iterator[Timing]:
    """Measure the wall-clock and CPU seconds of the ``with`` block."""
    timing = Timing()
    wall_started, cpu_started = time.perf_counter(), cpu_seconds()
    yield timing
    timing.wall = time.perf_counter() - wall_started
    timing.cpu = cpu_seconds() - cpu_started


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def load_data(source: str, images: int, work: Path, cache_dir: Path) -> tuple[PreparedData, Path]:
    """Prepare FER2013 (cached by content) or enough demo faces for ``images`` training images."""
    out = work / "prepared.npz"
    if source == DEMO_SOURCE:
        # The demo generator puts 80 % of its faces into the training split.
        demo_size = max(1000, math.ceil(images / 0.8) + 100)
        return prepare_dataset(DEMO_SOURCE, out, demo_size=demo_size, cache_dir=cache_dir), out
    return prepare_dataset(source, out, cache_dir=cache_dir), out


def choose_rows(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Pick a stratified subset of ``count`` rows, or all rows when ``count`` is 0 or too large."""
    keep = subsample_training(labels, count, seed)
    return np.arange(len(labels)) if keep is None else keep


def write_image_folder(images: np.ndarray, labels: np.ndarray, root: Path) -> list[tuple[Path, int]]:
    """Write each image as ``root/<class>/<row>.png`` and return the (path, label) pairs."""
    items = []
    for row, (image, label) in enumerate(zip(images, labels)):
        folder = root / CLASS_NAMES[label]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{row:05d}.png"
        Image.fromarray(image, mode="L").save(path)
        items.append((path, int(label)))
    return items


# ---------------------------------------------------------------------------
# Baseline: per-sample PIL pipeline as in the course script
# ---------------------------------------------------------------------------


class PilImageDataset(Dataset):
    """Image files opened with PIL one at a time, as the course script reads its folders."""

    def __init__(self, items: list[tuple[Path, int]], transform: transforms.Compose) -> None:
        self.items = items
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[index]
        with Image.open(path) as image:
            return self.transform(image.convert("L")), label


def homework_transforms(image_size: tuple[int, int], mean: float, std: float) -> transforms.Compose:
    """Build the homework's augmentation "Ver. 1" from torchvision transforms.

    The centre crop keeps the same 75 % of each side that fer's "homework"
    policy keeps, and the padding restores the input size.
    """
    crop_height, crop_width = HomeworkAugmentation(image_size).crop_size
    height, width = image_size
    left, top = (width - crop_width) // 2, (height - crop_height) // 2
    padding = (left, top, width - crop_width - left, height - crop_height - top)
    return transforms.Compose(
        [
            transforms.RandomChoice(
                [
                    transforms.RandomHorizontalFlip(p=0.5),
                    transforms.ColorJitter(brightness=(0.0, 5.0), contrast=(0.0, 5.0)),
                    transforms.RandomRotation(30),
                ]
            ),
            transforms.CenterCrop((crop_height, crop_width)),
            transforms.Pad(padding),
            transforms.ToTensor(),
            transforms.Normalize((mean,), (std,)),
        ]
    )


def train_baseline(workspace: Workspace, data: PreparedData, arch: str, workers: int, seed: int, device: torch.device) -> tuple[Timing, nn.Module]:
    """Train a fresh model for one epoch the course script's way; return its timing and the model."""
    settings = workspace.settings

    # Seeding right before building the model gives the same initial weights
    # as build_trainer, which also seeds and then builds.
    torch.manual_seed(seed)
    model = build_model(arch, channel_num=settings.channel_num, image_size=data.image_size).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_d)
    criterion = nn.CrossEntropyLoss()
    dataset = PilImageDataset(workspace.items, homework_transforms(data.image_size, data.mean, data.std))
    loader = DataLoader(dataset, batch_size=settings.batch_size, shuffle=True, num_workers=workers)

    model.train()
    running_loss, correct = 0.0, 0
    with stopwatch() as timing:
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            logits = model(images)
            loss = criterion(logits, labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item() * len(labels)
            correct += (logits.argmax(dim=1) == labels).sum().item()
    return timing, model


# ---------------------------------------------------------------------------
# fer's pipeline
# ---------------------------------------------------------------------------


def train_ours(workspace: Workspace, data: PreparedData, arch: str, autocast: str, seed: int, device: torch.device) -> tuple[Timing, nn.Module]:
    """Train a fresh model for one epoch with fer's trainer; return its timing and the model."""
    settings = workspace.settings
    config = TrainConfig(
        arch=arch,
        augmentation="homework",
        seed=seed,
        lr=settings.lr,
        weight_d=settings.weight_d,
        batch_size=settings.batch_size,
        channel_num=settings.channel_num,
        autocast=autocast,
    )
    _, train_labels, _ = data.split_arrays(TRAIN)
    trainer = build_trainer(config, data, device, train_labels[workspace.keep])
    split = split_to_device(data, TRAIN, device, workspace.keep)

    with stopwatch() as timing:
        train_one_epoch(
            trainer.model,
            split,
            optimizer=trainer.optimizer,
            loss_fn=trainer.loss_fn,
            normalizer=trainer.normalizer,
            augment=trainer.augment,
            batch_size=settings.batch_size,
            shuffle_generator=trainer.shuffle_generator,
            augment_generator=trainer.augment_generator,
            autocast_mode=autocast,
        )
    return timing, trainer.model


# ---------------------------------------------------------------------------
# Runs and rounds
# ---------------------------------------------------------------------------


def run_once(workspace: Workspace, arch: str, pipeline: Pipeline, seed: int) -> tuple[Timing, float]:
    """Train one epoch with ``pipeline`` and return its timing and validation accuracy.

    Runs in a fresh child process, so it sets up torch's threads and logging itself.
    """
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    settings = workspace.settings
    multiprocessing.set_start_method(settings.start_method, force=True)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = torch.device(settings.device)
    data = load_prepared(workspace.prepared)

    if pipeline.kind == "baseline":
        timing, model = train_baseline(workspace, data, arch, pipeline.workers, seed, device)
    else:
        timing, model = train_ours(workspace, data, arch, pipeline.autocast, seed, device)

    val_split = split_to_device(data, VAL, device, workspace.val_keep)
    normalizer = Normalizer(data.mean, data.std)
    evaluation = evaluate(model, val_split, loss_fn=nn.CrossEntropyLoss(), normalizer=normalizer, batch_size=VAL_BATCH_SIZE, autocast_mode=pipeline.autocast)
    return timing, evaluation.accuracy


def run_in_fresh_process(workspace: Workspace, arch: str, pipeline: Pipeline, seed: int) -> tuple[Timing, float]:
    # "spawn" starts a new interpreter, so no allocator setting, thread pool
    # or oneDNN kernel cache carries over from an earlier run.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as executor:
        return executor.submit(run_once, workspace, arch, pipeline, seed).result()


def benchmark_arch(arch: str, workspace: Workspace) -> list[PipelineResult]:
    """Run every pipeline once per round on ``arch``, alternating the order between rounds."""
    settings = workspace.settings
    pipelines = [Pipeline("baseline", workers=workers) for workers in settings.workers]
    pipelines += [Pipeline("ours", autocast="off"), Pipeline("ours", autocast="bf16")]
    results = {pipeline: PipelineResult(pipeline) for pipeline in pipelines}

    for round_index in range(settings.rounds):
        seed = settings.seed + round_index
        order = pipelines if round_index % 2 == 0 else list(reversed(pipelines))
        for pipeline in order:
            timing, accuracy = run_in_fresh_process(workspace, arch, pipeline, seed)
            result = results[pipeline]
            result.seconds.append(timing.wall)
            result.cpu_seconds.append(timing.cpu)
            result.accuracies.append(accuracy)
            print(
                f"  {arch:<9} round {round_index + 1} seed {seed}  {pipeline.name:<22} {timing.wall:7.1f} s"
                f"  CPU {timing.cpu:7.1f} s  val acc {accuracy:.4f}",
                flush=True,
            )
    return list(results.values())


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def accuracy_verdict(ours: PipelineResult, baseline: PipelineResult) -> str:
    """Say whether ``ours`` reaches the baseline's one-epoch accuracy within the noise of the rounds.

    Only a drop counts against ``ours``: the goal is speed without losing
    accuracy, and a higher accuracy after one epoch is no defect.
    """
    difference = 100 * (ours.mean_accuracy - baseline.mean_accuracy)
    tolerance = max(ACCURACY_TOLERANCE_POINTS, 100 * ours.accuracy_spread, 100 * baseline.accuracy_spread)
    verdict = "holds" if difference >= -tolerance else "lower"
    return f"{verdict} ({difference:+.1f} pt, tolerance {tolerance:.1f})"


def goal_verdict(arch: str, ratio: float) -> str:
    goal = GOAL_RATIO.get(arch)
    if goal is None:
        return "no goal"
    return f"{'met' if ratio >= goal else 'not met'} ({goal:g}x)"


def print_table(arch: str, results: list[PipelineResult], settings: Settings) -> None:
    """Print one Markdown table row per pipeline; ratios are against the first (reference) baseline."""
    reference = results[0]
    reference_speed = reference.images_per_second(settings.images)
    reference_cpu_speed = reference.images_per_cpu_second(settings.images)
    print("| arch | pipeline | img/s | ratio | img/CPU-s | CPU ratio | val acc per round | accuracy | goal |")
    print("|---|---|---:|---:|---:|---:|---|---|---|")
    for result in results:
        speed = result.images_per_second(settings.images)
        cpu_speed = result.images_per_cpu_second(settings.images)
        ratio = speed / reference_speed
        rounds = ", ".join(f"{accuracy:.3f}" for accuracy in result.accuracies)
        accuracy = "reference" if result is reference else accuracy_verdict(result, reference)
        goal = goal_verdict(arch, ratio) if result.pipeline.kind == "ours" else ""
        print(
            f"| {arch} | {result.pipeline.name} | {speed:.0f} | {ratio:.2f} | {cpu_speed:.0f} |"
            f" {cpu_speed / reference_cpu_speed:.2f} | {rounds} | {accuracy} | {goal} |"
        )


def cpu_model() -> str:
    with open("/proc/cpuinfo", encoding="utf-8") as stream:
        for line in stream:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def describe_machine(settings: Settings) -> str:
    device = torch.device(settings.device)
    if device.type == "cuda":
        hardware = f"GPU {torch.cuda.get_device_name(device)}, {os.cpu_count()} CPU(s)"
    else:
        hardware = f"{os.cpu_count()} CPU(s), {cpu_model()}"
    threads = settings.threads or torch.get_num_threads()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"machine: {hardware}; torch {torch.__version__}, torchvision {torchvision.__version__}, "
        f"Python {platform.python_version()}; torch threads {threads}; load average (1, 5, 15 min) {load}"
    )


def describe_settings(source: str, settings: Settings) -> str:
    data = "synthetic demo faces" if source == DEMO_SOURCE else source
    return (
        f"data: {data}, {settings.images} training and {settings.val_images} validation images; device {settings.device}, "
        f"batch size {settings.batch_size}, channel_num {settings.channel_num}, Adam lr {settings.lr:g} "
        f"weight decay {settings.weight_d:g}, seeds {settings.seed}..{settings.seed + settings.rounds - 1}"
    )


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/fer2013", help="FER2013 in any supported layout, or 'demo' (default: data/fer2013, demo when missing)")
    parser.add_argument("--archs", nargs="+", default=["cnn3"], help="models to time (default: cnn3). With the other defaults each model adds 8 one-epoch runs, several minutes on 2 CPU cores")
    parser.add_argument("--images", type=int, default=6000, help="training images per epoch, a stratified subset (default: 6000; 0 = all)")
    parser.add_argument("--val_images", type=int, default=2000, help="validation images for the accuracy check (default: 2000; 0 = all)")
    parser.add_argument("--channel_num", type=int, default=64, help="C of the homework CNNs (default: 64)")
    parser.add_argument("--batch_size", type=int, default=64, help="training batch size (default: 64, the course default)")
    parser.add_argument("--lr", type=float, default=0.001, help="Adam learning rate (default: 0.001, the homework's reported run)")
    parser.add_argument("--weight_d", type=float, default=1e-2, help="Adam weight decay (default: 0.01, the course default)")
    parser.add_argument("--seed", type=int, default=5566, help="seed of round 1; round r uses seed + r - 1 (default: 5566)")
    parser.add_argument("--rounds", type=int, default=2, help="epochs per pipeline, alternating the order (default: 2)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader num_workers of the baselines; the first is the reference (default: 0 2)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads in every run (default: 0 = torch's choice)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto = cuda when available)")
    parser.add_argument("--cache_dir", type=Path, default=Path(tempfile.gettempdir()) / "fer_train_benchmark_cache", help="cache of prepared datasets")
    args = parser.parse_args(argv)

    for name in ("images", "val_images", "threads"):
        if getattr(args, name) < 0:
            parser.error(f"--{name} must be 0 or more, got {getattr(args, name)}")
    for name in ("rounds", "batch_size", "channel_num"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    unknown = [arch for arch in args.archs if arch not in ARCHITECTURES]
    if unknown:
        parser.error(f"--archs: unknown model(s) {', '.join(unknown)}; use some of {', '.join(ARCHITECTURES)}")
    if min(args.workers) < 0:
        parser.error(f"--workers must be 0 or more, got {args.workers}")
    return args


def prepare_workspace(source: str, args: argparse.Namespace, work: Path) -> Workspace:
    """Prepare the data, pick the training and validation rows and write the baseline's image folder."""
    data, prepared = load_data(source, args.images, work, args.cache_dir)
    train_images, train_labels, _ = data.split_arrays(TRAIN)
    _, val_labels, _ = data.split_arrays(VAL)
    keep = choose_rows(train_labels, args.images, args.seed)
    val_keep = choose_rows(val_labels, args.val_images, args.seed)
    settings = Settings(
        images=len(keep), val_images=len(val_keep), batch_size=args.batch_size, channel_num=args.channel_num,
        lr=args.lr, weight_d=args.weight_d, seed=args.seed, rounds=args.rounds, workers=args.workers,
        threads=args.threads, device=resolve_device(args.device), start_method=multiprocessing.get_start_method(),
    )
    items = write_image_folder(train_images[keep], train_labels[keep], work / "train")
    return Workspace(prepared=prepared, items=items, keep=keep, val_keep=val_keep, settings=settings)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    source = args.data
    if source != DEMO_SOURCE and not Path(source).exists():
        print(f"{source} not found, so this run uses the synthetic demo faces; extract FER2013 there for real figures")
        source = DEMO_SOURCE

    with tempfile.TemporaryDirectory(prefix="fer_train_benchmark_") as temporary:
        try:
            workspace = prepare_workspace(source, args, Path(temporary))
        except FerError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        settings = workspace.settings
        print(describe_settings(source, settings))
        print(describe_machine(settings), flush=True)
        tables = [(arch, benchmark_arch(arch, workspace)) for arch in args.archs]

    print()
    for arch, results in tables:
        print_table(arch, results, settings)
        print()
    print(
        f"Speed: best of {settings.rounds} round(s), by wall clock and by CPU time (process plus DataLoader workers); "
        f"ratios against '{tables[0][1][0].pipeline.name}'. Accuracy holds unless the mean is lower than the "
        f"reference's by more than {ACCURACY_TOLERANCE_POINTS:g} points or by the largest round-to-round change, "
        "whichever is larger."
    )
    print(describe_machine(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
