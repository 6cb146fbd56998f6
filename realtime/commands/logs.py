"""Console logging for the ``fer-live`` commands (rich, on stderr).

Its own module so that every command module (``app``, ``compile``) can set logging up
without importing ``app``, which imports them.
"""

from __future__ import annotations

import logging


def setup_logging(verbose: bool) -> None:
    """Log INFO (``verbose``) or WARNING and up to stderr through rich."""
    from rich.console import Console
    from rich.logging import RichHandler

    handler = RichHandler(console=Console(stderr=True), show_path=False, show_time=False)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[handler],
        force=True,
    )
