"""Copy a finished method run's small result files into the repository.

Runs live under ``runs/`` (ignored by git, gone on a fresh machine). The methods tables are
rebuilt from ``result.json`` and the per-split probabilities, so those are what a full-scale
row keeps: ``result.json``, ``method_config.json``, ``methods_log.jsonl`` and
``outputs_{valid,test}.npz`` with the probabilities and labels. The (N, 1280) embeddings are
dropped unless asked for (about 8 MB per split in float16), since only correcting reads them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from fer_live.errors import ConfigError

KEPT_DIR = Path("benchmarks/results/methods_runs")
_TEXT = ("result.json", "method_config.json", "methods_log.jsonl")


def keep_run(run_dir: Path, dest_root: Path = KEPT_DIR, embeddings: bool = False) -> Path:
    """Copy ``run_dir``'s result files to ``dest_root / <run name>``; returns that folder.

    Raises:
        ConfigError: The run has not finished (no ``result.json``).
    """
    run_dir = Path(run_dir)
    if not (run_dir / "result.json").is_file():
        raise ConfigError(f"{run_dir} has no result.json: the run has not finished")
    dest = Path(dest_root) / run_dir.name
    dest.mkdir(parents=True, exist_ok=True)
    for name in _TEXT:
        if (run_dir / name).is_file():
            shutil.copyfile(run_dir / name, dest / name)
    for split in ("valid", "test"):
        with np.load(run_dir / f"outputs_{split}.npz", allow_pickle=False) as data:
            arrays = {k: data[k] for k in data if k != "embedding" or embeddings}
        np.savez_compressed(dest / f"outputs_{split}.npz", **arrays)
    return dest
