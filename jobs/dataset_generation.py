"""Generate a dataset from an OpenAPI spec in the background (large requests; small ones run inline).

The dataset row exists already (status `generating`, created by the web tier); this fills its file and
marks it ready, or marks it failed with the reason. Cancelling leaves no file behind.
"""

from __future__ import annotations

from typing import Any

from app.datasets.services import GenerationRequest, generate_rows, mark_generation_failed, store_rows
from app.extensions import db
from app.models import ApiSpec, Dataset, DatasetStatus
from jobs.progress import JobFailed, tracked_job


def run(job_id: int, dataset_id: int, spec_id: int) -> dict[str, Any] | None:
    try:
        with tracked_job(job_id) as progress:
            dataset = db.session.get(Dataset, dataset_id)
            spec = db.session.get(ApiSpec, spec_id)
            if dataset is None or spec is None or spec.owner_id != dataset.owner_id:
                raise JobFailed("The dataset or its spec was deleted before generation started.")
            request = GenerationRequest(**dataset.options)
            normalised, owner_id = spec.normalised, dataset.owner_id
            db.session.remove()

            def report(done: int, total: int) -> None:
                progress.update(0.9 * done / max(total, 1), f"Operation {done} of {total}")

            rows, message = generate_rows(normalised, request, progress=report)
            if not rows:
                raise JobFailed(message or "Nothing was generated.")
            progress.update(0.95, f"Writing {len(rows)} rows")
            dataset = db.session.get(Dataset, dataset_id)
            stored = store_rows(
                owner_id,
                dataset.name,
                dataset.kind,
                rows,
                source="generated",
                source_format="toolsmith",
                spec_id=spec_id,
                options=request.as_dict(),
                existing=dataset,
            )
            return progress.finish({"dataset_id": stored.id, "rows": stored.sample_count})
    finally:
        settle(dataset_id)


def settle(
    dataset_id: int, failure: str | None = None, stopped: str = "Generation stopped before it finished."
) -> None:
    """A dataset still `generating` when its job ends (generation or a Hub import) failed or was
    cancelled: say so (`failure`, else the job's error, else `stopped`), drop any file."""
    db.session.rollback()
    dataset = db.session.get(Dataset, dataset_id)
    if dataset is not None and dataset.status == DatasetStatus.GENERATING.value:
        from app.models import BackgroundJob

        job = db.session.get(BackgroundJob, dataset.job_id) if dataset.job_id else None
        mark_generation_failed(dataset, failure or (job.error if job and job.error else None) or stopped)
        db.session.commit()
    db.session.remove()
