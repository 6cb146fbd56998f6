"""Start-up: a run of the CLI imports only what its path needs (a guard, not a timing).

Users run ``fer-live -s CLIP`` once per video, so every import on that path is paid per clip.
These modules cost from 0.1 to several seconds and are needed only elsewhere: the GPU backends
(torch, TensorRT, the engine cache), plotting, batch/cluster and table tools, scipy's solvers
(the tracker needs them only when two tracks meet two faces) and MediaPipe's unused helpers.
Measured figures: ``benchmarks/startup.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "examples" / "data" / "single_face.mp4"
NEVER_ON_CPU = ("torch", "tensorrt", "fer_live.infer.engine.compile", "matplotlib", "ray", "pandas")
# Loaded when the run needs them, not by the import: the decoder and the stages' libraries.
NOT_AT_IMPORT = ("av", "mediapipe", "onnxruntime", "numba", "scipy")
NOT_FOR_ONE_FACE = ("sounddevice", "scipy.optimize", "scipy.linalg")


def _imported_after(code: str, unwanted: tuple[str, ...]) -> list[str]:
    """The modules of ``unwanted`` that a fresh process has after running ``code``."""
    probe = textwrap.dedent(code) + textwrap.dedent(f"""
        import json, sys
        print(json.dumps([m for m in {unwanted!r} if m in sys.modules]))
    """)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_cli_loads_no_heavy_module():
    assert _imported_after("import fer_live.commands.app", NEVER_ON_CPU + NOT_AT_IMPORT) == []


def test_a_video_run_on_cpu_loads_no_module_of_another_path(tmp_path):
    out = tmp_path / "out.jsonl"
    code = f"""
        import sys
        from fer_live.commands.app import main
        sys.argv = ["fer-live", "-s", {str(CLIP)!r}, "--jsonl", {str(out)!r}, "--headless",
                    "--max-frames", "3", "--device", "cpu"]
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, exc.code
    """
    assert _imported_after(code, NEVER_ON_CPU + NOT_FOR_ONE_FACE) == []
    assert len(out.read_text().splitlines()) >= 1  # the run did detect, infer and record a face
