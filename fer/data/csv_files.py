"""Read the CSV files of FER2013 releases: headers, labels, Usage values and pixel strings.

Line numbers in messages are the file's own: the header is line 1, so the
first data row is line 2.
"""

from __future__ import annotations

import csv
import difflib
import logging
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fer.constants import NUM_CLASSES, UNLABELED
from fer.data.dataset import OFFICIAL_USAGES
from fer.data.images import MAX_LISTED
from fer.errors import DataError

logger = logging.getLogger(__name__)

# Column names as the releases spell them, keyed by the lower-case name that
# matching uses. Matching ignores case and surrounding spaces, because
# icml_face_data.csv writes its header as "emotion, Usage, pixels".
KNOWN_COLUMNS = {"emotion": "emotion", "pixels": "pixels", "usage": "Usage", "id": "id", "label": "label"}

# The kinds of CSV file, keyed by the columns that identify them. The order
# matters: the first kind whose columns are all present wins.
CSV_KINDS: dict[str, tuple[str, ...]] = {
    "pixels-usage": ("emotion", "pixels", "usage"),
    "pixels-labeled": ("emotion", "pixels"),
    "pixels-only": ("pixels",),
    "id-label": ("id", "label"),
}
CSV_KIND_DESCRIPTIONS = {
    "pixels-usage": "'emotion,pixels,Usage' (Kaggle fer2013.csv or icml_face_data.csv)",
    "pixels-labeled": "'emotion,pixels' (torchvision fer2013/train.csv)",
    "pixels-only": "'pixels' (torchvision fer2013/test.csv)",
    "id-label": "'id,label' (course train.csv)",
}

# difflib similarity above which an unknown column counts as a misspelling of a known one.
MISSPELLING_CUTOFF = 0.75

FIRST_DATA_LINE = 2


@dataclass
class CsvHeader:
    path: Path
    raw_names: list[str]
    names: list[str]

    @property
    def is_icml_style(self) -> bool:
        # icml_face_data.csv puts Usage before pixels and a space after each comma.
        has_padded_names = self.raw_names != [name.strip() for name in self.raw_names]
        return has_padded_names or self.names[:3] == ["emotion", "usage", "pixels"]


@dataclass
class PixelRows:
    """Rows of a pixel CSV: images (N, side, side), labels, Usage values (or None) and file line numbers."""

    images: np.ndarray
    labels: np.ndarray
    usage: np.ndarray | None
    lines: np.ndarray


def read_header(path: Path) -> CsvHeader:
    """Read the header line of a CSV file; raise DataError for an empty or binary file."""
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty (0 bytes); download the file again or point data at another source")
    try:
        with open(path, encoding="utf-8-sig", newline="") as stream:
            raw_names = next(csv.reader(stream), [])
    except (UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{path} is not a readable CSV text file ({error}); check that it is the extracted CSV") from error
    if not any(name.strip() for name in raw_names):
        raise DataError(f"{path}: line 1 is empty, but a CSV header was expected; the file is damaged or empty")
    return CsvHeader(path=path, raw_names=raw_names, names=[name.strip().lower() for name in raw_names])


def classify_header(header: CsvHeader) -> str | None:
    """Return the CSV kind of ``header`` (a key of CSV_KINDS), or None for an unrelated CSV.

    Raises DataError when a column looks like a misspelled known column, so that
    'pixel' is reported instead of the file being ignored.
    """
    check_misspelled_columns(header)
    present = set(header.names)
    for kind, columns in CSV_KINDS.items():
        if set(columns) <= present:
            return kind
    return None


def check_misspelled_columns(header: CsvHeader) -> None:
    present = set(header.names)
    for raw, name in zip(header.raw_names, header.names):
        if name in KNOWN_COLUMNS:
            continue
        close = difflib.get_close_matches(name, list(KNOWN_COLUMNS), n=1, cutoff=MISSPELLING_CUTOFF)
        if close and close[0] not in present:
            expected = KNOWN_COLUMNS[close[0]]
            raise DataError(
                f"{header.path}: line 1 (header): unknown column {raw.strip()!r}; did you mean {expected!r}? "
                f"Rename the column to {expected!r} (found columns: {', '.join(repr(n.strip()) for n in header.raw_names)})"
            )


def explain_unknown_header(header: CsvHeader) -> DataError:
    """Build the error for a CSV that matches no known kind, naming the missing columns of the closest kind."""
    present = set(header.names)

    def overlap(kind: str) -> int:
        return len(set(CSV_KINDS[kind]) & present)

    closest = max(CSV_KINDS, key=overlap)
    missing = [KNOWN_COLUMNS[name] for name in CSV_KINDS[closest] if name not in present]
    found = ", ".join(repr(name.strip()) for name in header.raw_names)
    expected = "; ".join(CSV_KIND_DESCRIPTIONS.values())
    return DataError(
        f"{header.path}: line 1 (header): missing column(s) {', '.join(map(repr, missing))}; found {found}. "
        f"Expected one of these headers: {expected}"
    )


def read_frame(path: Path, header: CsvHeader) -> pd.DataFrame:
    """Read every cell as a string, with columns renamed to the lower-case known names."""
    try:
        # skip_blank_lines=False keeps row i on file line i + 2, so messages can cite lines.
        # index_col=False stops pandas from turning the first column into the index
        # when every row ends with an extra comma.
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, skip_blank_lines=False, index_col=False, encoding="utf-8-sig"
        )
    except pd.errors.ParserError as error:
        raise DataError(f"{path} is not a valid CSV file ({str(error).strip()}); fix or re-download the file") from error
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not a UTF-8 text file ({error}); check that it is the extracted CSV") from error
    frame.columns = header.names
    if frame.empty:
        raise DataError(f"{path} has a header but no data rows; download the file again or point data at another source")
    return frame


def raise_row_errors(path: Path, column: str, problems: list[tuple[int, str]], fix: str) -> None:
    """Raise one DataError for the invalid rows of ``column``, listing up to MAX_LISTED of them."""
    if not problems:
        return
    listed = "\n".join(f"  line {line}: {problem}" for line, problem in problems[:MAX_LISTED])
    if len(problems) > MAX_LISTED:
        listed += f"\n  ... and {len(problems) - MAX_LISTED} more"
    raise DataError(f"{path}: {len(problems)} row(s) have an invalid {column!r} value:\n{listed}\n{fix}")


def parse_labels(values: pd.Series, path: Path, column: str) -> np.ndarray:
    """Parse class indices 0-6; raise DataError naming each bad line and value."""
    labels = np.empty(len(values), dtype=np.int64)
    problems: list[tuple[int, str]] = []
    for row, text in enumerate(values.tolist()):
        stripped = text.strip()
        try:
            label = int(stripped)
        except ValueError:
            problems.append((row + FIRST_DATA_LINE, f"{text!r} is not an integer"))
            continue
        if not 0 <= label < NUM_CLASSES:
            problems.append((row + FIRST_DATA_LINE, f"{text!r} is outside 0-{NUM_CLASSES - 1}"))
            continue
        labels[row] = label
    raise_row_errors(path, column, problems, f"Labels must be class indices 0-{NUM_CLASSES - 1}; fix or delete these rows.")
    return labels


def parse_usage(values: pd.Series, path: Path) -> np.ndarray:
    """Parse Usage values, accepting any letter case; raise DataError naming each bad line."""
    by_lower = {usage.lower(): usage for usage in OFFICIAL_USAGES}
    usage = np.empty(len(values), dtype=object)
    problems: list[tuple[int, str]] = []
    for row, text in enumerate(values.tolist()):
        official = by_lower.get(text.strip().lower())
        if official is None:
            problems.append((row + FIRST_DATA_LINE, f"{text!r} is not one of {', '.join(OFFICIAL_USAGES)}"))
            continue
        usage[row] = official
    raise_row_errors(path, "Usage", problems, "Fix or delete these rows.")
    return usage.astype(str)


def describe_unparsable_pixels(text: str) -> str:
    if not text.strip():
        return "the field is empty"
    bad_token = next((token for token in text.split() if not token.lstrip("+-").isdigit()), text)
    return f"value {bad_token[:20]!r} is not an integer"


def parse_pixel_row(text: str) -> tuple[np.ndarray | None, str]:
    """Parse one pixels field into uint8 values, or return None and the reason it is invalid."""
    try:
        values = np.fromstring(text, dtype=np.int64, sep=" ")
    except ValueError:
        return None, describe_unparsable_pixels(text)
    if values.size == 0:
        return None, "the field is empty"
    low, high = int(values.min()), int(values.max())
    if low < 0 or high > 255:
        bad_value = low if low < 0 else high
        return None, f"value {bad_value} is outside 0-255"
    return values.astype(np.uint8), ""


def parse_pixels(values: pd.Series, path: Path) -> np.ndarray:
    """Parse space-separated pixel strings into square images, shape (N, side, side).

    The expected count is the most common count in the file (2304 = 48x48 for
    FER2013), so one short row is reported instead of every other row.
    """
    rows: list[np.ndarray | None] = []
    problems: list[tuple[int, str]] = []
    for row, text in enumerate(values.tolist()):
        pixels, reason = parse_pixel_row(text)
        rows.append(pixels)
        if pixels is None:
            problems.append((row + FIRST_DATA_LINE, reason))

    counts = Counter(pixels.size for pixels in rows if pixels is not None)
    expected = counts.most_common(1)[0][0] if counts else 0
    side = math.isqrt(expected)
    for row, pixels in enumerate(rows):
        if pixels is not None and pixels.size != expected:
            problems.append((row + FIRST_DATA_LINE, f"{pixels.size} values instead of {expected}"))
    problems.sort()
    raise_row_errors(
        path, "pixels", problems,
        "Each pixels field must contain the same number of space-separated integers 0-255 "
        "(2304 for a 48x48 image); fix or delete these rows.",
    )

    if side * side != expected:
        raise DataError(
            f"{path}: the pixels fields contain {expected} values, which is not a square image size; "
            "each field must list the pixels of a square grayscale image (2304 values for 48x48)"
        )
    return np.stack(rows).reshape(len(rows), side, side)


def read_pixel_rows(path: Path, *, labeled: bool, with_usage: bool) -> PixelRows:
    """Read a pixel CSV (fer2013.csv, icml_face_data.csv, or torchvision's train.csv or test.csv)."""
    header = read_header(path)
    frame = read_frame(path, header)
    required = ["pixels"] + (["emotion"] if labeled else []) + (["usage"] if with_usage else [])
    missing = [KNOWN_COLUMNS[name] for name in required if name not in frame.columns]
    if missing:
        raise explain_unknown_header(header)

    lines = np.arange(len(frame)) + FIRST_DATA_LINE
    labels = parse_labels(frame["emotion"], path, "emotion") if labeled else np.full(len(frame), UNLABELED, np.int64)
    usage = parse_usage(frame["usage"], path) if with_usage else None
    images = parse_pixels(frame["pixels"], path)
    return PixelRows(images=images, labels=labels, usage=usage, lines=lines)
