"""FERPlus for the GPU machine, which gets the checkout but not ``../shared``.

``export DEST`` (here) writes what the trainer reads: the three ``label.csv`` files under
``DEST/shared/data/ferplus/`` and each split's decoded uint8 images as ``DEST/packed/<split>.npy``
(the 35k PNGs would be larger and slow to decode there). ``install SRC`` (on the GPU machine,
with ``FER_SHARED=SRC/shared``) files those arrays into the trainer's packed-image cache under
the keys its own reader computes there, so ``fer-train`` and the benchmarks load them as if the
PNGs had been decoded on that machine.

Usage:
    python benchmarks/gpu_data.py export /tmp/fer-gpu-bundle
    FER_SHARED=/tmp/fer-gpu/shared python benchmarks/gpu_data.py install /tmp/fer-gpu
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fer_live.trainer.config import DEFAULT_DATA_ROOT  # noqa: E402
from fer_live.trainer.data.cache import DEFAULT_CACHE_DIR, _cache_key, pack  # noqa: E402
from fer_live.trainer.data.ferplus import FERPLUS_SPLITS, read_ferplus  # noqa: E402


def export(dest: Path, data_root: Path) -> None:
    for split, folder in FERPLUS_SPLITS.items():
        labels = dest / "shared/data/ferplus" / folder / "label.csv"
        labels.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_root / folder / "label.csv", labels)
        images = pack(read_ferplus(data_root, split), cache_dir=DEFAULT_CACHE_DIR).images
        (dest / "packed").mkdir(parents=True, exist_ok=True)
        np.save(dest / "packed" / f"{split}.npy", images)
        print(f"{split}: {len(images)} images")


def install(src: Path, data_root: Path) -> None:
    DEFAULT_CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for split in FERPLUS_SPLITS:
        items = read_ferplus(data_root, split)
        images = np.load(src / "packed" / f"{split}.npy", allow_pickle=False)
        if len(images) != len(items):
            raise SystemExit(f"error: {split} has {len(images)} images for {len(items)} labels")
        np.savez(DEFAULT_CACHE_DIR / f"packed-{_cache_key(items, None)}.npz", images=images)
        print(f"{split}: {len(images)} images cached")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("export", "install"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    args = parser.parse_args(argv)
    (export if args.action == "export" else install)(args.folder, args.data_root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
