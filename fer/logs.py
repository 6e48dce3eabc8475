"""Logging setup and the error handling shared by every entry point."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Callable

from fer.errors import FerError

logger = logging.getLogger("fer")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(log_file: str | Path | None = None, level: int = logging.INFO) -> None:
    """Send fer's log records to stderr and, when given, to ``log_file``."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w", encoding="utf-8"))
    logging.basicConfig(level=level, format=LOG_FORMAT, datefmt="%H:%M:%S", handlers=handlers, force=True)
    # Third-party debug chatter (matplotlib font scans, PIL plugins) hides fer's own lines.
    for noisy in ("matplotlib", "PIL", "fontTools"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def exit_on_user_error(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``function``; on a FerError log its message alone and exit with status 1.

    User errors carry a complete message (the file or key, the bad value and
    the fix), so a traceback would only bury it. Other exceptions are bugs
    and keep their traceback.
    """
    try:
        return function(*args, **kwargs)
    except FerError as error:
        logger.error("%s", error)
        sys.exit(1)


def run_snakemake_script(main: Callable[[Any], Any], snakemake: Any) -> None:
    """Run a Snakemake script's ``main(snakemake)`` with logging to the rule's log file."""
    log_file = snakemake.log[0] if len(snakemake.log) else None
    setup_logging(log_file)
    try:
        exit_on_user_error(main, snakemake)
    except Exception:
        logger.exception("rule %s failed", snakemake.rule)
        raise
