"""mlrun's own log lines on stderr, set up only when a command runs (`--version` skips the
`logging` import)."""

from __future__ import annotations

import logging
import sys


class _StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is at the time (tests and embedders swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        sys.stderr.write(f"mlrun: {level}{record.getMessage()}\n")
        sys.stderr.flush()


def configure_logging() -> None:
    logger = logging.getLogger("mlrun_cli")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())
    logger.setLevel(logging.INFO)
