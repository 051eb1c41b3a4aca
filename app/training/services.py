"""Runs for the signed-in user: lint at submit, enqueue, cancel, resume, retry, push, reconcile, delete."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask_login import current_user

from app.configs.linter import LintReport
from app.configs.services import lint_for_user
from app.extensions import db
from app.models import BackgroundJob, Dataset, JobStatus, RunStage, TrainingConfig, TrainingRun, utcnow
from app.ownership import owned, owned_or_none
from app.queueing import EnqueueError, check_queue, enqueue_job, request_cancel
from app.training.files import ADAPTER_DIR, is_trained, last_checkpoint, registered_gguf_paths, run_dir

TRAIN_TIMEOUT_S = 24 * 3600
EXPORT_TIMEOUT_S = 4 * 3600
PUSH_TIMEOUT_S = 2 * 3600


class RunRefused(ValueError):
    def __init__(self, report: LintReport | None, message: str):
        super().__init__(message)
        self.report = report


def check_submit(config: TrainingConfig, dataset: Dataset) -> LintReport:
    """The saved config with the chosen dataset, linted as at submit (CUDA checked for QLoRA)."""
    raw = dict(config.config)
    raw["data"] = {**raw.get("data", {}), "dataset": dataset.name}
    return lint_for_user(raw, submitting=True)


def start_run(config: TrainingConfig, dataset: Dataset, name: str = "") -> TrainingRun:
    if dataset.status != "ready":
        raise RunRefused(None, "That dataset is not ready yet.")
    report = check_submit(config, dataset)
    if not report.ok:
        raise RunRefused(report, "The config has errors for this dataset.")
    run = TrainingRun(
        owner_id=current_user.id,
        name=(name.strip() or f"{config.name} on {dataset.name}")[:160],
        config_id=config.id,
        config=report.config.model_dump(mode="json"),
        dataset_id=dataset.id,
        dataset_name=dataset.name,
        stage=RunStage.QUEUED.value,
    )
    db.session.add(run)
    config.times_used += 1
    config.last_used_at = utcnow()
    db.session.commit()
    try:
        enqueue_run(run, resume=False)
    except EnqueueError:
        # A run that never reached the queue would wait for a worker forever.
        db.session.delete(run)
        config.times_used -= 1
        db.session.commit()
        raise
    return run


def enqueue_run(run: TrainingRun, resume: bool) -> None:
    job = enqueue_job(
        owner_id=run.owner_id,
        kind="training",
        title=f"Train {run.name}" + (" (resume)" if resume else ""),
        func="jobs.train.run",
        args=(run.id, resume),
        queue="train",
        timeout=TRAIN_TIMEOUT_S,
    )
    run.job_id = job.id
    run.stage = RunStage.QUEUED.value
    run.error = None
    run.cancel_requested = False
    run.finished_at = None
    run.eta_seconds = None  # the earlier attempt's: the job sets its own from its first steps
    db.session.commit()


def enqueue_export(run: TrainingRun) -> BackgroundJob:
    """Hand a trained run to the `export` queue (the training job does this when it finishes)."""
    job = enqueue_job(
        owner_id=run.owner_id,
        kind="export",
        title=f"Export {run.name}",
        func="jobs.export.run",
        args=(run.id,),
        queue="export",
        timeout=EXPORT_TIMEOUT_S,
    )
    run.job_id = job.id
    run.stage = RunStage.EXPORTING.value
    run.error = None
    run.finished_at = None
    run.eta_seconds = None  # training's ETA: nothing is left of it
    db.session.commit()
    return job


def training_finished(run: TrainingRun) -> bool:
    """Training ended as planned (its last step, or early stopping) and the adapter it ended with is
    saved whole: only the export is left to do. Not the step count: it reaches the last step before the
    final weights are saved, and a cancel also saves an adapter."""
    return is_trained(run_dir(run.owner_id, run.id) / "trainer" / ADAPTER_DIR)


def cancel_run(run: TrainingRun) -> None:
    """Queued: cancelled at once. Running: the trainer stops at the next step and keeps a checkpoint."""
    if run.is_final:
        raise RunRefused(None, f"The run has already ended ({run.stage}).")
    job = db.session.get(BackgroundJob, run.job_id) if run.job_id else None
    if run.stage == RunStage.PUSHING.value and run.model_ids:
        if job is None or job.status != JobStatus.QUEUED or not request_cancel(job):
            # (request_cancel returns False when a worker took the push since it was read.)
            raise RunRefused(None, "The push is under way and cannot be stopped halfway.")
        _end_push(run, "Cancelled before it started.")
        db.session.commit()
        return
    run.cancel_requested = True
    db.session.commit()
    # Queued, or with no job at all (a sweep's web request died between saving its runs and queueing
    # them): nothing would ever see the flag, so the run ends here.
    if job is None or job.status == JobStatus.QUEUED:
        if job is not None and not request_cancel(job):
            return  # a worker took it since it was read: the trainer sees the flag at its next step
        run.stage = RunStage.CANCELLED.value
        run.finished_at = utcnow()
        db.session.commit()


RESUMABLE = (RunStage.CANCELLED.value, RunStage.FAILED.value)
FINAL = (RunStage.DONE.value, *RESUMABLE)


def resume_run(run: TrainingRun) -> None:
    """From the last checkpoint; a run that failed or was stopped in its export redoes only that."""
    if run.stage not in RESUMABLE:
        raise RunRefused(None, "Only a cancelled or failed run can resume.")
    trained = training_finished(run)
    if not trained and not run.last_checkpoint:
        raise RunRefused(None, "The run has no checkpoint to resume from: retry it instead.")
    with _claimed(run, RESUMABLE, "The run was resumed or retried already."):
        if not trained:
            enqueue_run(run, resume=True)
            return
        run.cancel_requested = False
        if asks_for_export(run):
            enqueue_export(run)
        else:  # no GGUF was asked for: nothing is left (an export would make a Q4_K_M nobody wanted)
            run.stage, run.error, run.finished_at = RunStage.DONE.value, None, utcnow()
            db.session.commit()


def asks_for_export(run: TrainingRun) -> bool:
    """Whether the run's config asks for any GGUF (an empty `export.quantization_types` asks for none)."""
    export = (run.config or {}).get("export")
    return not isinstance(export, dict) or bool(export.get("quantization_types", ["Q4_K_M"]))


@contextmanager
def _claimed(run: TrainingRun, stages: tuple[str, ...], refusal: str) -> Iterator[None]:
    """Move the run out of `stages` with one conditional UPDATE, so that of two clicks on Resume (or
    Retry) at once only one enqueues a job; the stage comes back if the queue then refuses the job."""
    previous = run.stage
    claimed = db.session.execute(
        db.update(TrainingRun)
        .where(TrainingRun.id == run.id, TrainingRun.stage.in_(stages))
        .values(stage=RunStage.QUEUED.value)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if not claimed:
        db.session.refresh(run)
        raise RunRefused(None, refusal)
    run.stage = RunStage.QUEUED.value
    try:
        yield
    except Exception:
        db.session.rollback()
        if run.stage == RunStage.QUEUED.value:  # still the claim (a failed retry records its own stage)
            run.stage = previous
            db.session.commit()
        raise


def retry_run(run: TrainingRun) -> None:
    if not run.is_final:
        raise RunRefused(None, "The run is still going.")
    check_queue("train")  # before anything is wiped: a queue that is down leaves the run as it was
    with _claimed(run, FINAL, "The run was resumed or retried already."):
        _retry(run)


def _retry(run: TrainingRun) -> None:
    _remove_files(run.owner_id, run.id)
    # Models registered from the earlier attempt keep their files and metadata, but no longer point
    # at this run: its metrics and weights are about to change.
    _detach_models(run)
    run.model_ids = []
    run.evaluation = {}
    run.step = 0
    run.total_steps = 0
    run.loss = None
    run.last_checkpoint = None
    run.resumed_from_step = None
    # The earlier attempt's figures and push describe weights that are about to be replaced.
    run.hub_push = {}
    run.best_step = run.best_eval_loss = None
    run.stopped_early = False
    run.epoch = run.learning_rate = run.tokens_per_second = run.eta_seconds = None
    from app.models import RunMetric

    db.session.execute(db.delete(RunMetric).where(RunMetric.run_id == run.id))
    db.session.commit()
    try:
        enqueue_run(run, resume=False)
    except EnqueueError as exc:
        # Redis went away after answering `check_queue`: the earlier results are gone, so the run must
        # not look done; failed, it can be retried again.
        run.stage = RunStage.FAILED.value
        run.error = f"The retry cleared the earlier results but could not be queued: {exc} Retry again."
        run.finished_at = utcnow()
        db.session.commit()
        raise


def push_run(run: TrainingRun, repo_id: str, private: bool) -> BackgroundJob:
    """Push a finished run's merged model and GGUFs to the Hub (again, after a failed push, or for the
    first time) as a job on the `export` queue; the run stays done whatever the push's outcome."""
    from flask_login import current_user

    if run.stage != RunStage.DONE.value or not run.model_ids:
        raise RunRefused(None, "Only a finished run with registered models can be pushed.")
    if not current_user.has_hub_token:
        raise RunRefused(None, "Save a Hugging Face token with write access in your account settings first.")
    # Claimed with one conditional UPDATE, so of two clicks at once only one queues a push; with no job
    # yet, the reconciler leaves the claim alone (the previous job, cancelled or failed, would end it).
    before = {"job_id": run.job_id, "hub_push": run.hub_push, "finished_at": run.finished_at}
    claim = {"job_id": None, "hub_push": {"repo": repo_id}, "cancel_requested": False, "finished_at": None}
    if not _update_run_where(run, RunStage.DONE, stage=RunStage.PUSHING.value, **claim):
        raise RunRefused(None, "The run is already being pushed, or no longer done.")
    try:
        job = enqueue_job(
            owner_id=run.owner_id,
            kind="hub_push",
            title=f"Push {run.name} to {repo_id}",
            func="jobs.export.push",
            args=(run.id, repo_id, private),
            queue="export",
            timeout=PUSH_TIMEOUT_S,
        )
    except Exception:
        db.session.rollback()
        _update_run_where(run, RunStage.PUSHING, job_id_unset=True, stage=RunStage.DONE.value, **before)
        raise
    # Only onto the claim: a push that failed fast has already put its outcome on the run.
    _update_run_where(run, RunStage.PUSHING, job_id_unset=True, job_id=job.id)
    return job


def _update_run_where(
    run: TrainingRun, while_in: RunStage, job_id_unset: bool = False, **values: Any
) -> bool:
    """Set `values` on the run only while it is in stage `while_in` (and has no job, with
    `job_id_unset`), committed; whether it was."""
    conditions = [TrainingRun.id == run.id, TrainingRun.stage == while_in.value]
    if job_id_unset:
        conditions.append(TrainingRun.job_id.is_(None))
    updated = db.session.execute(
        db.update(TrainingRun)
        .where(*conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    db.session.refresh(run)
    return bool(updated)


def _end_push(run: TrainingRun, error: str) -> None:
    run.stage = RunStage.DONE.value
    run.hub_push = {"repo": (run.hub_push or {}).get("repo"), "error": error}
    run.finished_at = utcnow()


def settle_interrupted(run: TrainingRun, job: BackgroundJob | None) -> None:
    """Record how a run ended whose job stopped without finishing it (the caller commits): cancelled,
    or failed with the job's reason and resumable from its last checkpoint. A run whose models are
    registered and only a push was lost stays done, with the push's error."""
    error = (job.error if job is not None and job.error else None) or "The job ended unexpectedly."
    cancelled = (job is not None and job.status == JobStatus.CANCELLED) or run.cancel_requested
    if run.stage == RunStage.PUSHING.value and run.model_ids:
        _end_push(run, "Cancelled." if cancelled else error)
        return
    checkpoint = last_checkpoint(run_dir(run.owner_id, run.id) / "trainer")
    run.last_checkpoint = str(checkpoint) if checkpoint else run.last_checkpoint
    if cancelled:
        run.stage = RunStage.CANCELLED.value
    else:
        run.stage = RunStage.FAILED.value
        run.error = error
    run.finished_at = utcnow()


def reconcile_run(run: TrainingRun) -> None:
    """A run whose job already ended (its worker was killed, say) but that still looks active."""
    if run.is_final or not run.job_id:
        return
    job = db.session.get(BackgroundJob, run.job_id)
    if job is None or job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        return
    settle_interrupted(run, job)
    db.session.commit()


def delete_run(run: TrainingRun) -> None:
    """The run and its files (checkpoints, adapter, exports); registered models keep their GGUFs."""
    if not run.is_final:
        raise RunRefused(None, "Cancel the run before deleting it.")
    owner_id, run_id = run.owner_id, run.id
    _detach_models(run)  # a later run given the same id must not adopt them
    # Only while it is still final: another tab's Resume or Retry may have claimed it since it was read.
    # (Its metrics go with it: ON DELETE CASCADE.)
    deleted = db.session.execute(
        db.delete(TrainingRun).where(TrainingRun.id == run_id, TrainingRun.stage.in_(FINAL))
    ).rowcount
    if deleted != 1:
        db.session.rollback()
        raise RunRefused(None, "The run was resumed or retried meanwhile: cancel it before deleting it.")
    db.session.commit()
    _remove_files(owner_id, run_id, keep_registered=True)  # the row is gone: no job can want them now


def _detach_models(run: TrainingRun) -> None:
    from app.models import LLMModel

    db.session.execute(
        db.update(LLMModel).where(LLMModel.training_run_id == run.id).values(training_run_id=None)
    )


def _remove_files(owner_id: int, run_id: int, keep_registered: bool = True) -> None:
    folder = run_dir(owner_id, run_id)
    if not folder.is_dir():
        return
    if keep_registered:
        # Found by path, since a retry detaches the older models from the run.
        kept = registered_gguf_paths(owner_id)
        for path in folder.rglob("*"):
            if path.is_file() and path.resolve() not in kept:
                path.unlink(missing_ok=True)
        for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    else:
        shutil.rmtree(folder, ignore_errors=True)


def dataset_for_config(config_id: int | None, fallback: int | None) -> int | None:
    """The dataset a config names (its data.dataset), else the first of the kind its method trains on:
    the start form's first dataset, alphabetically, was often the wrong one (an SFT set under a DPO
    config)."""
    config = owned_or_none(TrainingConfig, config_id)
    if config is None:
        return fallback
    data, training = (config.config or {}).get("data") or {}, (config.config or {}).get("training") or {}
    ready = owned(Dataset).where(Dataset.status == "ready").order_by(Dataset.name)
    named = data.get("dataset")
    if isinstance(named, str) and named:
        found = db.session.execute(ready.where(Dataset.name == named)).scalars().first()
        if found is not None:
            return found.id
    kind = "dpo" if training.get("method") == "dpo" else "sft"
    same_kind = db.session.execute(ready.where(Dataset.kind == kind)).scalars().first()
    return same_kind.id if same_kind is not None else fallback
