"""Job functions for worker tests. The worker subprocess imports them by dotted path, like real jobs."""

from __future__ import annotations

import time

from jobs.progress import tracked_job


def count_slowly(job_id: int, seconds: float) -> dict:
    """Report progress every 0.2 s for `seconds`; long enough to kill or cancel mid-way."""
    steps = max(1, int(seconds / 0.2))
    with tracked_job(job_id) as progress:
        for step in range(steps):
            progress.update(step / steps, f"Step {step + 1} of {steps}")
            time.sleep(0.2)
        return progress.finish({"steps": steps})


def sleep_silently(job_id: int, seconds: float) -> None:
    """Work without progress updates: only the heartbeat thread shows it is alive."""
    with tracked_job(job_id):
        time.sleep(seconds)


def explode(job_id: int) -> None:
    with tracked_job(job_id) as progress:
        progress.update(0.5, "About to fail")
        raise ValueError("the tokenizer has no chat template")
