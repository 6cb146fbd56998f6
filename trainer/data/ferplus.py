"""Readers for the FERPlus label layout and the original FER2013 7-class labels.

FERPlus ships one ``label.csv`` per split folder (``FER2013Train``, ``FER2013Valid``,
``FER2013Test``) with ten annotator votes per image over ``neutral .. contempt, unknown, NF``.
The majority protocol follows the FERPlus generator: single votes are dropped as outliers, the
top class must hold more than half of the remaining votes, and images whose majority is
``unknown`` or ``NF`` (not a face) are dropped.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_live.errors import ConfigError, ModelError
from fer_live.infer.json_checks import short

FERPLUS_LABELS = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
)
VOTE_COLUMNS = FERPLUS_LABELS + ("unknown", "NF")
FERPLUS_SPLITS = {"train": "FER2013Train", "valid": "FER2013Valid", "test": "FER2013Test"}
FER2013_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# FERPlus names -> FER2013 names, to score an 8-class FERPlus model against the 7 original labels
# (contempt has no FER2013 counterpart and is left out of the argmax).
LABEL_ALIASES = {
    "happiness": "happy",
    "sadness": "sad",
    "anger": "angry",
}


def label_columns(model_labels: tuple[str, ...], data_labels: tuple[str, ...]) -> list[int]:
    """Indices of the model's logits that correspond to each data class, in data order.

    Raises:
        ModelError: A data class has no model counterpart.
    """
    names = [LABEL_ALIASES.get(name, name) for name in model_labels]
    missing = [name for name in data_labels if name not in names]
    if missing:
        raise ModelError(f"model labels {list(model_labels)} do not cover {missing}")
    return [names.index(name) for name in data_labels]


FER2013_USAGES = {"train": "Training", "public": "PublicTest", "private": "PrivateTest"}


@dataclass(frozen=True)
class LabelledImages:
    """Image files with hard labels and optional soft targets.

    Attributes:
        paths: Image files, length N.
        labels: Hard class index per image, int64 (N,).
        soft: Soft targets (N, C) summing to 1 per row, or None.
        classes: Class names in index order.
    """

    paths: tuple[Path, ...]
    labels: np.ndarray
    soft: np.ndarray | None
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.paths)
        if self.labels.shape != (n,):
            raise ValueError(f"labels must be ({n},), got {self.labels.shape}")
        if self.soft is not None and self.soft.shape != (n, len(self.classes)):
            raise ValueError(f"soft must be ({n}, {len(self.classes)}), got {self.soft.shape}")

    def __len__(self) -> int:
        return len(self.paths)


def read_votes(label_csv: Path) -> tuple[list[str], np.ndarray]:
    """Read a FERPlus ``label.csv``.

    Args:
        label_csv: File with rows ``image,"(x, y, w, h)",<10 vote counts>``.

    Returns:
        Image names and votes, float32 (N, 10) in ``VOTE_COLUMNS`` order.

    Raises:
        ConfigError: The file is unreadable, not UTF-8 CSV, or a row is malformed.
    """
    names: list[str] = []
    votes: list[list[float]] = []
    for number, row in enumerate(_csv_rows(label_csv), start=1):
        if not row or not row[0].strip():
            continue
        if len(row) != 2 + len(VOTE_COLUMNS):
            raise ConfigError(
                f"{label_csv}: expected 12 columns, got {len(row)} on row {number}: {short(row)}"
            )
        names.append(row[0].strip())
        votes.append([_vote(v, label_csv, number) for v in row[2:]])
    return names, np.asarray(votes, np.float32).reshape(-1, len(VOTE_COLUMNS))


def _csv_rows(path: Path) -> list[list[str]]:
    """All rows of a UTF-8 CSV file; ConfigError when it cannot be read or parsed."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"cannot read {path}: {short(str(exc), 200)}") from None


def _vote(text: str, path: Path, number: int) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0.0 <= value <= 1e6):
        raise ConfigError(f"{path}: row {number} has a bad vote count {short(text)}")
    return value


def majority_labels(votes: np.ndarray) -> np.ndarray:
    """FERPlus majority labels; -1 marks images the protocol drops.

    Args:
        votes: Vote counts (N, 10) in ``VOTE_COLUMNS`` order.

    Returns:
        int64 (N,): the majority class in 0..7, or -1 when, after removing single votes, no class
        holds more than half of the votes or the majority is ``unknown``/``NF``.
    """
    kept = np.where(votes > 1.0, votes, 0.0)
    total = kept.sum(axis=1)
    top = kept.argmax(axis=1)
    has_majority = kept.max(axis=1) > 0.5 * total
    valid = has_majority & (top < len(FERPLUS_LABELS)) & (total > 0)
    return np.where(valid, top, -1).astype(np.int64)


def soft_targets(votes: np.ndarray) -> np.ndarray:
    """Vote distribution over the 8 emotions (unknown/NF removed), float32 (N, 8) summing to 1."""
    emo = votes[:, : len(FERPLUS_LABELS)].astype(np.float32)
    total = emo.sum(axis=1, keepdims=True)
    return emo / np.maximum(total, 1e-6)


def read_ferplus(root: Path, split: str) -> LabelledImages:
    """Read one FERPlus split under the majority protocol.

    Args:
        root: Folder holding ``FER2013Train``, ``FER2013Valid`` and ``FER2013Test``.
        split: ``train``, ``valid`` or ``test``.

    Returns:
        The kept images with majority labels and soft vote targets.

    Raises:
        ConfigError: Unknown split or missing label file.
    """
    if split not in FERPLUS_SPLITS:
        raise ConfigError(f"split must be one of {sorted(FERPLUS_SPLITS)}, got {split!r}")
    folder = Path(root) / FERPLUS_SPLITS[split]
    label_csv = folder / "label.csv"
    if not label_csv.is_file():
        raise ConfigError(f"FERPlus label file not found: {label_csv}")
    names, votes = read_votes(label_csv)
    labels = majority_labels(votes)
    keep = labels >= 0
    return LabelledImages(
        paths=tuple(folder / n for n, k in zip(names, keep, strict=True) if k),
        labels=labels[keep],
        soft=soft_targets(votes[keep]),
        classes=FERPLUS_LABELS,
    )


def read_fer2013(root: Path, split: str) -> LabelledImages:
    """Read the original FER2013 7-class labels from ``fer2013_7class.csv``.

    Args:
        root: The FERPlus root holding ``fer2013_7class.csv`` and the split folders.
        split: ``train`` (Training), ``public`` (PublicTest) or ``private`` (PrivateTest).

    Returns:
        Images with their 7-class labels (``FER2013_LABELS`` order) and no soft targets.

    Raises:
        ConfigError: Unknown split, or a missing, unreadable or malformed file.
    """
    if split not in FER2013_USAGES:
        raise ConfigError(f"split must be one of {sorted(FER2013_USAGES)}, got {split!r}")
    root = Path(root)
    table = root / "fer2013_7class.csv"
    if not table.is_file():
        raise ConfigError(f"FER2013 label file not found: {table}")
    usage = FER2013_USAGES[split]
    folder = {"Training": "FER2013Train", "PublicTest": "FER2013Valid"}.get(usage, "FER2013Test")
    rows = _fer2013_rows(table, usage)
    paths = tuple(root / folder / image for image, _ in rows)
    labels = np.asarray([label for _, label in rows], np.int64)
    return LabelledImages(paths, labels, None, FER2013_LABELS)


def _fer2013_rows(table: Path, usage: str) -> list[tuple[str, int]]:
    """``(image, emotion)`` of the rows of ``usage``; ConfigError for a malformed table."""
    rows = _csv_rows(table)
    header = rows[0] if rows else []
    missing = [c for c in ("image", "usage", "emotion") if c not in header]
    if missing:
        raise ConfigError(f"{table}: missing column(s) {missing} in the header row")
    image, use, emotion = (header.index(c) for c in ("image", "usage", "emotion"))
    valid = {str(i) for i in range(len(FER2013_LABELS))}
    kept: list[tuple[str, int]] = []
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise ConfigError(f"{table}: row {number} has {len(row)} columns, not {len(header)}")
        if row[use] != usage:
            continue
        if row[emotion].strip() not in valid or not row[image].strip():
            raise ConfigError(f"{table}: row {number} has a bad image or emotion: {short(row)}")
        kept.append((row[image].strip(), int(row[emotion])))
    return kept
