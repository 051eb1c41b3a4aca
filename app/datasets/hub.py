"""Push a dataset to the Hugging Face Hub as a dataset repo, or import one from it: jobs on the default queue.

The repo gets the rows as `data/train.jsonl` and `data/test.jsonl` (the held-out split) and a card whose
YAML names those splits, so `datasets.load_dataset("owner/name")` loads them as they are split here.
"""

from __future__ import annotations

from flask_login import current_user

from app.datasets.services import DatasetError, DatasetProblem
from app.extensions import db
from app.models import FINAL_JOB_STATES, BackgroundJob, Dataset, DatasetStatus

PUSH_TIMEOUT_S = 3600


def push_dataset(dataset: Dataset, repo_id: str, private: bool) -> BackgroundJob:
    """Queue the push; the outcome lands on `dataset.hub_push`. Raises DatasetError when it cannot start."""
    from app.queueing import enqueue_job

    if dataset.status != DatasetStatus.READY.value or not dataset.sample_count:
        raise _refused("Only a ready dataset with rows can be pushed.")
    if not current_user.has_hub_token:
        raise _refused("Save a Hugging Face token with write access in your account settings first.")
    if push_under_way(dataset):
        raise _refused("A push of this dataset is already under way.")
    job = enqueue_job(
        owner_id=dataset.owner_id,
        kind="dataset_push",
        title=f"Push dataset {dataset.name} to {repo_id}",
        func="jobs.dataset_push.run",
        args=(dataset.id, repo_id, private),
        timeout=PUSH_TIMEOUT_S,
    )
    dataset.hub_push = {"repo": repo_id, "pushing": True, "job": job.id}
    db.session.commit()
    return job


def _refused(message: str) -> DatasetError:
    return DatasetError([DatasetProblem(message)])


def push_under_way(dataset: Dataset) -> bool:
    """A push was queued and its job has not ended (a job that died without settling does not count)."""
    state = dataset.hub_push or {}
    if not state.get("pushing"):
        return False
    job = db.session.get(BackgroundJob, state.get("job")) if isinstance(state.get("job"), int) else None
    return job is not None and job.status not in FINAL_JOB_STATES


IMPORT_TIMEOUT_S = 3600


def start_hub_import(repo_id: str, path: str, revision: str, name: str) -> Dataset:
    """A placeholder row (status generating) and a job on the default queue that fills it from the Hub
    (jobs/dataset_import.py); public repos need no token, private and gated ones the user's."""
    from app.datasets.services import unique_name
    from app.queueing import enqueue_for

    row = Dataset(
        owner_id=current_user.id,
        name=unique_name(name or repo_id.split("/", 1)[1]),
        kind="sft",  # until the files say otherwise
        source="hub",
        options={"repo": repo_id, "path": path, "revision": revision or "main"},
        status=DatasetStatus.GENERATING.value,
    )
    db.session.add(row)
    db.session.commit()
    enqueue_for(
        row,
        owner_id=current_user.id,
        kind="dataset_import",
        title=f"Import dataset {repo_id} from the Hub",
        func="jobs.dataset_import.run",
        args=(row.id,),
        timeout=IMPORT_TIMEOUT_S,
    )
    return row
