"""Start-up cost of one ``fer-live`` run, for one or more checkouts, measured in turns.

Users run ``fer-live -s CLIP --jsonl OUT`` once per video, so every run pays the imports and the
model, detector and smoother loading. This runs ``fer-live -s single_face.mp4 --jsonl OUT
--headless --max-frames 1`` (one frame: the rest is start-up) N times per checkout, the checkouts
taking turns so that a change in the machine's load hits all of them alike, and prints the median
wall and user CPU seconds of each and their ratio to the first.

A checkout is a source tree of fer-live (e.g. ``git worktree add /tmp/old <commit>``); it is run
by this venv's interpreter with the editable install's folders pointed at that tree, so the
checkouts differ only in their code. Results go to ``benchmarks/results/startup.json``.

Run: ``python benchmarks/startup.py --checkout /tmp/old --checkout . -n 9``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
CLIP = REPO / "examples" / "data" / "single_face.mp4"

# Run in the child: re-point the editable install's package folders at the checkout, then run the
# CLI as its console script does.
LAUNCHER = """
import sys
root, sys.argv = sys.argv[1], ["fer-live", *sys.argv[2:]]
for name, module in list(sys.modules.items()):
    mapping = getattr(module, "MAPPING", None)
    if name.startswith("__editable__") and isinstance(mapping, dict):
        here = mapping["fer_live"].rsplit("/realtime", 1)[0]
        for key, path in mapping.items():
            mapping[key] = root + path[len(here):]
from fer_live.commands.app import main
sys.exit(main())
"""


def run_once(root: Path, out: Path) -> tuple[float, float]:
    """One run of the CLI from ``root``: (wall seconds, user CPU seconds of the child)."""
    args = ["-s", str(CLIP), "--jsonl", str(out), "--headless", "--max-frames", "1"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(root), *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - start
    user = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - before
    if done.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        raise SystemExit(f"error: the run from {root} failed:\n{done.stderr[-2000:]}")
    return wall, user


def _describe(root: Path) -> str:
    """The checkout's commit, with ``+changes`` when its tracked files differ from it."""
    git = ["git", "-C", str(root)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "diff", "--quiet", "HEAD"], capture_output=True).returncode
    return head.stdout.strip() + ("+changes" if dirty else "")


def measure(roots: list[Path], runs: int) -> dict[str, dict[str, Any]]:
    """Median wall and user seconds per checkout, the checkouts run in turns."""
    walls: dict[Path, list[float]] = {r: [] for r in roots}
    users: dict[Path, list[float]] = {r: [] for r in roots}
    with tempfile.TemporaryDirectory(prefix="fer-startup-") as tmp:
        for round_ in range(runs + 1):
            for root in roots:
                wall, user = run_once(root, Path(tmp) / "out.jsonl")
                if round_:  # the first round warms the file cache and numba's kernel cache
                    walls[root].append(wall)
                    users[root].append(user)
            print(f"round {round_}/{runs}", file=sys.stderr)
    first = roots[0]
    return {
        str(root): {
            "commit": _describe(root),
            "wall_s": statistics.median(walls[root]),
            "user_s": statistics.median(users[root]),
            "wall_ratio_to_first": statistics.median(walls[root]) / statistics.median(walls[first]),
            "walls_s": [round(w, 3) for w in walls[root]],
            "users_s": [round(u, 3) for u in users[root]],
        }
        for root in roots
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkout",
        action="append",
        type=Path,
        required=True,
        help="a fer-live source tree (repeat; the first is the reference)",
    )
    parser.add_argument("-n", "--runs", type=int, default=7, help="measured runs per checkout")
    parser.add_argument("--note", default="", help="the machine's load, for the record")
    parser.add_argument("--out", type=Path, default=RESULTS / "startup.json")
    args = parser.parse_args()
    roots = [c.resolve() for c in args.checkout]
    results = measure(roots, args.runs)
    for root, row in results.items():
        print(f"{root}: median {row['wall_s']:.2f} s wall, {row['user_s']:.2f} s user "
              f"({row['wall_ratio_to_first']:.2f}x the first)")  # fmt: skip
    record = {
        "command": "fer-live -s examples/data/single_face.mp4 --jsonl OUT --headless "
        "--max-frames 1",
        "runs": args.runs,
        "machine": f"{platform.node()} {os.cpu_count()} cores",
        "load_average_at_end": os.getloadavg(),
        "note": args.note,
        "checkouts": results,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
