"""The export job: merge the adapter → convert to GGUF → quantize → check → evaluate → register.

`run(job_id, run_id)` runs on the `export` queue once the training job has finished (or when the
user resumes a run whose export failed). `quantize.export_model` works in a temporary folder and
moves the GGUFs into place only when every one converted and loaded, so a failure registers nothing
and leaves no half-written file; the run is then marked failed with the converter's message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import current_app

from app.configs.schema import TrainingConfigSpec, answer_metrics
from app.datasets.storage import write_rows
from app.extensions import db
from app.models import LLMModel, Provider, RunMetric, RunStage, TrainingRun, utcnow
from app.training.evaluation_text import METRIC_LABELS, metrics_text
from app.training.files import ADAPTER_DIR, EVAL_ITEMS_FILE, registered_gguf_paths, run_dir
from jobs.progress import JobCancelled, tracked_job
from jobs.train import EVAL_ROWS_FILE
from jobs.training.run_log import run_logging
from jobs.training.run_record import (
    cancel_requested,
    check_still_owned,
    log_path_of,
    settle_run,
    update_run,
)

GREEDY_EVAL_TOKENS = 128  # room for the reply after the longest prompt the run trained on


STAGES = {
    "merging": RunStage.MERGING,
    "converting": RunStage.CONVERTING,
    "quantizing": RunStage.QUANTIZING,
    "checking": RunStage.QUANTIZING,
}


def run(job_id: int, run_id: int) -> dict[str, Any] | None:
    try:
        with tracked_job(job_id) as progress, run_logging(log_path_of(run_id)) as log:
            try:
                return progress.finish(_export(run_id, job_id, progress, log))
            except JobCancelled:
                log.info("Export cancelled")
                raise
            except Exception as exc:
                log.error("Export failed: %s", exc)
                raise
    finally:
        settle_run(run_id, job_id)


def _export(run_id: int, job_id: int, progress, log) -> dict[str, Any]:
    from jobs.training.base_model import resolve_base_model
    from quantize import export_model

    row = db.session.get(TrainingRun, run_id)
    check_still_owned(row, job_id)
    config = TrainingConfigSpec.model_validate(row.config)
    folder = run_dir(row.owner_id, row.id)
    owner_id = row.owner_id
    trained_dir = folder / "trainer" / ADAPTER_DIR  # the adapter, or the whole model without LoRA
    if not trained_dir.is_dir():
        raise FileNotFoundError("The run has no trained weights to export: resume or retry the training.")
    update_run(run_id, stage=RunStage.MERGING, error=None)
    use_lora = config.training.use_lora
    # A full fine-tune saved the whole trained model: that is what gets converted, with no merge.
    source_dir = (
        resolve_base_model(config.model.name, current_app.config["MODEL_STORE"], owner_id)
        if use_lora
        else trained_dir
    )
    quant_types = config.export.quantization_types or ["Q4_K_M"]
    log.info("Exporting %s from %s", ", ".join(quant_types), source_dir)

    def on_export(step: str, fraction: float) -> None:
        if step != "done" and cancel_requested(run_id):
            raise JobCancelled()
        if step in STAGES:
            update_run(run_id, stage=STAGES[step])
        log.info("Export: %s", step)
        progress.update(0.8 * fraction, f"Export: {step}")

    _remove_unregistered_ggufs(folder / "export", owner_id, log)
    exported = export_model(
        source_dir,
        folder / "export",
        quant_types,
        adapter_dir=trained_dir if use_lora else None,
        name=export_name(folder / "export", run_id),
        progress=on_export,
    )
    if not use_lora:
        exported.merged_dir = trained_dir  # pushed to the Hub as the model's safetensors
    for quant, path in exported.files.items():
        log.info("%s: %s (%.1f MB)", quant, path.name, path.stat().st_size / 1e6)
    eval_rows = _eval_rows(folder)
    chosen = answer_metrics(config.evaluation.metrics)
    if config.evaluation.enabled and eval_rows and chosen:
        context = config.tokenizer.max_length + GREEDY_EVAL_TOKENS
        _evaluate(run_id, folder, exported.files, eval_rows, chosen, context, progress, log)
    elif config.evaluation.enabled and eval_rows:
        log.info("No held-out answers to generate: the evaluation asks for no rate that needs them")
    if config.evaluation.enabled and "eval_loss" in config.evaluation.metrics:
        _record_eval_loss(run_id, log)
    if cancel_requested(run_id):  # the last moment a cancel can keep the models out of the registry
        raise JobCancelled()
    update_run(run_id, stage=RunStage.REGISTERING)
    model_ids = _register(run_id, config, exported.files)
    log.info("Registered model(s) %s", ", ".join(map(str, model_ids)))
    if config.export.push_to_hub and config.export.hub_repo_id:
        # Registered first: a push that dies with its worker then leaves the run done, not failed.
        update_run(
            run_id, stage=RunStage.PUSHING, model_ids=model_ids, hub_push={"repo": config.export.hub_repo_id}
        )
        progress.update(0.99, f"Pushing to the Hub: {config.export.hub_repo_id}")
        update_run(run_id, hub_push=_push(run_id, config, exported, log))
    update_run(run_id, stage=RunStage.DONE, model_ids=model_ids, finished_at=utcnow(), output_dir=str(folder))
    return {"models": model_ids, "files": {q: p.name for q, p in exported.files.items()}}


def _remove_unregistered_ggufs(export_dir: Path, owner_id: int, log) -> None:
    """GGUFs an earlier attempt exported but never registered (cancelled or failed in its evaluation):
    each attempt would otherwise leave a full set behind, F16 included. Registered ones stay."""
    if not export_dir.is_dir():
        return
    registered = registered_gguf_paths(owner_id)
    for gguf in export_dir.glob("*.gguf"):
        if gguf.resolve() not in registered:
            log.info("Removing %s: an earlier export left it unregistered", gguf.name)
            gguf.unlink(missing_ok=True)


def export_name(export_dir: Path, run_id: int) -> str:
    """`run<id>`, or `run<id>-<n>` when an earlier export of the run (before a retry) left GGUFs that
    registered models still use: a new export never overwrites a registered model's file."""
    name, attempt = f"run{run_id}", 1
    while any(export_dir.glob(f"{name}-*.gguf")):
        attempt += 1
        name = f"run{run_id}-{attempt}"
    return name


def push(job_id: int, run_id: int, repo_id: str, private: bool) -> dict[str, Any] | None:
    """Push a finished run again (the run page's "Push to the Hub"): its registered GGUFs and the merged
    model kept beside them. The outcome goes on the run, which stays done either way."""
    from quantize.export import ExportResult

    try:
        with tracked_job(job_id) as progress, run_logging(log_path_of(run_id)) as log:
            _adopt_claim(run_id, job_id)
            row = db.session.get(TrainingRun, run_id)
            config = TrainingConfigSpec.model_validate(row.config)
            export = config.export.model_copy(
                update={"push_to_hub": True, "hub_repo_id": repo_id, "hub_private": private}
            )
            config = config.model_copy(update={"export": export})
            models = db.session.execute(
                db.select(LLMModel)
                .where(LLMModel.training_run_id == run_id, LLMModel.owner_id == row.owner_id)
                .order_by(LLMModel.id)
            ).scalars()
            files = {
                m.quantization: Path(m.gguf_path)
                for m in models
                if m.gguf_path and Path(m.gguf_path).is_file()
            }
            merged = run_dir(row.owner_id, row.id) / "export" / "merged"
            progress.update(0.1, f"Pushing to the Hub: {repo_id}")
            log.info("Pushing %s to %s", ", ".join(files) or "no GGUF", repo_id)
            if files:
                exported = ExportResult(merged_dir=merged if merged.is_dir() else None, files=files)
                outcome = _push(run_id, config, exported, log)
            else:
                outcome = {"repo": repo_id, "error": "The run's GGUF files are gone: nothing to push."}
            update_run(run_id, stage=RunStage.DONE, hub_push=outcome, finished_at=utcnow())
            return progress.finish(outcome)
    finally:
        settle_run(run_id, job_id)


def _adopt_claim(run_id: int, job_id: int) -> None:
    """The push route claims the run before it has this job's id, and records the id after queueing: a
    request that died between the two would leave a run no reconciler could settle. The job takes it."""
    db.session.execute(
        db.update(TrainingRun)
        .where(
            TrainingRun.id == run_id,
            TrainingRun.stage == RunStage.PUSHING.value,
            TrainingRun.job_id.is_(None),
        )
        .values(job_id=job_id)
    )
    db.session.commit()


def _push(run_id: int, config: TrainingConfigSpec, exported, log) -> dict[str, Any]:
    """Push the merged model and the GGUFs; a failure is reported on the run, never fails it."""
    from app.models import User
    from jobs.training.hub_push import HubPushError, push_to_hub

    row = db.session.get(TrainingRun, run_id)
    owner = db.session.get(User, row.owner_id)
    repo_id = config.export.hub_repo_id
    token = owner.hub_token() if owner else None
    if not token:
        message = "No Hugging Face token is saved in your account settings: nothing was pushed."
        log.warning(message)
        return {"repo": repo_id, "error": message}
    try:
        result = push_to_hub(
            token,
            repo_id,
            private=config.export.hub_private,
            ggufs=exported.files,
            merged_dir=exported.merged_dir,
            model_card=model_card(row, config, exported.files),
        )
    except HubPushError as exc:
        log.warning("Hub push failed: %s", exc)
        return {"repo": repo_id, "error": str(exc)}
    log.info("Pushed %d files to %s", len(result.files), result.url)
    return {"repo": result.repo_id, "url": result.url, "commit": result.commit, "files": len(result.files)}


def model_card(run: TrainingRun, config: TrainingConfigSpec, files: dict[str, Path]) -> str:
    """The Hub README: what was trained, on what, how, and how well."""
    t = config.training
    lines = [
        "---",
        f"base_model: {config.model.name}",
        "tags: [toolsmith, tool-calling, gguf, " + ("lora" if t.use_lora else "full-fine-tune") + "]",
        "---",
        "",
        f"# {run.name}",
        "",
        f"Trained with Toolsmith: {t.method.upper()} of `{config.model.name}` on the dataset "
        f"`{run.dataset_name}` ({run.step} steps, learning rate {t.learning_rate:g}, batch {t.batch_size}"
        + (f", LoRA r={t.lora_r} alpha={t.lora_alpha}" if t.use_lora else "")
        + ").",
        "",
        "Files: the merged model (safetensors) and " + ", ".join(f"`{p.name}`" for p in files.values()) + ".",
    ]
    metrics = run.evaluation or {}
    if any(name in metrics for name in METRIC_LABELS):
        lines += [
            "",
            f"Held-out evaluation ({metrics.get('eval_rows')} rows, {metrics.get('model')}, greedy): "
            f"{metrics_text(metrics)}.",
        ]
    return "\n".join(lines) + "\n"


def _eval_rows(folder: Path) -> list[dict[str, Any]]:
    path = folder / EVAL_ROWS_FILE
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _evaluate(
    run_id: int,
    folder: Path,
    files: dict[str, Path],
    eval_rows: list,
    chosen: list[str],
    context: int,
    progress,
    log,
) -> None:
    from jobs.training.evaluate import evaluate_gguf

    update_run(run_id, stage=RunStage.EVALUATING)
    target = files.get("Q4_K_M") or next(iter(files.values()))
    log.info("Evaluating %s on %d held-out rows", target.name, len(eval_rows))

    def on_eval(done: int, total: int) -> None:
        if cancel_requested(run_id):
            raise JobCancelled()
        progress.update(0.8 + 0.18 * done / total, f"Evaluating: {done} of {total} held-out rows")

    report = evaluate_gguf(target, eval_rows, progress=on_eval, n_ctx=context)
    earlier = (
        db.session.execute(db.select(TrainingRun.evaluation).where(TrainingRun.id == run_id)).scalar_one()
        or {}
    )
    metrics = report.metrics(chosen)
    log.info("Evaluated: %s", metrics_text(metrics))
    if report.skipped:
        log.warning("Left out %d held-out row(s) too long to answer: %s", report.skipped, report.skip_reason)
    write_rows(folder / EVAL_ITEMS_FILE, report.items)  # the run page lists each answer
    update_run(run_id, evaluation={**earlier, **metrics, "model": target.name})


def _record_eval_loss(run_id: int, log) -> None:
    """The eval loss of the weights the run kept (its best evaluation, else its last) in its evaluation."""
    run = db.session.get(TrainingRun, run_id)
    loss = run.best_eval_loss
    if loss is None:
        loss = db.session.execute(
            db.select(RunMetric.eval_loss)
            .where(RunMetric.run_id == run_id, RunMetric.eval_loss.is_not(None))
            .order_by(RunMetric.id.desc())
            .limit(1)
        ).scalar()
    if loss is None:
        log.info("No eval loss to report: training had no held-out row to compute one on")
        return
    update_run(run_id, evaluation={**(run.evaluation or {}), "eval_loss": round(loss, 4)})


def _register(run_id: int, config: TrainingConfigSpec, files: dict[str, Path]) -> list[int]:
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
