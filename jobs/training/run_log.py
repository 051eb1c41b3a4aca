"""The run's log file: what the run page tails.

Each job of a run appends to `<run dir>/run.log`: its own stage lines, every logged training step,
and the warnings and info lines of transformers, TRL, peft and the exporter, which would otherwise
go only to the worker's terminal, where the user cannot see them.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LIBRARY_LOGGERS = ("transformers", "trl", "peft", "quantize", "jobs", "py.warnings")
# Deprecation notices between the libraries themselves (TRL and peft still use names transformers 5
# renamed): nothing the user can act on, and they would top every run's log.
LIBRARY_INTERNAL_WARNINGS = (
    r"`is_gradient_checkpointing` is deprecated",
    r"`gradient_checkpointing` is deprecated",
)
OWN_LOGGERS = ("jobs", "quantize")  # info lines from these; warnings and errors from the libraries
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def run_logging(path: Path) -> Iterator[logging.Logger]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    handler.setLevel(logging.INFO)
    touched = []
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        touched.append((logger, logger.level))
        # transformers' own logger does not propagate to the root; attach to each one directly.
        logger.addHandler(handler)
        if name in OWN_LOGGERS and logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        with warnings.catch_warnings():
            for message in LIBRARY_INTERNAL_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=FutureWarning)
            yield logging.getLogger("jobs.run")
    finally:
        logging.captureWarnings(False)
        for logger, level in touched:
            logger.removeHandler(handler)
            logger.setLevel(level)
        handler.close()
