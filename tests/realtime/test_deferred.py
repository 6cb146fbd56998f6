"""Deferred imports: stand-ins during the block, the real module on first use, nothing left over."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from fer_live.detect.deferred import deferred


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_a_deferred_module_is_imported_on_first_attribute_read():
    # xml.dom.minidom: a package and module the child process has not imported.
    out = _run("""
        import sys
        from fer_live.detect.deferred import deferred
        with deferred("xml.dom.minidom"):
            import xml.dom.minidom as minidom
        print("xml.dom" in sys.modules, "xml.dom.minidom" in sys.modules)
        print(minidom.parseString("<a/>").documentElement.tagName, "xml.dom.minidom" in sys.modules)
    """)
    assert out.splitlines() == ["False False", "a True"]


def test_imported_modules_are_left_alone():
    before = sys.modules["json"]
    with deferred("json"):
        import json
    assert json is before and sys.modules["json"] is before


def test_using_a_stand_in_inside_the_block_raises_import_error():
    with pytest.raises(ImportError, match="deferred"), deferred("fer_live_no_such_module"):
        import fer_live_no_such_module  # type: ignore[import-not-found]

        fer_live_no_such_module.anything  # noqa: B018
    assert "fer_live_no_such_module" not in sys.modules


def test_mediapipe_loads_without_matplotlib_or_sounddevice():
    out = _run("""
        import sys
        from fer_live.detect.mediapipe import import_mediapipe
        import_mediapipe()
        from mediapipe.tasks.python.vision import drawing_utils
        names = ("matplotlib", "matplotlib.pyplot", "sounddevice")
        print(sorted(m for m in names if m in sys.modules))
        print(callable(drawing_utils.plt.figure), "matplotlib.pyplot" in sys.modules)
    """)
    assert out.splitlines() == ["[]", "True True"]
