"""A plain image-folder layout for users' own data: ``root/<class>/<image>``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from realtime.errors import ConfigError
from trainer.data.ferplus import LabelledImages

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def read_image_folder(root: Path, classes: tuple[str, ...] | None = None) -> LabelledImages:
    """List images in class sub-folders.

    Args:
        root: Folder with one sub-folder per class.
        classes: Class names in index order; None uses the sorted sub-folder names.

    Returns:
        Images with hard labels and no soft targets.

    Raises:
        ConfigError: The folder is missing, has no classes, or a named class folder is absent.
    """
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"image folder not found: {root}")
    if classes is None:
        classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
    if not classes:
        raise ConfigError(f"no class sub-folders in {root}")
    paths: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            raise ConfigError(f"class folder missing: {folder}")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        paths.extend(files)
        labels.extend([index] * len(files))
    return LabelledImages(tuple(paths), np.asarray(labels, np.int64), None, tuple(classes))
