"""The run's log file: the job's lines and the libraries' warnings land in it; the libraries' notices to
each other about renamed arguments do not."""

from __future__ import annotations

import logging
import warnings

from jobs.training.run_log import run_logging


def test_job_lines_and_library_warnings_are_kept_and_internal_deprecations_dropped(tmp_path):
    path = tmp_path / "run" / "run.log"
    with run_logging(path) as log:
        log.info("Starting run 1")
        logging.getLogger("transformers.trainer").warning("The tokenizer has no pad token")
        warnings.warn("Loss is nan at step 3", UserWarning, stacklevel=1)
        deprecation = "`is_gradient_checkpointing` is deprecated and will be removed in v6."
        warnings.warn(deprecation, FutureWarning, stacklevel=1)
        logging.getLogger("unrelated").warning("not the run's business")
    text = path.read_text()
    assert "INFO jobs.run: Starting run 1" in text
    assert "The tokenizer has no pad token" in text and "Loss is nan at step 3" in text
    assert "is_gradient_checkpointing" not in text and "not the run's business" not in text
    logging.getLogger("jobs.run").info("after the run")  # the handler is gone afterwards
    assert "after the run" not in path.read_text()
