"""Issue 12's method rows trained on the GPU machine, several runs at once, within a deadline.

Each row is ``fer-train methods train ... --device cuda`` with the full-scale protocol of
``benchmarks/results/methods.md`` (MobileNetV2 at 64 px from ImageNet, 18 epochs, batch 128);
names start with ``gpu_`` so the methods report marks them as GPU-trained. Small models leave
an H100/H200 mostly idle, so ``--parallel`` runs share it. Rows are started in the order below
(the GPU baseline's three seeds first: GPU rows are compared with them) until ``--start-by``
seconds have passed; a run still going at ``--stop-at`` is stopped and left out. Each finished
run is kept (``fer-train methods keep``); the kept folders and every run's log are packed into
one file, ``OUT/methods_runs.tar.gz``.

Usage (GPU machine, after ``gpu_data.py install``):
    python benchmarks/gpu_methods.py --out "$OUT" --parallel 8 --start-by 300 --stop-at 420
    python benchmarks/gpu_methods.py --list        # the queue, without running it
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FER_TRAIN = [sys.executable, "-c", "import sys; from fer_live.trainer.cli import main; main()"]
PROTOCOL = {"--epochs": "18", "--seed": "0"}  # unless a row (or --extra) sets its own
NOISY_METHODS = ("baseline", "ean", "ulc")

# (run name, method options); every run adds PROTOCOL, --device and --threads.
QUEUE: list[tuple[str, list[str]]] = [
    ("gpu_baseline_s0", ["--method", "baseline"]),
    ("gpu_baseline_s1", ["--method", "baseline", "--seed", "1"]),
    ("gpu_baseline_s2", ["--method", "baseline", "--seed", "2"]),
    ("gpu_gus_s0", ["--method", "gus"]),
    ("gpu_ean_pda_s0", ["--method", "ean", "--opt", "ifg=pda"]),
    ("gpu_ulcg_s0", ["--method", "ulc", "--opt", "relabel_agree=true"]),
    ("gpu_abaw_s0", ["--method", "abaw", "--opt", "weights=1,1,1,1,1,3,5,3"]),
    ("gpu_abaw_tempered_s0", ["--method", "abaw", "--opt", "weights=1,1,1,1,1,1.73,2.24,1.73"]),
    (
        "gpu_abaw_dft_s0",
        ["--method", "abaw", "--opt", "weights=1,1,1,1,1,3,5,3", "--opt", "dft=true"],
    ),  # fmt: skip
    ("gpu_scl_nocuem_s0", ["--method", "scl", "--opt", "cuem=false"]),
    ("gpu_scl_s0", ["--method", "scl", "--opt", "cuem_start=5"]),
    (
        "gpu_resnet18_112_s0",
        ["--method", "baseline", "--arch", "resnet18", "--input-size", "112", "--epochs", "40"],
    ),  # fmt: skip
    *[(f"gpu_{m}_n20_s0", ["--method", m, "--noise", "0.2"]) for m in NOISY_METHODS],
    ("gpu_mre_s0", ["--method", "mre"]),
    ("gpu_ean_s0", ["--method", "ean"]),
    ("gpu_ulc_s0", ["--method", "ulc"]),
    ("gpu_gus_mixed_s0", ["--method", "gus", "--loss", "recommended"]),
    *[
        (f"gpu_{m}_n{p}_s0", ["--method", m, "--noise", f"0.{p // 10}"])
        for p in (10, 30)
        for m in NOISY_METHODS
    ],  # fmt: skip
]
EMBEDDINGS = {"gpu_gus_mixed_s0"}  # correcting reads its embeddings


def command(name: str, options: list[str], args: argparse.Namespace) -> list[str]:
    given = [*options, *args.extra.split()]
    if args.au_cache and "ulc" in options:
        given += ["--opt", f"au_cache={args.au_cache}"]
    protocol = [part for flag, value in PROTOCOL.items() if flag not in given
                for part in (flag, value)]  # fmt: skip
    return [*FER_TRAIN, "methods", "train", "--name", name, *protocol, *given,
            "--device", args.device, "--threads", str(args.threads)]  # fmt: skip


def keep(name: str) -> bool:
    flags = ["--embeddings"] if name in EMBEDDINGS else []
    done = subprocess.run([*FER_TRAIN, "methods", "keep", name, *flags], cwd=ROOT, check=False)
    return done.returncode == 0


def run_queue(args: argparse.Namespace, logs: Path) -> dict[str, dict]:
    started = time.monotonic()
    waiting = [q for q in QUEUE if not args.only or q[0] in args.only]
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    status: dict[str, dict] = {}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    while waiting or running:
        elapsed = time.monotonic() - started
        while waiting and len(running) < args.parallel and elapsed < args.start_by:
            name, options = waiting.pop(0)
            cmd = command(name, options, args)
            log = (logs / f"{name}.log").open("w")
            running[name] = (subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=log, env=env),
                             time.monotonic())  # fmt: skip
            status[name] = {"command": " ".join(["fer-train", *cmd[3:]])}
            print(f"[{elapsed:6.1f}s] start {name}", flush=True)
        for name, (proc, begun) in list(running.items()):
            code = proc.poll()
            if code is None and elapsed < args.stop_at:
                continue
            if code is None:
                proc.kill()
                proc.wait()
            del running[name]
            wall = time.monotonic() - begun
            kept = code == 0 and keep(name)
            status[name].update(exit_code=code, wall_s=round(wall, 1), kept=kept)
            print(f"[{elapsed:6.1f}s] {name}: exit {code}, {wall:.0f} s, kept {kept}", flush=True)
        if elapsed >= args.start_by:
            for name, _ in waiting:
                status[name] = {"not_started": "deadline"}
            waiting = []
        time.sleep(1.0)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/fer-gpu-methods"), help="tar here")
    parser.add_argument("--logs", type=Path, default=Path("/tmp/fer-gpu-methods-logs"))
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads per run")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--start-by", type=float, default=300.0)
    parser.add_argument("--stop-at", type=float, default=420.0)
    parser.add_argument("--au-cache", default="", help="AU cache for the ULC-AG rows")
    parser.add_argument("--extra", default="", help="flags added to every run (smoke tests)")
    parser.add_argument("--only", nargs="*", default=[], help="run just these names")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    if args.list:
        for name, options in QUEUE:
            print(" ".join(command(name, options, args)[3:]))
        return 0
    logs = args.logs  # not under --out: the device tool brings back at most 8 files
    logs.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    status = run_queue(args, logs)
    (logs / "status.json").write_text(json.dumps(status, indent=2) + "\n")
    with tarfile.open(args.out / "methods_runs.tar.gz", "w:gz") as tar:
        tar.add(logs, arcname="logs")
        for name in status:
            kept = ROOT / "benchmarks/results/methods_runs" / name
            if kept.is_dir():
                tar.add(kept, arcname=f"methods_runs/{name}")
    print(json.dumps(status, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
