"""Push a dataset to the Hugging Face Hub as a dataset repo, or import one from it: jobs on the default queue.

The repo gets the rows as `data/train.jsonl` and `data/test.jsonl` (the held-out split) and a card whose
YAML names those splits, so `datasets.load_dataset("owner/name")` loads them as they are split here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_login import current_user

from app.datasets.services import DatasetError, DatasetProblem
from app.extensions import db
from app.models import FINAL_JOB_STATES, BackgroundJob, Dataset, DatasetStatus, utcnow
from app.row_lock import lock_row

PUSH_TIMEOUT_S = 3600
CLAIM_EXPIRY = timedelta(minutes=2)  # far longer than queueing a job takes


def push_dataset(dataset: Dataset, repo_id: str, private: bool) -> BackgroundJob:
    """Queue the push; the outcome lands on `dataset.hub_push`. Raises DatasetError when it cannot start.

    The push is claimed on the row, under its lock, before the job is queued: of two pushes at once (two
    tabs) the second sees the first's claim and is refused, rather than both queueing a job.
    """
    from app.queueing import enqueue_job

    if dataset.status != DatasetStatus.READY.value or not dataset.sample_count:
        raise _refused("Only a ready dataset with rows can be pushed.")
    if not current_user.has_hub_token:
        raise _refused("Save a Hugging Face token with write access in your account settings first.")
    lock_row(Dataset, dataset.id)
    db.session.refresh(dataset)
    if push_under_way(dataset):
        db.session.rollback()
        raise _refused("A push of this dataset is already under way.")
    before = dataset.hub_push
    claim = {"repo": repo_id, "pushing": True, "claimed": utcnow().isoformat()}
    dataset.hub_push = claim
    db.session.commit()
    try:
        job = enqueue_job(
            owner_id=dataset.owner_id,
            kind="dataset_push",
            title=f"Push dataset {dataset.name} to {repo_id}",
            func="jobs.dataset_push.run",
            args=(dataset.id, repo_id, private),
            timeout=PUSH_TIMEOUT_S,
        )
    except Exception:
        db.session.rollback()
        _replace_claim(dataset, claim, before)
        raise
    _replace_claim(dataset, claim, {**claim, "job": job.id})
    return job


def _replace_claim(dataset: Dataset, claim: dict, state: dict | None) -> None:
    """`state` on the row while it still holds `claim` (a quick job may have recorded its outcome)."""
    lock_row(Dataset, dataset.id)
    db.session.refresh(dataset)
    if dataset.hub_push == claim:
        dataset.hub_push = state
    db.session.commit()


def _refused(message: str) -> DatasetError:
    return DatasetError([DatasetProblem(message)])


def push_under_way(dataset: Dataset) -> bool:
    """A push was queued and its job has not ended (a job that died without settling does not count), or
    one is being queued right now (claimed, no job yet; a claim its request never finished expires)."""
    state = dataset.hub_push or {}
    if not state.get("pushing"):
        return False
    if state.get("job") is None:
        return _recent(state.get("claimed"))
    job = db.session.get(BackgroundJob, state.get("job")) if isinstance(state.get("job"), int) else None
    return job is not None and job.status not in FINAL_JOB_STATES


def _recent(claimed: object) -> bool:
    try:
        return utcnow() - datetime.fromisoformat(str(claimed)) < CLAIM_EXPIRY
    except ValueError:
        return False


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
