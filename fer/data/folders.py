"""List the image files of folder layouts: class-per-folder trees and the course's id-named files."""

from __future__ import annotations

import difflib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from fer.constants import CLASS_NAMES, UNLABELED
from fer.data.images import format_paths, is_hidden, is_image_file
from fer.errors import DataError

logger = logging.getLogger(__name__)

# Folder names of a split in a class-per-folder tree, by the role they play.
TRAIN_FOLDER_NAMES = ("train", "training")
VAL_FOLDER_NAMES = ("val", "valid", "validation", "publictest")
TEST_FOLDER_NAMES = ("test", "testing", "privatetest")
SPLIT_ROLES = {
    name: role
    for role, names in (("train", TRAIN_FOLDER_NAMES), ("val", VAL_FOLDER_NAMES), ("test", TEST_FOLDER_NAMES))
    for name in names
}


@dataclass
class ImageFile:
    """One image file of a folder layout, with the label, Usage and id that its location gives."""

    path: Path
    label: int
    usage: str
    id: str


def list_folder(folder: Path) -> tuple[list[Path], list[Path]]:
    """Return the subfolders and files of ``folder``, sorted by name, without hidden entries."""
    with os.scandir(folder) as entries:
        # Sorting DirEntry names is several times faster than sorting Paths,
        # which matters for FER2013's class folders of up to 7,215 files.
        visible = sorted((entry for entry in entries if not is_hidden(entry.name)), key=lambda entry: entry.name)
    subfolders = [Path(entry.path) for entry in visible if entry.is_dir()]
    files = [Path(entry.path) for entry in visible if not entry.is_dir()]
    return subfolders, files


def class_index(name: str) -> int | None:
    lowered = name.lower()
    return CLASS_NAMES.index(lowered) if lowered in CLASS_NAMES else None


def has_class_folders(folder: Path) -> bool:
    if not folder.is_dir():
        return False
    subfolders, _ = list_folder(folder)
    return any(class_index(sub.name) is not None for sub in subfolders)


def list_image_files(folder: Path, *, what: str) -> list[Path]:
    """Return the image files of ``folder``; raise DataError for any other entry or for an empty folder."""
    subfolders, files = list_folder(folder)
    others = subfolders + [path for path in files if not is_image_file(path)]
    if others:
        entries = "1 entry that is not an image file" if len(others) == 1 else f"{len(others)} entries that are not image files"
        raise DataError(
            f"{folder} is {what} but contains {entries}:\n"
            f"{format_paths(others)}\nMove them out of {folder}; only image files "
            "(.jpg, .jpeg, .png, .bmp, .gif, .tif, .tiff, .webp, .pgm, .ppm) may be there."
        )
    if not files:
        raise DataError(f"{folder} is {what} but contains no images; add its images or delete the empty folder")
    return files


def unknown_class_error(folder: Path) -> DataError:
    close = difflib.get_close_matches(folder.name.lower(), CLASS_NAMES, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return DataError(
        f"{folder}: unknown class folder {folder.name!r}; {hint}class folders must be named "
        f"{', '.join(CLASS_NAMES)} (any letter case). Rename or remove the folder."
    )


def list_class_tree(folder: Path, usage: str) -> list[ImageFile]:
    """List the images of ``folder``/<class>/, labelled by their class folder."""
    subfolders, files = list_folder(folder)
    if not subfolders:
        raise DataError(
            f"{folder} contains no class folders; expected subfolders named {', '.join(CLASS_NAMES)} with images"
        )
    if files:
        logger.warning("ignoring %d file(s) beside the class folders in %s, e.g. %s", len(files), folder, files[0].name)

    images = []
    for class_folder in subfolders:
        label = class_index(class_folder.name)
        if label is None:
            raise unknown_class_error(class_folder)
        for path in list_image_files(class_folder, what="a class folder"):
            images.append(ImageFile(path=path, label=label, usage=usage, id=""))
    return images


def split_folder_usages(folders: list[Path]) -> dict[Path, str]:
    """Map the split folders of a class-per-folder tree to Usage values.

    A tree with train, validation and test folders carries a fixed three-way
    split, which plays the role of FER2013's Usage column (Training,
    PublicTest, PrivateTest), so the official protocol applies to it. With
    only two folders the second one is the test set and validation is held out
    of training.
    """
    roles: dict[str, Path] = {}
    for folder in folders:
        role = SPLIT_ROLES.get(folder.name.lower())
        if role is None:
            allowed = ", ".join(TRAIN_FOLDER_NAMES + VAL_FOLDER_NAMES + TEST_FOLDER_NAMES)
            raise DataError(
                f"{folder}: unknown split folder {folder.name!r} in a class-per-folder tree; split folders must be "
                f"named one of {allowed} (any letter case), each with class folders inside. Rename or remove it."
            )
        if role in roles:
            raise DataError(
                f"{roles[role]} and {folder} are both {role} folders; keep one of them, or merge their images"
            )
        roles[role] = folder

    if "train" not in roles:
        raise DataError(
            f"no training folder among {', '.join(str(f) for f in folders)}; add a folder named train "
            "with one subfolder of images per class"
        )
    if "val" in roles and "test" in roles:
        return {roles["train"]: "Training", roles["val"]: "PublicTest", roles["test"]: "PrivateTest"}
    usages = {roles["train"]: "train"}
    for role in ("val", "test"):
        if role in roles:
            usages[roles[role]] = "test"
    return usages


def list_class_folders_layout(root: Path) -> list[ImageFile]:
    """List a class-per-folder tree: root/<class>/ or root/<split>/<class>/."""
    if has_class_folders(root):
        images = list_class_tree(root, usage="train")
    else:
        subfolders, _ = list_folder(root)
        images = []
        for folder, usage in split_folder_usages(subfolders).items():
            images.extend(list_class_tree(folder, usage))
    return with_relative_ids(images, root)


def usage_from_file_name(path: Path, folder_usage: str) -> str:
    """Return the Usage that a Kaggle file name such as PublicTest_123.jpg states, or the folder's usage.

    A prefix that contradicts the folder (a Training_ file under test/) raises
    DataError, because the two splits would then leak into each other.
    """
    prefix = path.name.split("_", 1)[0]
    allowed = {"train": ("Training",), "test": ("PublicTest", "PrivateTest")}[folder_usage]
    if prefix in allowed:
        return prefix
    if prefix in ("Training", "PublicTest", "PrivateTest"):
        raise DataError(
            f"{path}: the file name gives Usage {prefix} but the file is in the {folder_usage}/ folder; "
            "move it to the matching folder or rename it"
        )
    return folder_usage


def list_kaggle_folders_layout(root: Path) -> list[ImageFile]:
    """List root/train/<class>/ and root/test/<class>/, with Usage taken from file-name prefixes."""
    images = []
    for folder_usage in ("train", "test"):
        for image in list_class_tree(root / folder_usage, usage=folder_usage):
            image.usage = usage_from_file_name(image.path, folder_usage)
            images.append(image)
    return with_relative_ids(images, root)


def with_relative_ids(images: list[ImageFile], root: Path) -> list[ImageFile]:
    # The relative path is the id because file names alone are not unique:
    # FER2013's Kaggle folders hold Training_52789098.jpg in both neutral/ and surprise/.
    for image in images:
        image.id = relative_name(image.path, root)
    return images


def relative_name(path: str | Path, root: Path) -> str:
    """Return ``path`` relative to ``root`` with forward slashes.

    Works on strings because Path.relative_to costs about 10 microseconds a
    call, which adds up over FER2013's 35,887 files.
    """
    prefix = os.path.join(str(root), "")
    text = str(path)
    if not text.startswith(prefix):
        return Path(path).relative_to(root).as_posix()
    return text[len(prefix) :].replace(os.sep, "/")


def list_course_images(folder: Path) -> dict[str, Path]:
    """Map each course image id (the file name without extension) to its file."""
    by_id: dict[str, Path] = {}
    for path in list_image_files(folder, what="a course image folder"):
        if path.stem in by_id:
            raise DataError(
                f"duplicate image id {path.stem!r}: both {by_id[path.stem]} and {path} exist; delete one of them"
            )
        by_id[path.stem] = path
    return by_id


def unlabeled_course_images(folder: Path) -> list[ImageFile]:
    return [
        ImageFile(path=path, label=UNLABELED, usage="test", id=image_id)
        for image_id, path in list_course_images(folder).items()
    ]
