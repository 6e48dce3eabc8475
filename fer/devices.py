"""Device selection, and one GPU per training job on a multi-GPU machine.

Snakemake's ``--resources gpu=N`` limits how many training jobs run at once
but does not tell a job which GPU to use. Each job therefore claims a free
GPU through an exclusive lock file per device. A lock held by ``fcntl.flock``
is released by the kernel when its process dies, so a killed job never
leaves a GPU blocked.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import IO, Iterator, Sequence

import torch

from fer.errors import ConfigError

logger = logging.getLogger(__name__)

LOCK_DIR_VARIABLE = "FER_GPU_LOCK_DIR"


def default_lock_dir() -> Path:
    """Folder of the per-GPU lock files, shared by all jobs of one user on this machine."""
    configured = os.environ.get(LOCK_DIR_VARIABLE)
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"fer-gpu-locks-{os.getuid()}"


def visible_gpu_ids(device_count: int) -> list[str]:
    """Return stable ids of the GPUs visible to this process, for naming their locks.

    When a scheduler set ``CUDA_VISIBLE_DEVICES``, its entries are the ids,
    so two jobs given different GPUs by the scheduler never share a lock.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if visible:
        entries = [entry.strip() for entry in visible.split(",") if entry.strip()]
        return entries[:device_count]
    return [str(index) for index in range(device_count)]


@contextlib.contextmanager
def claim_gpu(gpu_ids: Sequence[str], lock_dir: Path | None = None, poll_seconds: float = 2.0, timeout: float | None = None) -> Iterator[int]:
    """Lock the first free GPU of ``gpu_ids`` and yield its index in that list.

    Waits, polling every ``poll_seconds``, while every GPU is taken. Raises
    TimeoutError after ``timeout`` seconds when one is given.
    """
    lock_dir = lock_dir or default_lock_dir()
    lock_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    waiting_logged = False
    while True:
        for index, gpu_id in enumerate(gpu_ids):
            handle = _try_lock(lock_dir / f"gpu-{gpu_id}.lock")
            if handle is None:
                continue
            try:
                yield index
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        if timeout is not None and time.monotonic() - started > timeout:
            raise TimeoutError(f"no free GPU among {list(gpu_ids)} after {timeout:.0f} s (locks in {lock_dir})")
        if not waiting_logged:
            logger.info("all %d GPUs are in use by other jobs; waiting for one (locks in %s)", len(gpu_ids), lock_dir)
            waiting_logged = True
        time.sleep(poll_seconds)


def _try_lock(path: Path) -> IO | None:
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


@contextlib.contextmanager
def acquire_device(preference: str = "auto") -> Iterator[torch.device]:
    """Yield the device to train on, holding a GPU lock while it is used.

    ``auto`` picks CUDA, then MPS, then the CPU. ``cuda`` without an index
    claims a free GPU; ``cuda:N`` uses GPU N without a lock.
    """
    kind = preference.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device = {preference!r} but PyTorch sees no CUDA GPU; use device: auto or cpu")
    if kind == "mps" and not _mps_available():
        raise ConfigError(f"device = {preference!r} but MPS is not available; use device: auto or cpu")

    if preference == "cpu" or (preference == "auto" and not torch.cuda.is_available() and not _mps_available()):
        yield torch.device("cpu")
        return
    if kind == "mps" or (preference == "auto" and not torch.cuda.is_available()):
        yield torch.device("mps")
        return
    if ":" in preference:
        yield torch.device(preference)
        return

    gpu_ids = visible_gpu_ids(torch.cuda.device_count())
    with claim_gpu(gpu_ids) as index:
        device = torch.device(f"cuda:{index}")
        logger.info("claimed GPU %s (%s)", gpu_ids[index], torch.cuda.get_device_name(device))
        yield device
