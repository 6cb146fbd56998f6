"""A plain image-folder layout for users' own data: ``root/<class>/<image>``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_live.errors import ConfigError
from fer_live.infer.json_checks import short
from fer_live.trainer.data.ferplus import LabelledImages

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def read_image_folder(root: Path, classes: tuple[str, ...] | None = None) -> LabelledImages:
    """List images in class sub-folders.

    Args:
        root: Folder with one sub-folder per class.
        classes: Class names in index order; None uses the sorted sub-folder names.

    Returns:
        Images with hard labels and no soft targets.

    Raises:
        ConfigError: The folder is missing or unreadable, has no classes, a class name is not a
            plain unique folder name, or a named class folder is absent.
    """
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"image folder not found: {root}")
    if classes is None:
        classes = tuple(sorted(p.name for p in _entries(root) if p.is_dir()))
    _check_class_names(classes, root)
    paths: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            raise ConfigError(f"class folder missing: {short(str(folder), 300)}")
        files = sorted(
            p for p in _entries(folder) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        paths.extend(files)
        labels.extend([index] * len(files))
    return LabelledImages(tuple(paths), np.asarray(labels, np.int64), None, tuple(classes))


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError as exc:
        raise ConfigError(f"cannot list {short(str(folder), 300)}: {exc.strerror}") from None


def _check_class_names(classes: tuple[str, ...], root: Path) -> None:
    """Class names are unique plain folder names: a name like ``../x`` would leave ``root``."""
    if not classes:
        raise ConfigError(f"no class sub-folders in {root}")
    for name in classes:
        plain = isinstance(name, str) and name not in ("", ".", "..")
        if not plain or "/" in name or "\\" in name or "\0" in name:
            raise ConfigError(f"class name must be a plain folder name, got {short(name)}")
    if len(set(classes)) != len(classes):
        raise ConfigError(f"class names must be unique, got {short(list(classes), 200)}")
