"""Whether a window can really open: a set DISPLAY may name a server that is gone.

OpenCV's Qt backend aborts the whole process (exit 134, Qt's message, outputs left empty) when
it cannot reach the display, so the parent cannot simply try: a child process opens a window
and the parent reads its exit code. The child starts while the source and model load, so the
check costs no start-up time on a normal desktop.
"""

from __future__ import annotations

import logging
import subprocess
import sys

logger = logging.getLogger(__name__)

_OPEN_A_WINDOW = (
    "import cv2; cv2.namedWindow('fer-live display check'); cv2.waitKey(1); "
    "cv2.destroyAllWindows(); cv2.waitKey(1)"
)


class WindowProbe:
    """Opens (and closes) a window in a child process; ``usable()`` waits for its answer.

    Args:
        timeout_s: A child that has not answered by then counts as "no window".
    """

    def __init__(self, timeout_s: float = 15.0) -> None:
        self.timeout_s = timeout_s
        self._child: subprocess.Popen[bytes] | None = None
        try:
            self._child = subprocess.Popen(
                [sys.executable, "-c", _OPEN_A_WINDOW],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            logger.info("cannot start the display check: %s", exc)

    def usable(self) -> bool:
        """True when the child opened a window and exited cleanly."""
        if self._child is None:
            return False
        try:
            return self._child.wait(timeout=self.timeout_s) == 0
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.wait()
            return False

    def close(self) -> None:
        """End the child if nobody waited for it (the run failed before the sinks opened)."""
        if self._child is not None and self._child.poll() is None:
            self._child.kill()
            self._child.wait()
