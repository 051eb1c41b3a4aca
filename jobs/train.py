"""The training job: prepare → (teacher) → train, then hand the run to the export job.

`run(job_id, run_id, resume)` runs on the `train` queue. The `TrainingRun` row is the user-facing
record (stage, step, loss, ETA, error) and `RunMetric` rows keep every logged step, so a reload shows
the whole history; `run.log` in the run's folder gets the stage lines and library warnings. The
`BackgroundJob` row (through `tracked_job`) carries the heartbeat, so a killed worker's run is
noticed; `settle_run` then marks the run failed with the reason, and it stays resumable from its last
checkpoint. A finished training enqueues `jobs.export.run` on the `export` queue (merge → GGUF →
quantize → evaluate → register), so a GPU trainer is not held by CPU-bound conversion.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import current_app

from app.configs.estimates import planned_steps
from app.configs.schema import TrainingConfigSpec
from app.datasets.storage import write_lines
from app.extensions import db
from app.models import Dataset, LLMModel, RunMetric, RunStage, TrainingRun, utcnow
from app.training.files import checkpoint_step, last_checkpoint, run_dir
from jobs.progress import JobCancelled, tracked_job
from jobs.training.run_log import run_logging
from jobs.training.run_record import (
    cancel_requested,
    check_still_owned,
    log_path_of,
    record_step,
    settle_run,
    update_run,
)

EVAL_ROWS_FILE = "eval_rows.jsonl"  # the held-out rows, kept for the export job's evaluation


def run(job_id: int, run_id: int, resume: bool = False) -> dict[str, Any] | None:
    try:
        with tracked_job(job_id) as progress, run_logging(log_path_of(run_id)) as log:
            try:
                return progress.finish(_run(run_id, job_id, resume, progress, log))
            except JobCancelled:
                raise
            except Exception as exc:
                log.error("Training stopped: %s", exc)
                raise
    finally:
        settle_run(run_id, job_id)


def _run(run_id: int, job_id: int, resume: bool, progress, log) -> dict[str, Any]:
    from jobs.training.base_model import resolve_base_model
    from jobs.training.data import split_rows, with_config_tools
    from jobs.training.trainer import TrainingHooks, train

    row = db.session.get(TrainingRun, run_id)
    check_still_owned(row, job_id)
    config = TrainingConfigSpec.model_validate(row.config)
    folder = run_dir(row.owner_id, row.id)
    folder.mkdir(parents=True, exist_ok=True)
    resume_from = row.last_checkpoint if resume and row.last_checkpoint else None
    dataset_id, owner_id = row.dataset_id, row.owner_id  # progress updates end the session (and `row`)
    log.info(
        "%s run %d: %s %s on %s",
        "Resuming" if resume_from else "Starting",
        run_id,
        config.training.method.upper(),
        "QLoRA" if config.training.use_qlora else "LoRA" if config.training.use_lora else "full",
        config.model.name,
    )
    resumed_at = checkpoint_step(resume_from) if resume_from else None
    if resumed_at is not None:
        # A run killed after its last checkpoint logged steps that are about to be trained again: their
        # figures go, so the chart does not run back on itself.
        db.session.execute(
            db.delete(RunMetric).where(RunMetric.run_id == run_id, RunMetric.step > resumed_at)
        )
        db.session.commit()
    update_run(
        run_id,
        stage=RunStage.PREPARING,
        started_at=utcnow(),  # this attempt's: a run's duration is its last attempt's, not the pause
        error=None,
        resumed_from_step=resumed_at,
        best_step=None,
        best_eval_loss=None,
        stopped_early=False,
    )
    progress.update(0.02, "Preparing the base model and data")
    if config.model.trust_remote_code:
        # The linter let an admin's config through; a retry or resume after the owner lost admin rights
        # (or a config saved by an admin, run by its owner) must not run a repository's code.
        from app.models import User
        from jobs.training.trainer import TrainingRefused

        owner = db.session.get(User, owner_id)
        if owner is None or not owner.is_admin:
            raise TrainingRefused(
                "Only an admin may run a model repository's own code (trust_remote_code); turn it off "
                "in the config and start a new run."
            )
    rows = with_config_tools(_load_rows(dataset_id), config.tools)
    splits = split_rows(
        rows, config.data.train_split, config.data.eval_split, config.seed, config.data.max_samples
    )
    if not splits.train:
        from jobs.training.trainer import TrainingRefused

        raise TrainingRefused(
            f"The split leaves no training row: {len(rows)} rows at a train split of "
            f"{config.data.train_split:g}. Raise data.train_split."
        )
    if not resume_from:  # the page shows "step 0 / N" while the base model is prepared, not "/ ?"
        update_run(run_id, total_steps=planned_steps(config, len(splits.train)))
    base_dir = resolve_base_model(config.model.name, current_app.config["MODEL_STORE"], owner_id)
    log.info("Base model %s; %d training rows, %d held out", base_dir, len(splits.train), len(splits.eval))
    if config.data.strategy == "teacher":
        splits.train = _teacher_stage(run_id, owner_id, config, splits.train, progress, log)
    if cancel_requested(run_id):  # pressed while the base model or the teacher was being prepared
        raise JobCancelled()
    db.session.remove()

    def on_log(report) -> None:
        record_step(run_id, report)
        log.info("step %d/%d%s", report.step, report.total_steps, _report_text(report))
        fraction = report.step / report.total_steps if report.total_steps else 0.0
        progress.update(0.05 + 0.9 * fraction, f"Training: step {report.step} of {report.total_steps}")

    def on_sample(step: int, request: str, answer: str) -> None:
        log.info(
            "Sample at step %d: %s → %s", step, _one_line(request, 120), _one_line(answer, 300) or "(nothing)"
        )

    update_run(run_id, stage=RunStage.TRAINING)
    if resume_from:
        log.info("Resuming from %s", Path(resume_from).name)
    outcome = train(
        base_dir,
        folder / "trainer",
        config,
        splits,
        TrainingHooks(on_log, lambda: cancel_requested(run_id), on_sample),
        resume_from,
    )
    checkpoint = last_checkpoint(folder / "trainer")
    update_run(run_id, last_checkpoint=str(checkpoint) if checkpoint else None, step=outcome.global_step)
    if outcome.stopped:
        log.info("Cancelled at step %d; kept %s", outcome.global_step, checkpoint.name if checkpoint else "-")
        update_run(run_id, stage=RunStage.CANCELLED, finished_at=utcnow())
        raise JobCancelled()  # the job is cancelled too (the Jobs page said "succeeded")
    log.info(
        "Training done: %d steps, %d tokens in %.0f s%s",
        outcome.global_step,
        outcome.train_tokens,
        outcome.seconds,
        f" (the part after resuming at step {resumed_at})" if resumed_at is not None else "",
    )
    if outcome.best is not None:
        if outcome.best.stopped_early:
            log.info(
                "Stopped early: the eval loss did not improve for %d evaluations",
                config.training.early_stopping_patience,
            )
        log.info("Kept the best weights: step %d, eval loss %.4f", outcome.best.step, outcome.best.eval_loss)
        update_run(
            run_id,
            best_step=outcome.best.step,
            best_eval_loss=outcome.best.eval_loss,
            stopped_early=outcome.best.stopped_early,
        )
    elif config.training.early_stopping_patience and not outcome.eval_rows:
        log.info("Early stopping was off: %s", _no_eval_loss(len(splits.eval), config.tokenizer.max_length))
    # Atomic: a kill mid-write must not leave the export a cut-off file to fail on (or silently fewer rows).
    write_lines(
        folder / EVAL_ROWS_FILE,
        (json.dumps(held) + "\n" for held in _evaluation_rows(owner_id, config, splits.eval, log)),
    )
    result = {
        "steps": outcome.global_step,
        "tokens": outcome.train_tokens,
        "seconds": round(outcome.seconds, 1),
    }
    if outcome.best is not None:
        result.update(best_step=outcome.best.step, stopped_early=outcome.best.stopped_early)
    if not config.export.quantization_types:
        log.info("No export asked for: the adapter is in %s", outcome.adapter_dir)
        update_run(run_id, stage=RunStage.DONE, finished_at=utcnow(), output_dir=str(folder))
        return result
    from app.training.services import enqueue_export

    export_job = enqueue_export(db.session.get(TrainingRun, run_id))
    log.info("Queued the export (job %d)", export_job.id)
    return {**result, "export_job": export_job.id}


def _no_eval_loss(held_out: int, max_length: int) -> str:
    """Why the run had no eval loss: nothing was held out, or truncation left nothing of what was."""
    if not held_out:
        return "no row is held out to compute an eval loss on"
    rows = "the held-out row has" if held_out == 1 else f"all {held_out} held-out rows have"
    return (
        f"{rows} no answer within the max length ({max_length} tokens): truncation left none to compute "
        "an eval loss on"
    )


def _report_text(report) -> str:
    parts = []
    for name, label, pattern in (
        ("loss", "loss", "%.4f"),
        ("eval_loss", "eval_loss", "%.4f"),
        ("learning_rate", "lr", "%.2e"),
        ("tokens_per_second", "tok/s", "%.0f"),
    ):
        value = getattr(report, name)
        if value is not None:
            parts.append(f"  {label} {pattern % value}")
    return "".join(parts)


def _teacher_stage(run_id: int, owner_id: int, config: TrainingConfigSpec, rows: list, progress, log) -> list:
    from jobs.training.teacher import distil
    from jobs.training.trainer import TrainingRefused

    teacher = (
        db.session.execute(
            db.select(LLMModel).where(
                LLMModel.name == config.data.teacher_model,
                LLMModel.enabled.is_(True),
                db.or_(LLMModel.owner_id == owner_id, LLMModel.owner_id.is_(None)),
            )
        )
        .scalars()
        .first()
    )
    if teacher is None:
        raise TrainingRefused(f"The teacher model {config.data.teacher_model!r} is not in your registry.")
    db.session.expunge(teacher)  # loaded now and kept: progress updates end the session
    update_run(run_id, stage=RunStage.TEACHER)
    log.info("Teacher %s writes the targets of %d rows", teacher.name, len(rows))

    def on_row(done: int, total: int) -> None:
        if cancel_requested(run_id):
            raise JobCancelled()
        progress.update(0.02 + 0.03 * done / total, f"Teacher {teacher_name}: {done} of {total} answers")

    teacher_name = teacher.name
    rewritten, report = distil(teacher, rows, progress=on_row)
    if report.rows and report.failed == report.rows:
        raise TrainingRefused(f"The teacher {teacher_name} failed on every row: {report.last_error}")
    log.info("Teacher done: %s", report.as_dict())
    update_run(run_id, evaluation={"teacher": {**report.as_dict(), "model": teacher_name}})
    return rewritten


def _evaluation_rows(owner_id: int, config: TrainingConfigSpec, held_out: list, log) -> list[dict[str, Any]]:
    """The rows the export's tool-call evaluation answers: the held-out split, or the dataset named by
    `evaluation.eval_set` (its held-out rows when it marks some, else all of them)."""
    name = config.evaluation.eval_set
    if not config.evaluation.enabled or not name:
        return held_out
    dataset = (
        db.session.execute(
            db.select(Dataset).where(
                Dataset.owner_id == owner_id, Dataset.name == name, Dataset.status == "ready"
            )
        )
        .scalars()
        .first()
    )
    if dataset is None or not dataset.file_path or not Path(dataset.file_path).is_file():
        log.warning("The evaluation dataset %r is gone: evaluating on the held-out split instead", name)
        return held_out
    from app.datasets.storage import read_rows

    rows = list(read_rows(Path(dataset.file_path)))
    marked = [row for row in rows if row.get("split") == "eval"]
    log.info("Evaluation set: %s (%d rows)", name, len(marked or rows))
    return marked or rows


def _load_rows(dataset_id: int | None) -> list[dict[str, Any]]:
    from app.datasets.storage import read_rows

    dataset = db.session.get(Dataset, dataset_id) if dataset_id else None
    if dataset is None or not dataset.file_path or not Path(dataset.file_path).is_file():
        raise FileNotFoundError("The run's dataset was deleted.")
    return list(read_rows(Path(dataset.file_path)))


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
