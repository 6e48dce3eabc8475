"""One epoch of training and one pass of evaluation, on tensors held on the device.

The whole split lives on the training device as one uint8 tensor. A batch
is sliced from it, converted to float, augmented in one batched call and
normalized there, so the loop does no per-sample Python or PIL work.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import platform
import sys
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from fer.constants import UNLABELED
from fer.data.dataset import PreparedData

logger = logging.getLogger(__name__)

Augmentation = Callable[[Tensor, torch.Generator], Tensor]

# mallopt parameter numbers from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4

# glibc returns free memory at the top of its heap to the OS once it exceeds
# this. It must exceed what one training step frees, or every step faults
# its pages in again: a float32 cnn3 step on 48x48 images grew the heap by
# 0.3 GiB at batch 64 and by 1 GiB at batch 256. This is the largest value
# mallopt accepts (a C int), so in practice the heap is never trimmed.
ALLOCATOR_TRIM_THRESHOLD = 2**31 - 1

# Environment variables through which a user configures glibc's malloc
# (or preloads another allocator); when one is set, fer leaves malloc alone.
MALLOC_ENVIRONMENT = ("MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES", "LD_PRELOAD")

_allocator_tuned: bool | None = None


@dataclass
class DeviceSplit:
    """One split of a prepared dataset, on the training device."""

    images: Tensor  # uint8, (N, 1, H, W)
    labels: Tensor  # int64, (N,), UNLABELED where unknown
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def labeled(self) -> bool:
        return len(self) > 0 and bool(torch.all(self.labels != UNLABELED))


@dataclass
class Normalizer:
    """Scale uint8 images to 0-1, then standardize with the training split's statistics."""

    mean: float
    std: float

    def __call__(self, images: Tensor) -> Tensor:
        return (images - self.mean) / self.std


@dataclass
class EpochResult:
    loss: float
    accuracy: float


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    predictions: np.ndarray
    probabilities: np.ndarray


def split_to_device(data: PreparedData, split: int, device: torch.device, keep: np.ndarray | None = None) -> DeviceSplit:
    """Copy one split to ``device``; ``keep`` optionally selects rows of that split."""
    images, labels, ids = data.split_arrays(split)
    if keep is not None:
        images, labels, ids = images[keep], labels[keep], ids[keep]
    return DeviceSplit(
        images=torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1).to(device),
        labels=torch.from_numpy(labels.astype(np.int64)).to(device),
        ids=ids,
    )


def tune_cpu_allocator() -> bool:
    """Make glibc's malloc keep freed memory for reuse, so large CPU tensors do not page-fault each step.

    PyTorch allocates CPU tensors with malloc, and glibc serves blocks above
    its mmap threshold (at most 32 MiB) with a fresh mmap and unmaps them when
    freed. A training step then faults in its largest activations page by page
    every time: in a float32 cnn3 step at batch 64 (one thread of an AMD EPYC,
    torch 2.14), half of the time went to the kernel. Serving every block from
    the heap and trimming it only above ALLOCATOR_TRIM_THRESHOLD removes that.
    Results do not change. The cost is memory: freed blocks stay with the
    process, and the peak resident size of an epoch rose by 80-200 MiB at
    batch 64 (cnn3, cnn4, resnet18) and by 0.6 GiB for cnn3 at batch 256.

    The setting is process-wide and applied once. It is skipped without
    glibc and when the environment configures malloc (MALLOC_*_ variables,
    GLIBC_TUNABLES or LD_PRELOAD). Returns whether it is in effect.
    """
    global _allocator_tuned
    if _allocator_tuned is not None:
        return _allocator_tuned

    _allocator_tuned = False
    configured = [name for name in MALLOC_ENVIRONMENT if os.environ.get(name)]
    if configured:
        logger.debug("leaving malloc as configured by %s", ", ".join(configured))
        return False
    if platform.libc_ver()[0] != "glibc":
        return False

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    # mallopt returns 1 on success and 0 when glibc rejects the value.
    if libc.mallopt(M_TRIM_THRESHOLD, ALLOCATOR_TRIM_THRESHOLD) != 1 or libc.mallopt(M_MMAP_MAX, 0) != 1:
        logger.warning("glibc rejected the malloc settings for CPU training; training runs, but more slowly")
        return False
    _allocator_tuned = True
    logger.debug("glibc malloc now reuses freed memory instead of unmapping it (set MALLOC_MMAP_MAX_ to keep its defaults)")
    return True


def autocast_context(device: torch.device, mode: str) -> contextlib.AbstractContextManager:
    """Return bfloat16 autocast for ``mode`` "bf16", or "auto" on CUDA; otherwise a no-op."""
    use_bf16 = mode == "bf16" or (mode == "auto" and device.type == "cuda")
    if not use_bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def batch_indices(count: int, batch_size: int, *, generator: torch.Generator | None, device: torch.device) -> Iterator[Tensor]:
    """Yield index tensors of each batch, shuffled when a generator is given."""
    order = torch.randperm(count, generator=generator) if generator is not None else torch.arange(count)
    order = order.to(device)
    for start in range(0, count, batch_size):
        yield order[start : start + batch_size]


def _progress(iterable, total: int, description: str):
    # Progress bars only on a terminal: in Snakemake logs they would be noise.
    return tqdm(iterable, total=total, desc=description, leave=False, disable=not sys.stderr.isatty())


def train_one_epoch(
    model: nn.Module,
    split: DeviceSplit,
    *,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    normalizer: Normalizer,
    augment: Augmentation,
    batch_size: int,
    shuffle_generator: torch.Generator,
    augment_generator: torch.Generator,
    autocast_mode: str = "auto",
) -> EpochResult:
    """Train ``model`` for one pass over ``split`` and return the mean loss and accuracy."""
    model.train()
    device = split.images.device
    if device.type == "cpu":
        tune_cpu_allocator()
    total_loss = torch.zeros((), device=device, dtype=torch.float64)
    total_correct = torch.zeros((), device=device, dtype=torch.int64)
    batches = batch_indices(len(split), batch_size, generator=shuffle_generator, device=device)
    steps = (len(split) + batch_size - 1) // batch_size

    for index in _progress(batches, steps, "train"):
        images = split.images[index].float().div_(255.0)
        images = normalizer(augment(images, augment_generator)).contiguous(memory_format=torch.channels_last)
        labels = split.labels[index]

        with autocast_context(device, autocast_mode):
            logits = model(images)
            loss = loss_fn(logits.float(), labels)

        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

        # Accumulating on the device avoids a host sync per batch on a GPU.
        total_loss += loss.detach().double() * len(labels)
        total_correct += (logits.detach().argmax(dim=1) == labels).sum()

    return EpochResult(loss=float(total_loss) / len(split), accuracy=float(total_correct) / len(split))


@torch.no_grad()
def predict(
    model: nn.Module,
    split: DeviceSplit,
    *,
    normalizer: Normalizer,
    batch_size: int,
    autocast_mode: str = "auto",
    tta: Callable[[nn.Module, Tensor], Tensor] | None = None,
) -> Tensor:
    """Return the logits of every image of ``split``, in order, as float32 on the device."""
    model.eval()
    device = split.images.device
    if device.type == "cpu":
        tune_cpu_allocator()
    outputs = []
    steps = (len(split) + batch_size - 1) // batch_size
    for index in _progress(batch_indices(len(split), batch_size, generator=None, device=device), steps, "eval"):
        images = normalizer(split.images[index].float().div_(255.0)).contiguous(memory_format=torch.channels_last)
        with autocast_context(device, autocast_mode):
            logits = tta(model, images) if tta is not None else model(images)
        outputs.append(logits.float())
    if not outputs:
        return torch.zeros((0, 0), device=device)
    return torch.cat(outputs)


def evaluate(
    model: nn.Module,
    split: DeviceSplit,
    *,
    loss_fn: nn.Module,
    normalizer: Normalizer,
    batch_size: int,
    autocast_mode: str = "auto",
    tta: Callable[[nn.Module, Tensor], Tensor] | None = None,
) -> Evaluation:
    """Compute loss, accuracy, predicted classes and class probabilities on a labeled split."""
    logits = predict(model, split, normalizer=normalizer, batch_size=batch_size, autocast_mode=autocast_mode, tta=tta)
    loss = float(loss_fn(logits, split.labels)) if split.labeled else float("nan")
    predictions = logits.argmax(dim=1)
    accuracy = float((predictions == split.labels).float().mean()) if split.labeled else float("nan")
    return Evaluation(
        loss=loss,
        accuracy=accuracy,
        predictions=predictions.cpu().numpy(),
        probabilities=torch.softmax(logits, dim=1).cpu().numpy(),
    )
