"""Decode image files into one grayscale uint8 array, with checks for corrupt files and mixed sizes."""

from __future__ import annotations

import io
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from fer.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

# Extensions read as images. Any other file inside an image folder is rejected,
# so that a stray README or a zipped copy is not silently dropped.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})

ON_CORRUPT_CHOICES = ("error", "skip")

# How many paths an error message lists before it gives only the count.
MAX_LISTED = 10


@dataclass
class DecodedImages:
    """Images decoded from files, in the order of the files that were kept."""

    images: np.ndarray
    # Boolean mask over the input files: True where the file decoded.
    kept: np.ndarray
    skipped: list[str] = field(default_factory=list)


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def is_hidden(name: str) -> bool:
    # Files such as .DS_Store and folders such as .ipynb_checkpoints are tool
    # clutter, never data.
    return name.startswith(".")


def format_paths(paths: Sequence[str | Path], limit: int = MAX_LISTED) -> str:
    """Join up to ``limit`` paths, one per line, followed by the number left out."""
    shown = [f"  {path}" for path in paths[:limit]]
    if len(paths) > limit:
        shown.append(f"  ... and {len(paths) - limit} more")
    return "\n".join(shown)


def validate_on_corrupt(on_corrupt: str) -> None:
    if on_corrupt not in ON_CORRUPT_CHOICES:
        raise ConfigError(
            f"config key 'on_corrupt': invalid value {on_corrupt!r}; use 'error' (stop on the first "
            "prepare) or 'skip' (leave corrupt image files out and list them in the prepared data)"
        )


def resize_image(image: Image.Image, image_size: int) -> Image.Image:
    # Pillow widens the bilinear kernel when it shrinks an image, so downscaling
    # averages the covered area instead of aliasing.
    return image.resize((image_size, image_size), Image.Resampling.BILINEAR)


def resize_array(pixels: np.ndarray, image_size: int | None) -> np.ndarray:
    """Resize a stack of grayscale images to ``image_size`` squared, or return it unchanged."""
    if image_size is None or pixels.shape[1:] == (image_size, image_size):
        return pixels
    resized = np.empty((len(pixels), image_size, image_size), dtype=np.uint8)
    for index, image in enumerate(pixels):
        resized[index] = np.asarray(resize_image(Image.fromarray(image), image_size))
    return resized


def to_grayscale(image: Image.Image) -> Image.Image:
    """Convert any Pillow image to 8-bit grayscale ("L")."""
    if image.mode.startswith("I;16"):
        # Pillow's convert("L") clips 16-bit values at 255 instead of scaling them.
        wide = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8))
    return image.convert("L")


def decode_file(path: Path, image_size: int | None, content: bytes | None = None) -> np.ndarray:
    """Decode one image file, or its ``content`` when already read, to a grayscale uint8 array.

    Raises OSError, ValueError or Image.DecompressionBombError when the file is
    not a readable image. RGB and palette images are converted with Pillow's
    ITU-R 601-2 luma transform, and 16-bit images are scaled to 0-255.
    """
    with Image.open(path if content is None else io.BytesIO(content)) as image:
        # load() forces the full decode, so a truncated file fails here and not later.
        image.load()
        gray = to_grayscale(image)
    if image_size is not None and gray.size != (image_size, image_size):
        gray = resize_image(gray, image_size)
    return np.asarray(gray, dtype=np.uint8)


def decode_images(
    paths: Sequence[Path],
    *,
    image_size: int | None,
    on_corrupt: str = "error",
    contents: Sequence[bytes | None] | None = None,
) -> DecodedImages:
    """Decode every file in ``paths`` and stack the images into an (N, H, W) uint8 array.

    ``contents`` may give the bytes of each file (None where not read yet).

    Every unreadable file is collected first, so one DataError lists all of them.
    With ``on_corrupt="skip"`` they are left out instead, logged as a warning and
    returned in ``skipped``. Images of different sizes raise DataError unless
    ``image_size`` is set.
    """
    validate_on_corrupt(on_corrupt)
    arrays: list[np.ndarray] = []
    kept = np.zeros(len(paths), dtype=bool)
    corrupt: list[tuple[Path, str]] = []

    contents = contents if contents is not None else [None] * len(paths)
    for index, (path, content) in enumerate(zip(paths, contents)):
        try:
            arrays.append(decode_file(path, image_size, content))
        except UnidentifiedImageError:
            # Pillow's own message names the in-memory buffer, not the file.
            corrupt.append((path, "not a recognized image format"))
            continue
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            corrupt.append((path, str(error) or type(error).__name__))
            continue
        kept[index] = True

    skipped = report_corrupt(corrupt, on_corrupt)
    if not arrays:
        raise DataError("no readable image files found: every image file failed to decode")

    check_same_size(arrays, [path for path, keep in zip(paths, kept) if keep])
    return DecodedImages(images=np.stack(arrays), kept=kept, skipped=skipped)


def report_corrupt(corrupt: list[tuple[Path, str]], on_corrupt: str) -> list[str]:
    """Raise DataError listing the corrupt files, or return them for on_corrupt="skip"."""
    if not corrupt:
        return []
    listing = format_paths([f"{path} ({reason})" for path, reason in corrupt])
    if on_corrupt == "error":
        raise DataError(
            f"{len(corrupt)} image file(s) are corrupt or truncated and cannot be decoded:\n{listing}\n"
            "Replace or delete these files, or set on_corrupt: skip to leave them out."
        )
    logger.warning("skipping %d corrupt image file(s) because on_corrupt is 'skip':\n%s", len(corrupt), listing)
    return [str(path) for path, _ in corrupt]


def check_same_size(arrays: list[np.ndarray], paths: Sequence[Path]) -> None:
    sizes = Counter(array.shape for array in arrays)
    if len(sizes) <= 1:
        return
    examples = {}
    for array, path in zip(arrays, paths):
        examples.setdefault(array.shape, path)
    described = ", ".join(
        f"{count} of {shape[1]}x{shape[0]} (e.g. {examples[shape]})" for shape, count in sizes.most_common()
    )
    raise DataError(
        f"images have different sizes: {described}. Set image_size (for example image_size: 48) "
        "to resize every image to one square size."
    )
