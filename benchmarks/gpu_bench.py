"""GPU benchmark of the classifier backends, saved as JSON with the device and versions.

Rows (latency p50/p90 per call, images per second), per batch size:

* ``ort_cpu``: ONNX Runtime on the CPU, through the backend interface.
* ``torch_eager_fp32`` / ``torch_eager_fp16``: the TorchScript model on device tensors.
* ``cuda_graph_bare``: the fp16 channels_last model replayed as a CUDA graph on device tensors.
* ``cuda_backend``: the CUDA torch backend through the backend interface (host float32 arrays
  in, softmax probabilities out): what the pipeline gets.
* ``tensorrt_backend``: the TensorRT backend, the same way, where an engine runs on this GPU.

Plus ``ratio_backend_to_bare_graph_b64`` (cuda_backend / cuda_graph_bare throughput at batch
64) and ResNet-18 at 112 px, batch 1 (random weights; speed only). On a machine without CUDA
only the CPU rows run and the GPU rows are listed under ``skipped`` with the reason.

Usage:
    python benchmarks/gpu_bench.py                 # full run (GPU machine)
    python benchmarks/gpu_bench.py --quick         # tiny settings (smoke test on a CPU)
    python benchmarks/gpu_bench.py --out r.json    # where the JSON goes
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fer_live.errors import FerLiveError  # noqa: E402
from fer_live.infer.backends import CudaTorchBackend, OnnxBackend, TensorRTBackend  # noqa: E402
from fer_live.infer.backends.base import InferenceBackend  # noqa: E402
from fer_live.numeric import softmax  # noqa: E402

FULL_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
QUICK_BATCHES = (1, 8)
RATIO_BATCH = 64


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "weights/fer_default.onnx")
    parser.add_argument("--batches", default=None, help="comma list (default 1..256)")
    parser.add_argument("--iters", type=int, default=200, help="timed calls per row")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--cpu-iters", type=int, default=20, help="timed calls per CPU row")
    parser.add_argument("--resnet-channels", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke test")
    parser.add_argument("--out", type=Path, default=None, help="JSON path")
    args = parser.parse_args(argv)
    if args.quick:
        args.iters, args.warmup, args.cpu_iters = 3, 1, 3
    default = QUICK_BATCHES if args.quick else FULL_BATCHES
    args.batches = tuple(int(b) for b in args.batches.split(",")) if args.batches else default
    return args


def time_calls(run: Callable[[], Any], sync: Callable[[], None], warmup: int, iters: int):
    """p50/p90/mean milliseconds of ``run(); sync()`` over ``iters`` calls after ``warmup``."""
    for _ in range(warmup):
        run()
    sync()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        run()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    p50, p90 = np.percentile(times, [50, 90])
    return {"p50_ms": float(p50), "p90_ms": float(p90), "mean_ms": float(np.mean(times))}


def make_row(name: str, batch: int, stats: dict[str, float]) -> dict[str, Any]:
    return {"backend": name, "batch": batch, **stats, "img_per_s": batch / stats["p50_ms"] * 1e3}


def backend_rows(name: str, backend: InferenceBackend, batches, warmup, iters):
    """Host float32 arrays in, softmax probabilities out: the pipeline's view of a backend."""
    rows = []
    rng = np.random.default_rng(0)
    for batch in batches:
        pixels = rng.normal(size=(batch, *backend.input_shape)).astype(np.float32)
        call = lambda p=pixels: softmax(backend.infer(p).logits)  # noqa: E731
        stats = time_calls(call, _no_sync, warmup, iters)
        rows.append(make_row(name, batch, stats))
    return rows


def _no_sync() -> None:
    return None


def load_script(torch: Any, path: Path, half: bool) -> Any:
    module = torch.jit.load(str(path), map_location="cuda").eval()
    if half:
        module.half()
    return module.to(memory_format=torch.channels_last)


def device_input(torch: Any, batch: int, shape: Sequence[int], half: bool) -> Any:
    x = torch.randn((batch, *shape), device="cuda").to(memory_format=torch.channels_last)
    return x.half() if half else x


def eager_rows(torch, path, shape, batches, warmup, iters, half: bool):
    module = load_script(torch, path, half)
    name = "torch_eager_fp16" if half else "torch_eager_fp32"
    rows = []
    with torch.inference_mode(), torch.jit.optimized_execution(False):
        for batch in batches:
            x = device_input(torch, batch, shape, half)
            stats = time_calls(lambda x=x: module(x), torch.cuda.synchronize, warmup, iters)
            rows.append(make_row(name, batch, stats))
    return rows


def capture_graph(torch: Any, module: Any, x: Any) -> Any:
    """The module on ``x`` (device, fp16 channels_last) as a replayable CUDA graph."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.inference_mode(), torch.jit.optimized_execution(False):
        with torch.cuda.stream(stream):
            for _ in range(3):
                module(x)
        stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=stream):
            module(x)
    return graph


def graph_rows(torch, path, shape, batches, warmup, iters, name="cuda_graph_bare"):
    module = load_script(torch, path, half=True)
    rows = []
    for batch in batches:
        graph = capture_graph(torch, module, device_input(torch, batch, shape, half=True))
        stats = time_calls(graph.replay, torch.cuda.synchronize, warmup, iters)
        rows.append(make_row(name, batch, stats))
    return rows


def tensorrt_rows(model: Path, batches, warmup, iters, skipped: dict[str, str]):
    from fer_live.infer.backends.trt import runs_here
    from fer_live.infer.engine.compile import compile_engine

    ok, why = runs_here()
    if not ok:
        skipped["tensorrt_backend"] = why
        return []
    with tempfile.TemporaryDirectory() as cache:
        result = compile_engine(model, "fp16", batches, cache_dir=Path(cache))
        with TensorRTBackend(result.path) as backend:
            return backend_rows("tensorrt_backend", backend, batches, warmup, iters)


def gpu_rows(args: argparse.Namespace, torch: Any, skipped: dict[str, str]) -> list[dict]:
    script = args.model.with_suffix(".pt")
    with CudaTorchBackend(script, sizes=args.batches) as backend:
        shape = backend.input_shape
        rows = backend_rows("cuda_backend", backend, args.batches, args.warmup, args.iters)
    timing = (args.batches, args.warmup, args.iters)
    rows += eager_rows(torch, script, shape, *timing, half=False)
    rows += eager_rows(torch, script, shape, *timing, half=True)
    rows += graph_rows(torch, script, shape, *timing)
    try:
        rows += tensorrt_rows(args.model, *timing, skipped)
    except FerLiveError as exc:
        skipped["tensorrt_backend"] = str(exc)
    return rows


def resnet18_rows(args: argparse.Namespace, torch: Any) -> list[dict]:
    """ResNet-18 at 112 px, batch 1: bare CUDA graph, and through the CUDA backend."""
    from fer_live.infer.card import ModelCard
    from fer_live.trainer.models.registry import create_model

    channels = args.resnet_channels
    net = create_model("resnet18", num_classes=8, in_chans=channels, input_size=112).eval()
    card = ModelCard(
        name="resnet18_112_random", labels=tuple(f"c{i}" for i in range(8)), input_size=112,
        channels=channels, mean=(0.5,) * channels, std=(0.5,) * channels, outputs=("logits",),
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "resnet18_112.pt"
        example = torch.zeros(1, channels, 112, 112)
        traced = _trace(torch, net, example)
        traced.save(str(path), _extra_files={"card.json": card.to_json()})
        timing = ((1,), args.warmup, args.iters)
        shape = (channels, 112, 112)
        rows = graph_rows(torch, path, shape, *timing, name="resnet18_112_graph_bare")
        with CudaTorchBackend(path, sizes=(1,)) as backend:
            rows += backend_rows("resnet18_112_cuda_backend", backend, *timing)
    return rows


def _trace(torch: Any, net: Any, example: Any) -> Any:
    class LogitsOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: Any) -> Any:
            return self.net(x)[0]

    with torch.no_grad():
        return torch.jit.trace(LogitsOnly().eval(), example)


def environment(torch: Any | None) -> dict[str, Any]:
    """Device, driver and library versions for the result file."""
    env: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("numpy", "onnxruntime", "onnx", "torch", "tensorrt", "tensorrt-rtx-cu13-libs"):
        try:
            env[dist] = md.version(dist)
        except md.PackageNotFoundError:
            env[dist] = None
    try:
        from fer_live.infer.engine.trt_lib import import_tensorrt

        env["tensorrt_lib"] = import_tensorrt().label
    except FerLiveError:
        env["tensorrt_lib"] = None
    if torch is not None:
        props = torch.cuda.get_device_properties(0)
        env.update(
            gpu=props.name, compute_capability=f"{props.major}.{props.minor}",
            gpu_memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(), driver=_driver(),
        )  # fmt: skip
    return env


def _driver() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


def cuda_torch() -> Any | None:
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def ratio(rows: list[dict], batch: int) -> float | None:
    by_name = {(r["backend"], r["batch"]): r["img_per_s"] for r in rows}
    backend, bare = by_name.get(("cuda_backend", batch)), by_name.get(("cuda_graph_bare", batch))
    return None if backend is None or bare is None else backend / bare


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch = cuda_torch()
    skipped: dict[str, str] = {}
    with OnnxBackend(args.model) as backend:
        rows = backend_rows("ort_cpu", backend, args.batches, 1, args.cpu_iters)
    if torch is None:
        gpu_names = ("cuda_backend", "torch_eager_fp32", "torch_eager_fp16", "cuda_graph_bare")
        for name in (*gpu_names, "tensorrt_backend", "resnet18_112"):
            skipped[name] = "no CUDA GPU (torch missing or torch.cuda.is_available() is False)"
    else:
        rows += gpu_rows(args, torch, skipped)
        rows += resnet18_rows(args, torch)
    return {
        "benchmark": "gpu_bench",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "model": str(args.model),
        "settings": {"batches": list(args.batches), "iters": args.iters, "warmup": args.warmup,
                     "cpu_iters": args.cpu_iters, "resnet_channels": args.resnet_channels},
        "environment": environment(torch),
        "rows": rows,
        f"ratio_backend_to_bare_graph_b{RATIO_BATCH}": ratio(rows, RATIO_BATCH),
        "skipped": skipped,
    }  # fmt: skip


def print_table(result: dict[str, Any]) -> None:
    print(f"{'backend':28s} {'batch':>5s} {'p50 ms':>9s} {'p90 ms':>9s} {'img/s':>10s}")
    for row in result["rows"]:
        print(
            f"{row['backend']:28s} {row['batch']:5d} {row['p50_ms']:9.3f} {row['p90_ms']:9.3f} "
            f"{row['img_per_s']:10.0f}"
        )
    for name, why in result["skipped"].items():
        print(f"skipped {name}: {why}")
    key = f"ratio_backend_to_bare_graph_b{RATIO_BATCH}"
    if result[key] is not None:
        print(f"{key}: {result[key]:.3f}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    print_table(result)
    gpu = str(result["environment"].get("gpu") or "cpu").replace(" ", "_")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or ROOT / f"benchmarks/results/gpu_bench_{gpu}_{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
