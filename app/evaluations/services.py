"""Starting, listing, settling and deleting evaluations; the one place their rows are written by the web."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask_login import current_user

from app.chat.services import usable_models
from app.evaluations.bfcl import CATEGORIES, PUBLISHED_SCORES
from app.evaluations.cases import DATASET_CATEGORIES
from app.extensions import db
from app.models import (
    BackgroundJob,
    Benchmark,
    Dataset,
    DatasetStatus,
    Evaluation,
    EvaluationItem,
    EvaluationResult,
    LLMModel,
    utcnow,
)
from app.ownership import owned

JOB_TIMEOUT_SECONDS = 24 * 3600  # 6 models x 2000 cases on a CPU takes hours
# How long a new evaluation may be without its job's id before a page calls the job lost.
ENQUEUE_GRACE = timedelta(seconds=60)


@dataclass(frozen=True)
class EvaluationRequest:
    benchmark: str
    model_ids: list[int]
    cases: int
    dataset_id: int | None = None
    categories: tuple[str, ...] = ()
    constrained: bool = False


def ready_datasets() -> list[Dataset]:
    query = owned(Dataset).where(Dataset.status == DatasetStatus.READY.value).order_by(Dataset.name)
    return list(db.session.execute(query).scalars())


def list_evaluations() -> list[Evaluation]:
    query = owned(Evaluation).order_by(Evaluation.created_at.desc(), Evaluation.id.desc())
    evaluations = list(db.session.execute(query).scalars())
    for evaluation in evaluations:
        reconcile(evaluation)
    return evaluations


def start_evaluation(request: EvaluationRequest) -> Evaluation:
    """The evaluation, one result row per model, and its job on the `eval` queue; all or nothing."""
    from app.queueing import enqueue_for

    models = {model.id: model for model in usable_models()}
    chosen = [models[model_id] for model_id in request.model_ids if model_id in models]
    if not chosen or len(chosen) != len(set(request.model_ids)):
        raise LookupError("A chosen model is not available.")
    dataset = None
    if request.benchmark == Benchmark.DATASET.value:
        dataset = next((d for d in ready_datasets() if d.id == request.dataset_id), None)
        if dataset is None:
            raise LookupError("The dataset is not available.")
    evaluation = Evaluation(
        owner_id=current_user.id,
        title=_title(request, dataset, chosen),
        benchmark=request.benchmark,
        dataset_id=dataset.id if dataset else None,
        dataset_name=dataset.name if dataset else None,
        categories=list(request.categories) if request.benchmark == Benchmark.BFCL.value else [],
        cases_per_category=request.cases,
        constrained=request.constrained,
    )
    evaluation.results = [
        EvaluationResult(position=i, model_id=m.id, model_name=m.name, provider=m.provider)
        for i, m in enumerate(chosen)
    ]
    db.session.add(evaluation)
    db.session.commit()
    enqueue_for(
        evaluation,
        owner_id=current_user.id,
        kind="evaluation",
        title=f"Evaluate: {evaluation.title}"[:200],
        func="jobs.evaluation.run",
        args=(evaluation.id,),
        queue="eval",
        timeout=JOB_TIMEOUT_SECONDS,
    )
    return evaluation


def _title(request: EvaluationRequest, dataset: Dataset | None, models: list[LLMModel]) -> str:
    names = ", ".join(model.name for model in models)
    if dataset is not None:
        source = dataset.name
    else:
        source = "BFCL " + " / ".join(CATEGORIES[c] for c in request.categories)
    return f"{source} — {names}"[:200]


def reconcile(evaluation: Evaluation) -> None:
    """An evaluation whose job ended without settling it (worker killed, stop command) gets its outcome."""
    if evaluation.finished:
        return
    if evaluation.job_id is None and utcnow() - evaluation.created_at < ENQUEUE_GRACE:
        return  # `start_evaluation` commits the row before it enqueues the job and notes its id
    job = db.session.get(BackgroundJob, evaluation.job_id) if evaluation.job_id else None
    if job is not None and job.is_active:
        return
    from jobs.evaluation import settle_from_job

    settle_from_job(evaluation, job)
    db.session.commit()


def cancel_evaluation(evaluation: Evaluation) -> bool:
    """Ask its job to stop; False when it has already ended."""
    if evaluation.finished:
        return False
    job = db.session.get(BackgroundJob, evaluation.job_id) if evaluation.job_id else None
    if job is None or not job.is_active:
        reconcile(evaluation)
        return False
    from app.queueing import request_cancel

    request_cancel(job)
    db.session.refresh(job)
    reconcile(evaluation)
    return True


def delete_evaluation(evaluation: Evaluation) -> None:
    cancel_evaluation(evaluation)
    db.session.delete(evaluation)
    db.session.commit()


def category_labels(evaluation: Evaluation) -> dict[str, str]:
    if evaluation.benchmark == Benchmark.BFCL.value:
        return {key: CATEGORIES[key] for key in evaluation.categories if key in CATEGORIES}
    return dict(DATASET_CATEGORIES)


def ranked_results(evaluation: Evaluation) -> list:
    """The board's rows, best first: by accuracy (a model stopped after fewer cases is not ranked below a
    weaker one that answered more), then by cases answered; rows without a case last."""
    return sorted(
        evaluation.results,
        key=lambda result: (result.accuracy is not None, result.accuracy or 0.0, result.cases),
        reverse=True,
    )


def published_rows(evaluation: Evaluation) -> list[tuple[str, dict[str, float]]]:
    """BFCL's published accuracies (percent) for the same categories, for the comparison table."""
    if evaluation.benchmark != Benchmark.BFCL.value:
        return []
    return [(label, scores) for label, scores in PUBLISHED_SCORES.items()]


def results_for_model(model_id: int, limit: int = 10) -> list[tuple[Evaluation, EvaluationResult]]:
    """The user's latest finished scores of one model, for its page."""
    query = (
        owned(Evaluation)
        .add_columns(EvaluationResult)
        .join(EvaluationResult, EvaluationResult.evaluation_id == Evaluation.id)
        .where(EvaluationResult.model_id == model_id, EvaluationResult.cases > 0)
        .order_by(Evaluation.created_at.desc())
        .limit(limit)
    )
    return [(row[0], row[1]) for row in db.session.execute(query)]


CSV_COLUMNS = (
    "model", "case", "category", "prompt", "correct", "valid", "reason", "expected", "got", "latency_s",
    "prompt_tokens", "completion_tokens",
)  # fmt: skip


def cases_csv(evaluation: Evaluation) -> str:
    """Every scored case of every model, one row each, safe to open in a spreadsheet."""
    from app.analytics.export import csv_safe

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for result in evaluation.results:
        query = sa.select(EvaluationItem).where(EvaluationItem.result_id == result.id)
        for item in db.session.scalars(query.order_by(EvaluationItem.position)):
            row = {"model": result.model_name, "case": item.case_id}
            row.update({column: getattr(item, column) for column in CSV_COLUMNS[2:]})
            writer.writerow([csv_safe(_cell(row[column])) for column in CSV_COLUMNS])
    return buffer.getvalue()


@dataclass(frozen=True)
class CaseList:
    result: EvaluationResult
    items: list[EvaluationItem]
    total: int  # matching items, of which `items` holds the first


def case_lists(evaluation: Evaluation, misses_only: bool, limit: int) -> list[CaseList]:
    """Each model's cases (or only its misses) in order, at most `limit` each, for the explorer."""
    lists = []
    for result in evaluation.results:
        query = sa.select(EvaluationItem).where(EvaluationItem.result_id == result.id)
        if misses_only:
            query = query.where(EvaluationItem.correct.is_(False))
        total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
        items = list(db.session.scalars(query.order_by(EvaluationItem.position).limit(limit)))
        lists.append(CaseList(result, items, total))
    return lists


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def job_of(evaluation: Evaluation) -> BackgroundJob | None:
    return db.session.get(BackgroundJob, evaluation.job_id) if evaluation.job_id else None
