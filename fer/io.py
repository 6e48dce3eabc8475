"""Atomic file output: a file is either complete or absent, never half-written."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` and move it into place on success.

    The temporary file lives in the same folder, so ``os.replace`` is an atomic
    rename. On an exception the temporary file is removed and ``path`` keeps
    its old content (or stays absent).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        with open(temporary_path, "rb") as written:
            os.fsync(written.fileno())
        # mkstemp creates the file readable by its owner only; give it the usual permissions.
        os.chmod(temporary_path, 0o666 & ~_current_umask())
        os.replace(temporary_path, target)
    finally:
        temporary_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file for writing and move it to ``path`` once closed."""
    with atomic_path(path) as temporary:
        with open(temporary, mode, **kwargs) as stream:
            yield stream


def write_json(path: str | os.PathLike, payload: Any) -> None:
    """Write ``payload`` as indented JSON, atomically."""
    with atomic_open(path, "w", encoding="utf-8") as stream:
        json.dump(payload, stream, indent=2, sort_keys=False)
        stream.write("\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as stream:
        return json.load(stream)
