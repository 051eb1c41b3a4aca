"""The training job: prepare → (teacher) → train → merge / convert / quantize → register.

`run(job_id, run_id, resume)` runs on the `train` queue. The `TrainingRun` row is the user-facing
record (stage, step, loss, ETA, error) and `RunMetric` rows keep every logged step, so a reload shows
the whole history. The `BackgroundJob` row (through `tracked_job`) carries the heartbeat, so a killed
worker's run is noticed; `settle_run` then marks the run failed with the reason, and it stays
resumable from its last checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import current_app

from app.configs.schema import TrainingConfigSpec
from app.extensions import db
from app.models import (
    BackgroundJob,
    Dataset,
    LLMModel,
    Provider,
    RunMetric,
    RunStage,
    TrainingRun,
    utcnow,
)
from app.training.files import last_checkpoint, run_dir
from jobs.progress import tracked_job


def run(job_id: int, run_id: int, resume: bool = False) -> dict[str, Any] | None:
    try:
        with tracked_job(job_id) as progress:
            return progress.finish(_run(run_id, resume, progress))
    finally:
        settle_run(run_id)


def _run(run_id: int, resume: bool, progress) -> dict[str, Any]:
    from jobs.training.base_model import resolve_base_model
    from jobs.training.data import split_rows
    from jobs.training.trainer import TrainingHooks, train

    row = db.session.get(TrainingRun, run_id)
    config = TrainingConfigSpec.model_validate(row.config)
    folder = run_dir(row.owner_id, row.id)
    folder.mkdir(parents=True, exist_ok=True)
    resume_from = row.last_checkpoint if resume and row.last_checkpoint else None
    dataset_id, owner_id = row.dataset_id, row.owner_id  # progress updates end the session (and `row`)
    _update(
        run_id,
        stage=RunStage.PREPARING,
        started_at=utcnow(),
        error=None,
        cancel_requested=False,
        resumed_from_step=row.step if resume_from else None,
    )
    progress.update(0.02, "Preparing the base model and data")
    base_dir = resolve_base_model(config.model.name, current_app.config["MODEL_STORE"])
    rows = _load_rows(dataset_id)
    splits = split_rows(
        rows, config.data.train_split, config.data.eval_split, config.seed, config.data.max_samples
    )
    if config.data.strategy == "teacher":
        splits.train = _teacher_stage(run_id, owner_id, config, splits.train, progress)
    db.session.remove()

    def on_log(report) -> None:
        _record_step(run_id, report)
        fraction = report.step / report.total_steps if report.total_steps else 0.0
        progress.update(0.05 + 0.75 * fraction, f"Training: step {report.step} of {report.total_steps}")

    def should_stop() -> bool:
        return bool(
            db.session.execute(
                db.select(TrainingRun.cancel_requested).where(TrainingRun.id == run_id)
            ).scalar_one_or_none()
        ) or _job_cancel_requested(run_id)

    _update(run_id, stage=RunStage.TRAINING)
    outcome = train(
        base_dir, folder / "trainer", config, splits, TrainingHooks(on_log, should_stop), resume_from
    )
    checkpoint = last_checkpoint(folder / "trainer")
    _update(run_id, last_checkpoint=str(checkpoint) if checkpoint else None, step=outcome.global_step)
    if outcome.stopped:
        _update(run_id, stage=RunStage.CANCELLED, finished_at=utcnow())
        return {"stopped_at_step": outcome.global_step}

    from quantize import export_model

    stages = {
        "merging": RunStage.MERGING,
        "converting": RunStage.CONVERTING,
        "quantizing": RunStage.QUANTIZING,
        "checking": RunStage.QUANTIZING,
    }

    def on_export(step: str, fraction: float) -> None:
        if step in stages:
            _update(run_id, stage=stages[step])
        progress.update(0.8 + 0.15 * fraction, f"Export: {step}")

    exported = (
        export_model(
            base_dir,
            folder / "export",
            config.export.quantization_types or ["Q4_K_M"],
            adapter_dir=outcome.adapter_dir if config.training.use_lora else None,
            name=f"run{run_id}",
            progress=on_export,
        )
        if config.export.quantization_types
        else None
    )
    if exported and config.evaluation.enabled and splits.eval and config.training.method == "sft":
        from jobs.training.evaluate import evaluate_gguf

        _update(run_id, stage=RunStage.EVALUATING)
        target = exported.files.get("Q4_K_M") or next(iter(exported.files.values()))

        def on_eval(done: int, total: int) -> None:
            progress.update(0.95 + 0.04 * done / total, f"Evaluating: {done} of {total} held-out rows")

        report = evaluate_gguf(target, splits.eval, progress=on_eval)
        earlier = (
            db.session.execute(db.select(TrainingRun.evaluation).where(TrainingRun.id == run_id)).scalar_one()
            or {}
        )
        _update(run_id, evaluation={**earlier, **report.metrics(), "model": target.name})
    _update(run_id, stage=RunStage.REGISTERING)
    model_ids = _register(run_id, config, exported.files if exported else {}, outcome)
    _update(run_id, stage=RunStage.DONE, model_ids=model_ids, finished_at=utcnow(), output_dir=str(folder))
    return {
        "steps": outcome.global_step,
        "models": model_ids,
        "tokens": outcome.train_tokens,
        "seconds": round(outcome.seconds, 1),
    }


def _teacher_stage(run_id: int, owner_id: int, config: TrainingConfigSpec, rows: list, progress) -> list:
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
    _update(run_id, stage=RunStage.TEACHER)

    def on_row(done: int, total: int) -> None:
        progress.update(0.02 + 0.08 * done / total, f"Teacher {teacher_name}: {done} of {total} answers")

    teacher_name = teacher.name
    rewritten, report = distil(teacher, rows, progress=on_row)
    if report.rows and report.failed == report.rows:
        raise TrainingRefused(f"The teacher {teacher_name} failed on every row: {report.last_error}")
    _update(run_id, evaluation={"teacher": {**report.as_dict(), "model": teacher_name}})
    return rewritten


def _load_rows(dataset_id: int | None) -> list[dict[str, Any]]:
    from app.datasets.storage import read_rows

    dataset = db.session.get(Dataset, dataset_id) if dataset_id else None
    if dataset is None or not dataset.file_path or not Path(dataset.file_path).is_file():
        raise FileNotFoundError("The run's dataset was deleted.")
    return list(read_rows(Path(dataset.file_path)))


def _register(run_id: int, config: TrainingConfigSpec, files: dict[str, Path], outcome) -> list[int]:
    from app.serving.gguf_info import read_gguf_info

    row = db.session.get(TrainingRun, run_id)
    lora = None
    if config.training.use_lora:
        t = config.training
        lora = {
            "r": t.lora_r,
            "alpha": t.lora_alpha,
            "dropout": t.lora_dropout,
            "target_modules": t.lora_target_modules,
            "qlora": t.use_qlora,
        }
    ids = []
    for quant, path in files.items():
        info = read_gguf_info(path)
        model = LLMModel(
            owner_id=row.owner_id,
            name=f"{row.name} {quant}"[:120],
            description=f"Trained by run {row.id} ({config.training.method.upper()} on {row.dataset_name}).",
            provider=Provider.LOCAL_GGUF,
            gguf_path=str(path),
            supports_streaming=True,
            supports_tools=True,
            context_length=info.context_length,
            max_tokens=512,
            enabled=True,
            architecture=info.architecture,
            parameter_count=info.parameter_count,
            quantization=info.quantization or quant,
            file_size=info.file_size,
            has_chat_template=info.has_chat_template,
            training_method=config.training.method,
            base_model=config.model.name,
            training_dataset=row.dataset_name,
            training_date=utcnow(),
            lora_config=lora,
            evaluation_metrics=row.evaluation or None,
            training_run_id=row.id,
        )
        db.session.add(model)
        db.session.flush()
        ids.append(model.id)
    db.session.commit()
    return ids


def _record_step(run_id: int, report) -> None:
    db.session.add(
        RunMetric(
            run_id=run_id,
            step=report.step,
            epoch=report.epoch,
            loss=report.loss,
            eval_loss=report.eval_loss,
            learning_rate=report.learning_rate,
            grad_norm=report.grad_norm,
            tokens_per_second=report.tokens_per_second,
        )
    )
    values: dict[str, Any] = {
        "step": report.step,
        "total_steps": report.total_steps,
        "epoch": report.epoch,
        "eta_seconds": report.eta_seconds,
    }
    for name in ("loss", "learning_rate", "tokens_per_second"):
        if getattr(report, name) is not None:
            values[name] = getattr(report, name)
    db.session.execute(db.update(TrainingRun).where(TrainingRun.id == run_id).values(**values))
    db.session.commit()
    db.session.remove()


def _update(run_id: int, **values: Any) -> None:
    values = {k: (v.value if isinstance(v, RunStage) else v) for k, v in values.items()}
    db.session.execute(db.update(TrainingRun).where(TrainingRun.id == run_id).values(**values))
    db.session.commit()


def _job_cancel_requested(run_id: int) -> bool:
    job_id = db.session.execute(
        db.select(TrainingRun.job_id).where(TrainingRun.id == run_id)
    ).scalar_one_or_none()
    if not job_id:
        return False
    return bool(
        db.session.execute(
            db.select(BackgroundJob.cancel_requested).where(BackgroundJob.id == job_id)
        ).scalar_one_or_none()
    )


def settle_run(run_id: int) -> None:
    """A run not in a final stage when its job ends failed (or was cancelled): record why."""
    db.session.rollback()
    row = db.session.get(TrainingRun, run_id)
    if row is not None and not row.is_final:
        job = db.session.get(BackgroundJob, row.job_id) if row.job_id else None
        cancelled = (job is not None and job.status == "cancelled") or row.cancel_requested
        checkpoint = last_checkpoint(run_dir(row.owner_id, row.id) / "trainer")
        row.last_checkpoint = str(checkpoint) if checkpoint else row.last_checkpoint
        row.stage = RunStage.CANCELLED.value if cancelled else RunStage.FAILED.value
        if not cancelled:
            row.error = (job.error if job and job.error else None) or "The training job ended unexpectedly."
        row.finished_at = utcnow()
        db.session.commit()
    db.session.remove()
