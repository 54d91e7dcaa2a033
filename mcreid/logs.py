"""One logging setup for every command line."""

from __future__ import annotations

import logging


def setup_logging(verbose: int = 0) -> None:
    """Log to stderr at INFO (or DEBUG with ``verbose``), once per process."""
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
