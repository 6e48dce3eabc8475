"""Detect which FER2013 layout a source uses and read it into a RawDataset.

Layouts:

- ``kaggle-csv``: ``fer2013.csv`` with columns ``emotion,pixels,Usage``;
- ``icml-csv``: ``icml_face_data.csv``, the same rows with header ``emotion, Usage, pixels``;
- ``torchvision-csv``: ``train.csv`` (``emotion,pixels``) and an unlabeled ``test.csv`` (``pixels``),
  as torchvision up to 0.18 reads them from ``<root>/fer2013/``;
- ``kaggle-folders``: ``train/<class>/*.jpg`` and ``test/<class>/*.jpg``; file-name prefixes
  ``Training_``, ``PublicTest_`` and ``PrivateTest_`` give the Usage when present;
- ``course``: ``train.csv`` (``id,label``), ``train/<id>.jpg`` and unlabeled ``test/<id>.jpg``;
- ``class-folders``: any other class-per-folder tree, ``<class>/`` or ``<split>/<class>/``.

A source is a folder or one of the CSV files itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from fer.constants import CLASS_NAMES
from fer.data.csv_files import (
    CSV_KIND_DESCRIPTIONS,
    FIRST_DATA_LINE,
    PixelRows,
    classify_header,
    explain_unknown_header,
    parse_labels,
    raise_row_errors,
    read_frame,
    read_header,
    read_pixel_rows,
)
from fer.data.dataset import RawDataset
from fer.data.folders import (
    ImageFile,
    has_class_folders,
    list_class_folders_layout,
    list_course_images,
    list_folder,
    list_kaggle_folders_layout,
    unlabeled_course_images,
)
from fer.data.images import decode_images, format_paths, resize_array
from fer.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

LAYOUT_NAMES = ("kaggle-csv", "icml-csv", "torchvision-csv", "kaggle-folders", "course", "class-folders")
PIXEL_CSV_LAYOUTS = ("kaggle-csv", "icml-csv")
FOLDER_LAYOUTS = ("kaggle-folders", "class-folders", "course")

LOOKED_FOR = (
    "a CSV file with header " + CSV_KIND_DESCRIPTIONS["pixels-usage"] + ";\n"
    "  train.csv 'emotion,pixels' with test.csv 'pixels' (torchvision), also inside a fer2013/ subfolder;\n"
    "  train/<class>/ and test/<class>/ image folders (Kaggle image release);\n"
    "  train.csv 'id,label' with train/ and test/ folders of <id>.jpg images (course layout);\n"
    f"  class folders named {', '.join(CLASS_NAMES)}, at the top or inside split folders such as train/ and test/"
)


@dataclass
class LayoutPlan:
    """A detected layout: which reader applies and which files it reads."""

    layout: str
    root: Path
    csv_files: dict[str, Path] = field(default_factory=dict)
    images: list[ImageFile] = field(default_factory=list)

    def source_files(self) -> list[Path]:
        """Return every file the reader reads, sorted, for hashing the source's content."""
        return sorted(set(self.csv_files.values()) | {image.path for image in self.images})


@dataclass
class Candidate:
    layout: str
    description: str
    build: Callable[[], LayoutPlan]


def validate_layout_name(layout: str) -> None:
    if layout != "auto" and layout not in LAYOUT_NAMES:
        raise ConfigError(
            f"config key 'layout': unknown value {layout!r}; use auto or one of {', '.join(LAYOUT_NAMES)}"
        )


def detect_layout(source: str | Path, layout: str = "auto") -> LayoutPlan:
    """Find the layout of ``source`` (a folder or a CSV file) and list the files it consists of.

    Raises DataError when the source is missing, matches no layout, or matches
    several layouts while ``layout`` is ``"auto"``.
    """
    validate_layout_name(layout)
    path = Path(source)
    if not path.exists():
        raise DataError(
            f"dataset source {str(source)!r} not found; download FER2013 and extract it there, "
            "fix the path, or use data: demo for synthetic faces"
        )
    plan = plan_for_file(path, layout) if path.is_file() else plan_for_folder(path, layout)
    check_csv_files_exist(plan)
    return plan


def check_csv_files_exist(plan: LayoutPlan) -> None:
    for role, path in plan.csv_files.items():
        if not path.is_file():
            raise DataError(
                f"{plan.layout} layout: {path} not found; torchvision's FER2013 folder contains train.csv "
                f"('emotion,pixels') and test.csv ('pixels'). Add the {role} file, or use fer2013.csv instead."
            )


def plan_for_file(path: Path, layout: str) -> LayoutPlan:
    if path.suffix.lower() != ".csv":
        archive_hint = ""
        if path.suffix.lower() in (".gz", ".tgz", ".zip", ".tar"):
            archive_hint = " Extract the archive first (tar -xzf or unzip) and point data at the extracted folder."
        raise DataError(
            f"{path} is not a dataset: expected a folder or a FER2013 CSV file (.csv).{archive_hint}"
        )
    header = read_header(path)
    kind = classify_header(header)
    if kind is None:
        raise explain_unknown_header(header)

    if kind == "pixels-usage":
        detected = "icml-csv" if header.is_icml_style else "kaggle-csv"
        plan = LayoutPlan(detected, path.parent, {"data": path})
        if layout in PIXEL_CSV_LAYOUTS:
            plan.layout = layout
    elif kind == "pixels-labeled":
        plan = LayoutPlan("torchvision-csv", path.parent, {"train": path, "test": path.parent / "test.csv"})
    elif kind == "pixels-only":
        plan = LayoutPlan("torchvision-csv", path.parent, {"train": path.parent / "train.csv", "test": path})
    else:
        plan = course_plan(path.parent, path)

    if layout != "auto" and plan.layout != layout:
        raise ConfigError(
            f"config key 'layout': {layout!r} does not match {path}, which is a {plan.layout} file "
            f"(header {', '.join(header.raw_names)}); set layout: auto or {plan.layout}"
        )
    return plan


def course_plan(root: Path, labels_csv: Path) -> LayoutPlan:
    for folder in (root / "train", root / "test"):
        if not folder.is_dir():
            raise DataError(
                f"course layout: {folder} not found; the course layout needs {labels_csv.name} beside a train/ "
                "folder of <id>.jpg images and a test/ folder of unlabeled <id>.jpg images"
            )
    train = unlabeled_course_images(root / "train")
    for image in train:
        image.usage = "train"
    test = unlabeled_course_images(root / "test")
    return LayoutPlan("course", root, {"labels": labels_csv}, train + test)


def folder_csv_candidates(root: Path, files: list[Path]) -> list[Candidate]:
    candidates = []
    kinds: dict[str, list[Path]] = {}
    for path in files:
        if path.suffix.lower() != ".csv":
            continue
        header = read_header(path)
        kind = classify_header(header)
        if kind == "pixels-usage":
            name = "icml-csv" if header.is_icml_style else "kaggle-csv"
            candidates.append(Candidate(
                name, f"{name}: {path}", lambda csv_path=path, layout=name: LayoutPlan(layout, root, {"data": csv_path})
            ))
        if kind is not None:
            kinds.setdefault(kind, []).append(path)

    train_csv, test_csv = root / "train.csv", root / "test.csv"
    if train_csv in kinds.get("pixels-labeled", []) or test_csv in kinds.get("pixels-only", []):
        candidates.append(Candidate(
            "torchvision-csv", f"torchvision-csv: {train_csv} and {test_csv}",
            lambda: LayoutPlan("torchvision-csv", root, {"train": train_csv, "test": test_csv}),
        ))
    labels_files = kinds.get("id-label", [])
    if root / "train.csv" in labels_files:
        # A course folder may also contain a sample submission or predictions,
        # which have the same id,label header as train.csv.
        labels_files = [root / "train.csv"]
    for labels_csv in labels_files:
        if (root / "train").is_dir() and not has_class_folders(root / "train"):
            candidates.append(Candidate(
                "course", f"course: {labels_csv} with train/ and test/",
                lambda labels=labels_csv: course_plan(root, labels),
            ))
    return candidates


def folder_candidates(root: Path) -> list[Candidate]:
    subfolders, files = list_folder(root)
    candidates = folder_csv_candidates(root, files)

    torchvision_root = root / "fer2013"
    if (torchvision_root / "train.csv").is_file() or (torchvision_root / "test.csv").is_file():
        candidates.append(Candidate(
            "torchvision-csv", f"torchvision-csv: {torchvision_root}/train.csv and test.csv",
            lambda: LayoutPlan(
                "torchvision-csv", torchvision_root,
                {"train": torchvision_root / "train.csv", "test": torchvision_root / "test.csv"},
            ),
        ))

    split_trees = {sub.name for sub in subfolders if has_class_folders(sub)}
    if split_trees == {"train", "test"}:
        candidates.append(Candidate(
            "kaggle-folders", f"kaggle-folders: {root}/train/<class>/ and {root}/test/<class>/",
            lambda: LayoutPlan("kaggle-folders", root, images=list_kaggle_folders_layout(root)),
        ))
    elif has_class_folders(root) or split_trees:
        candidates.append(Candidate(
            "class-folders", f"class-folders: {root}",
            lambda: LayoutPlan("class-folders", root, images=list_class_folders_layout(root)),
        ))
    return candidates


def plan_for_folder(root: Path, layout: str) -> LayoutPlan:
    candidates = folder_candidates(root)
    if layout == "class-folders" and any(c.layout == "kaggle-folders" for c in candidates):
        # The Kaggle image folders are also a class-per-folder tree; reading them as
        # one ignores the file-name prefixes, so the split falls back to holdout.
        return LayoutPlan("class-folders", root, images=list_class_folders_layout(root))
    if layout != "auto":
        candidates = [c for c in candidates if c.layout == layout]

    if not candidates:
        raise no_layout_error(root, layout)
    if len(candidates) > 1:
        listing = "\n".join(f"  {c.description}" for c in candidates)
        fix = (
            "set the config key layout to one of these"
            if len({c.layout for c in candidates}) == len(candidates)
            else "point data at one of these files instead of the folder"
        )
        raise DataError(f"{root} contains more than one dataset layout:\n{listing}\nTo choose, {fix}.")
    return candidates[0].build()


def no_layout_error(root: Path, layout: str) -> DataError:
    subfolders, files = list_folder(root)
    found = [f"{path.name}/" for path in subfolders] + [path.name for path in files]
    found_text = ", ".join(found[:20]) if found else "nothing (the folder is empty)"
    if len(found) > 20:
        found_text += f" and {len(found) - 20} more"
    expected = f"a {layout} layout" if layout != "auto" else "a FER2013 dataset layout"
    return DataError(
        f"no recognizable dataset in {root}: found {found_text}.\nLooked for {expected}, one of:\n  {LOOKED_FOR}\n"
        "Download FER2013 and extract it there, point data at the folder or CSV file that contains it, or use data: demo."
    )


def read_layout(
    plan: LayoutPlan, *, image_size: int | None = None, on_corrupt: str = "error", contents: dict[Path, bytes] | None = None
) -> tuple[RawDataset, list[str]]:
    """Read the images of a detected layout; return them and the corrupt files skipped.

    ``contents`` may hold the bytes of image files already read, keyed by path.
    """
    if plan.layout in PIXEL_CSV_LAYOUTS:
        return read_pixel_csv(plan, image_size), []
    if plan.layout == "torchvision-csv":
        return read_torchvision(plan, image_size), []
    if plan.layout == "course":
        label_course_images(plan)
    return read_image_files(plan, image_size, on_corrupt, contents or {})


def csv_ids(prefixes: np.ndarray, lines: np.ndarray) -> np.ndarray:
    # The file line number makes the id unique and lets a user find the row.
    return np.array([f"{prefix}_{line:05d}" for prefix, line in zip(prefixes, lines)])


def read_pixel_csv(plan: LayoutPlan, image_size: int | None) -> RawDataset:
    path = plan.csv_files["data"]
    rows = read_pixel_rows(path, labeled=True, with_usage=True)
    return RawDataset(
        images=resize_array(rows.images, image_size),
        labels=rows.labels,
        usage=rows.usage,
        ids=csv_ids(rows.usage, rows.lines),
        source=str(path),
        layout=plan.layout,
    )


def read_torchvision(plan: LayoutPlan, image_size: int | None) -> RawDataset:
    train = read_pixel_rows(plan.csv_files["train"], labeled=True, with_usage=False)
    test = read_pixel_rows(plan.csv_files["test"], labeled=False, with_usage=False)
    check_same_csv_size(plan, train, test)

    usage = np.array(["train"] * len(train.labels) + ["test"] * len(test.labels))
    return RawDataset(
        images=resize_array(np.concatenate([train.images, test.images]), image_size),
        labels=np.concatenate([train.labels, test.labels]),
        usage=usage,
        ids=csv_ids(usage, np.concatenate([train.lines, test.lines])),
        source=str(plan.root),
        layout=plan.layout,
    )


def check_same_csv_size(plan: LayoutPlan, train: PixelRows, test: PixelRows) -> None:
    if train.images.shape[1:] != test.images.shape[1:]:
        raise DataError(
            f"{plan.csv_files['train']} contains {train.images.shape[1]}x{train.images.shape[2]} images but "
            f"{plan.csv_files['test']} holds {test.images.shape[1]}x{test.images.shape[2]}; "
            "use files of the same release, or set image_size to resize both"
        )


def label_course_images(plan: LayoutPlan) -> None:
    """Set the labels of the course's training images from its id,label CSV."""
    path = plan.csv_files["labels"]
    header = read_header(path)
    frame = read_frame(path, header)
    ids = [text.strip() for text in frame["id"].tolist()]
    labels = parse_labels(frame["label"], path, "label")

    first_line: dict[str, int] = {}
    duplicates = []
    for row, image_id in enumerate(ids):
        line = row + FIRST_DATA_LINE
        if image_id in first_line:
            duplicates.append((line, f"id {image_id!r} already appears on line {first_line[image_id]}"))
        first_line.setdefault(image_id, line)
    raise_row_errors(path, "id", duplicates, "Each id must appear once; delete the repeated rows.")

    train_images = {image.id: image for image in plan.images if image.usage == "train"}
    train_folder = plan.root / "train"
    without_image = [
        (line, f"id {image_id!r} has no image {image_id}.<ext> in {train_folder}")
        for image_id, line in first_line.items()
        if image_id not in train_images
    ]
    raise_row_errors(path, "id", without_image, "Add the missing images to train/ or delete these rows.")

    without_row = [image.path for image_id, image in train_images.items() if image_id not in first_line]
    if without_row:
        raise DataError(
            f"{len(without_row)} image(s) in {train_folder} have no row in {path}:\n{format_paths(without_row)}\n"
            "Add an 'id,label' row for each, or move the images out of train/."
        )

    for image_id, label in zip(ids, labels):
        train_images[image_id].label = int(label)


def read_image_files(
    plan: LayoutPlan, image_size: int | None, on_corrupt: str, contents: dict[Path, bytes]
) -> tuple[RawDataset, list[str]]:
    paths = [image.path for image in plan.images]
    known_contents = [contents.get(path) for path in paths]
    decoded = decode_images(paths, image_size=image_size, on_corrupt=on_corrupt, contents=known_contents)
    kept = [image for image, keep in zip(plan.images, decoded.kept) if keep]
    raw = RawDataset(
        images=decoded.images,
        labels=np.array([image.label for image in kept], dtype=np.int64),
        usage=np.array([image.usage for image in kept]),
        ids=np.array([image.id for image in kept]),
        source=str(plan.root),
        layout=plan.layout,
    )
    return raw, decoded.skipped
