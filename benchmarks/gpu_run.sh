#!/usr/bin/env bash
# The prepared GPU check of issue 7, for the device machine (repo root as cwd; python3 there is
# 3.12 with torch cu130, onnx, onnxruntime CPU, opencv-headless, typer, rich; no mediapipe).
#
# It runs: the GPU tests (CUDA torch backend parity; TensorRT parity where engines run, else
# skipped with the reason), benchmarks/gpu_bench.py, and `fer-live compile` with TensorRT-RTX
# (build + inspect for this GPU, second run from the cache, a changed model rebuilds, and
# ahead-of-time builds for sm89 and sm120). Results go under "$OUT" (at most 8 files):
#   gpu_bench.json  compile.json  pytest_gpu.txt  run.log  nvidia-smi.txt
#
# TensorRT-RTX (tensorrt-rtx-cu13-libs + tensorrt-rtx-cu13-bindings 1.7.1.116, cp312) travels
# as one unpacked site-packages tree, xz-compressed and split in two parts < 34 MB, in the
# git-ignored folder .cache/trt-wheels/ (made here by `bash benchmarks/gpu_run.sh prepare`):
#   .cache/trt-wheels/trt-rtx-1.7.1.116-cp312-site.tar.xz.part-aa
#   .cache/trt-wheels/trt-rtx-1.7.1.116-cp312-site.tar.xz.part-ab
# The 64 MiB limit per call fits one part, so it takes two calls, the second at once:
#   1) run(command="bash benchmarks/gpu_run.sh stage",
#          carry=[".cache/trt-wheels/trt-rtx-1.7.1.116-cp312-site.tar.xz.part-aa"], timeout_s=120)
#   2) run(command="bash benchmarks/gpu_run.sh",
#          carry=[".cache/trt-wheels/trt-rtx-1.7.1.116-cp312-site.tar.xz.part-ab"], timeout_s=540)
# Without the parts, step 2 alone runs everything but TensorRT (reported as skipped).
set -uo pipefail

ARCHIVE=trt-rtx-1.7.1.116-cp312-site.tar.xz
PARTS_HERE=.cache/trt-wheels
STAGE=/tmp/fer-live-trt
SITE=/tmp/fer-live-trt-site
OUT=${OUT:-/tmp/fer-live-out}
export PYTHONUNBUFFERED=1

prepare() {  # on the development machine: download, unpack, compress, split
  local work; work=$(mktemp -d)
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 -d "$work" \
    tensorrt-rtx-cu13-libs==1.7.1.116 tensorrt-rtx-cu13-bindings==1.7.1.116 || return 1
  mkdir -p "$work/site" "$PARTS_HERE"
  for wheel in "$work"/*.whl; do unzip -q -o "$wheel" -d "$work/site"; done
  tar -C "$work/site" -cf - . | xz -9 -T0 > "$work/$ARCHIVE"
  split -b 34M "$work/$ARCHIVE" "$PARTS_HERE/$ARCHIVE.part-"
  ls -l "$PARTS_HERE"; rm -rf "$work"
}

stage() {  # copy whatever parts travelled with this call to /tmp (kept while the machine is warm)
  mkdir -p "$STAGE"
  cp -v "$PARTS_HERE"/"$ARCHIVE".part-* "$STAGE"/ 2>/dev/null || echo "no TensorRT-RTX parts carried"
}

install_trt() {
  stage
  if [ ! -f "$STAGE/$ARCHIVE.part-aa" ] || [ ! -f "$STAGE/$ARCHIVE.part-ab" ]; then
    echo "TensorRT-RTX parts missing: TensorRT rows will be skipped"; return 0
  fi
  mkdir -p "$SITE"
  if cat "$STAGE/$ARCHIVE".part-* | xz -d | tar -C "$SITE" -xf -; then
    export PYTHONPATH="$SITE:${PYTHONPATH:-}"
    python3 -c "import tensorrt_rtx_bindings as t; print('TensorRT-RTX', t.__version__)"
  else
    echo "TensorRT-RTX archive is broken: TensorRT rows will be skipped"
  fi
}

fer_live() {  # the fer-live CLI without installing the package
  timeout 60 python3 -c 'import sys; from realtime.cli import main; sys.exit(main())' "$@"
}

compile_checks() {
  export FER_LIVE_CACHE=/tmp/fer-live-engines
  local reports=/tmp/fer-live-compile; rm -rf "$reports"; mkdir -p "$reports"
  fer_live compile --inspect --json "$reports/first.json"
  fer_live compile --inspect --json "$reports/second.json"
  python3 - <<'PY'
import onnx
model = onnx.load("weights/fer_default.onnx")
onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, "note": "changed"})
onnx.save(model, "/tmp/fer_default_changed.onnx")
PY
  fer_live compile /tmp/fer_default_changed.onnx --json "$reports/changed.json"
  fer_live compile --compute-capability 8.9 --inspect --json "$reports/sm89.json"
  fer_live compile --compute-capability 12.0 --precision fp32 --json "$reports/sm120_fp32.json"
  python3 - "$reports" "$OUT/compile.json" <<'PY'
import json, pathlib, sys
folder, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
runs = {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
for run in runs.values():  # keep the file small: layer lists become counts
    for key in ("layers", "engine_layers"):
        if key in run:
            run[f"{key}_count"] = len(run.pop(key))
first, second, changed = (runs.get(name, {}) for name in ("first", "second", "changed"))
checks = {
    "first_built": first.get("built"),
    "second_loaded_from_cache": second.get("built") is False and second.get("key") == first.get("key"),
    "changed_model_rebuilt": changed.get("built") is True and changed.get("key") != first.get("key"),
}
out.write_text(json.dumps({"checks": checks, "runs": runs}, indent=2) + "\n")
print(json.dumps(checks))
PY
}

main() {
  mkdir -p "$OUT"
  nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
  install_trt
  echo "== GPU tests"
  timeout 200 python3 -m pytest tests/realtime/test_gpu.py tests/realtime/test_compile.py \
    tests/realtime/test_backend_select.py -q -rs -p no:cacheprovider 2>&1 | tee "$OUT/pytest_gpu.txt"
  echo "== gpu_bench"
  timeout 240 python3 benchmarks/gpu_bench.py --out "$OUT/gpu_bench.json" ${GPU_BENCH_ARGS:-}
  echo "== fer-live compile"
  compile_checks
}

case "${1:-run}" in
  prepare) prepare ;;
  stage) stage ;;
  run) mkdir -p "$OUT"; main 2>&1 | tee "$OUT/run.log" ;;
  *) echo "usage: $0 [prepare|stage|run]"; exit 2 ;;
esac
