"""Run an evaluation: every chosen model answers the same cases, each reply is judged, scores are kept.

Runs on the `eval` queue. Greedy decoding (temperature 0) so a score can be reproduced. Scores are
written after every case, so the page shows them filling in; a cancel stops between cases and keeps
what was scored. A model whose provider fails three cases in a row (endpoint down, key refused) is
marked failed with the provider's message and the next model goes on. Remote models get a few
requests at once (they spend their time on the network); a local model answers one case at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from flask import current_app

from app.datasets.storage import read_rows
from app.evaluations.cases import EvalCase, bfcl_cases, dataset_cases
from app.extensions import db
from app.models import (
    BackgroundJob,
    Benchmark,
    Dataset,
    Evaluation,
    EvaluationItem,
    EvaluationResult,
    EvaluationStatus,
    JobStatus,
    LLMModel,
    Provider,
    utcnow,
)
from app.serving import SamplingParams, ServingError, generate
from app.serving.grammar import local_tool_grammar
from app.serving.tool_calls import unreadable_calls
from app.serving.tool_schema import check_tool_call
from jobs.progress import JobFailed, Progress, tracked_job

GREEDY = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=256)
ERRORS_IN_A_ROW_BEFORE_GIVING_UP = 3
REMOTE_CONCURRENCY = 4  # requests in flight to one remote provider (bench/evaluation_concurrency.py)
REPLY_CHARS_KEPT = 400


def run(job_id: int, evaluation_id: int) -> dict[str, Any] | None:
    try:
        with tracked_job(job_id) as progress:
            evaluation = db.session.get(Evaluation, evaluation_id)
            if evaluation is None:
                raise JobFailed("The evaluation was deleted before it started.")
            evaluation.status = EvaluationStatus.RUNNING.value
            db.session.commit()
            cases = _cases(evaluation)
            if not cases:
                raise JobFailed("There is nothing to evaluate: no usable cases.")
            result_ids = [result.id for result in evaluation.results]
            constrained = evaluation.constrained
            db.session.remove()
            total = len(cases) * len(result_ids)
            for position, result_id in enumerate(result_ids):
                _score_model(result_id, cases, constrained, progress, position * len(cases), total)
            return progress.finish({"evaluation_id": evaluation_id, "cases": len(cases)})
    finally:
        _settle(evaluation_id, job_id)


def _cases(evaluation: Evaluation) -> list[EvalCase]:
    if evaluation.benchmark == Benchmark.BFCL.value:
        return bfcl_cases(evaluation.categories, evaluation.cases_per_category)
    dataset = db.session.get(Dataset, evaluation.dataset_id) if evaluation.dataset_id else None
    if dataset is None or not dataset.file_path or not Path(dataset.file_path).is_file():
        raise JobFailed("The dataset was deleted before the evaluation started.")
    return dataset_cases(read_rows(Path(dataset.file_path)), evaluation.cases_per_category)


def _score_model(
    result_id: int, cases: list[EvalCase], constrained: bool, progress: Progress, done: int, total: int
) -> None:
    result = _result(result_id)
    model_id, model_name = result.model_id, result.model_name
    model = db.session.get(LLMModel, model_id) if model_id else None
    if model is None or not model.enabled:
        result.status = "failed"
        result.error = "The model was deleted or disabled before its turn."
        db.session.commit()
        return
    workers = 1 if model.provider == Provider.LOCAL_GGUF else REMOTE_CONCURRENCY
    result.status = "running"
    db.session.commit()
    progress.update(done / total, f"{model_name}: 0 of {len(cases)} cases")
    tally = _Tally()
    errors_in_a_row = 0
    answers = _answers(model_id, cases, constrained, workers)
    try:
        for index, item in enumerate(answers):
            tally.add(cases[index], item)
            errors_in_a_row = errors_in_a_row + 1 if item.get("error") else 0
            result = _result(result_id)
            tally.write(result)
            db.session.add(_item_row(result_id, index, item))
            if errors_in_a_row >= ERRORS_IN_A_ROW_BEFORE_GIVING_UP:
                result.status = "failed"
                result.error = f"Stopped after {errors_in_a_row} failed requests in a row: {item['error']}"
                db.session.commit()
                return
            db.session.commit()
            # update() ends the session (no connection held while generating); rows are loaded again.
            progress.update((done + index + 1) / total, f"{model_name}: {index + 1} of {len(cases)} cases")
    finally:
        answers.close()  # a cancel or a give-up drops the requests not yet sent
    result = _result(result_id)
    result.status = "done"
    db.session.commit()


def _result(result_id: int) -> EvaluationResult:
    result = db.session.get(EvaluationResult, result_id)
    if result is None:
        raise JobFailed("The evaluation was deleted while it ran.")
    return result


def _answers(
    model_id: int, cases: list[EvalCase], constrained: bool, workers: int
) -> Iterator[dict[str, Any]]:
    """Each case's item, in order. Remote providers get `workers` requests at once: their time is mostly
    waiting on the network (and they batch); an in-process llama.cpp model answers one at a time."""
    if workers <= 1:
        for case in cases:
            yield _answer_by_id(model_id, case, constrained)
        return
    app = current_app._get_current_object()

    def answer_in_thread(case: EvalCase) -> dict[str, Any]:
        with app.app_context():  # its own session: a scoped session belongs to one app context
            try:
                return _answer_by_id(model_id, case, constrained)
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="evaluation") as pool:
        futures = [pool.submit(answer_in_thread, case) for case in cases]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def _answer_by_id(model_id: int, case: EvalCase, constrained: bool) -> dict[str, Any]:
    model = db.session.get(LLMModel, model_id)
    if model is None:
        reason = "The model was deleted during the evaluation."
        return {"id": case.id, "category": case.category, "correct": False, "valid": False, "reason": reason,
                "error": reason, "expected": case.expected, "got": ""}  # fmt: skip
    return _answer(model, case, constrained)


def _answer(model: LLMModel, case: EvalCase, constrained: bool) -> dict[str, Any]:
    """One case: generate, parse, judge. A provider failure is an item with an error, not an exception."""
    grammar = local_tool_grammar(model, case.tools, "auto") if constrained else None
    item: dict[str, Any] = {"id": case.id, "category": case.category, "expected": case.expected}
    item["prompt"] = case.prompt
    try:
        result = generate(model, case.messages, GREEDY, case.tools or None, grammar=grammar)
    except ServingError as exc:
        item.update(correct=False, valid=False, reason=str(exc), error=str(exc), got="")
        return item
    calls = [(call.name, call.arguments) for call in result.tool_calls]
    correct, reason = case.judge(calls)
    # A botched call (a `<tool_call>` block, or a remote server's structured call, that holds nothing
    # readable) is not the "no call" (or the calls) the judge saw.
    broken = unreadable_calls(result.text, result.broken_tool_calls)
    if broken:
        correct, reason = False, f"A call could not be read: {broken[0][:80]}"
    if result.finish_reason == "length" and not correct:
        # A call cut in half parses as no call: say so, or "no call" reads as the model choosing words.
        reason = f"{reason.rstrip('.')}: the reply was cut at the {GREEDY.max_tokens}-token limit."
    item.update(
        correct=correct,
        valid=_valid(case, calls) and not broken,
        reason=reason,
        got="; ".join(f"{name}({_json(arguments)})" for name, arguments in calls) or "no call",
        reply=result.text[:REPLY_CHARS_KEPT],
        latency_s=round(result.latency_s, 3),
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
    )
    return item


def _valid(case: EvalCase, calls: list[tuple[Any, Any]]) -> bool:
    """Every call matches the offered schemas; a reply without a call is valid only when none is due."""
    if not calls:
        return not case.expects_call
    return all(not check_tool_call(case.tools, name, arguments) for name, arguments in calls)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class _Tally:
    """Running scores for one model, written to its result row after each case."""

    def __init__(self) -> None:
        self.cases = self.correct = self.valid = self.errors = 0
        self.prompt_tokens = self.completion_tokens = 0
        self.latency_s = 0.0
        self.per_category: dict[str, dict[str, int]] = {}

    def add(self, case: EvalCase, item: dict[str, Any]) -> None:
        self.cases += 1
        self.correct += bool(item["correct"])
        self.valid += bool(item["valid"])
        if item.get("error"):
            self.errors += 1
        else:
            self.latency_s += item.get("latency_s", 0.0)
            self.prompt_tokens += item.get("prompt_tokens", 0)
            self.completion_tokens += item.get("completion_tokens", 0)
        entry = self.per_category.setdefault(case.category, {"cases": 0, "correct": 0})
        entry["cases"] += 1
        entry["correct"] += bool(item["correct"])

    def write(self, result: EvaluationResult) -> None:
        result.cases, result.correct, result.valid, result.errors = (
            self.cases,
            self.correct,
            self.valid,
            self.errors,
        )
        result.latency_s = round(self.latency_s, 3)
        result.prompt_tokens, result.completion_tokens = self.prompt_tokens, self.completion_tokens
        result.per_category = {key: dict(value) for key, value in self.per_category.items()}


def _item_row(result_id: int, position: int, item: dict[str, Any]) -> EvaluationItem:
    return EvaluationItem(
        result_id=result_id,
        position=position,
        case_id=str(item["id"])[:120],
        category=str(item["category"])[:40],
        prompt=item.get("prompt") or "",
        correct=bool(item["correct"]),
        valid=bool(item["valid"]),
        reason=item.get("reason") or "",
        expected=item.get("expected") or "",
        got=item.get("got") or "",
        reply=item.get("reply") or "",
        error=item.get("error"),
        latency_s=item.get("latency_s"),
        prompt_tokens=item.get("prompt_tokens") or 0,
        completion_tokens=item.get("completion_tokens") or 0,
    )


def _settle(evaluation_id: int, job_id: int) -> None:
    """Leave the evaluation final, whatever ended the job (done, failed, cancelled)."""
    db.session.rollback()
    evaluation = db.session.get(Evaluation, evaluation_id)
    if evaluation is not None and not evaluation.finished:
        job = db.session.get(BackgroundJob, job_id)
        settle_from_job(evaluation, job)
        db.session.commit()
    db.session.remove()


def settle_from_job(evaluation: Evaluation, job: BackgroundJob | None) -> None:
    """Give an unfinished evaluation its job's outcome; results still running are marked as stopped."""
    status = job.status if job is not None else JobStatus.FAILED
    if status == JobStatus.SUCCEEDED:
        evaluation.status = EvaluationStatus.DONE.value
    elif status == JobStatus.CANCELLED:
        evaluation.status = EvaluationStatus.CANCELLED.value
    else:
        evaluation.status = EvaluationStatus.FAILED.value
        evaluation.error = (job.error if job is not None else None) or "The evaluation job was lost."
    for result in evaluation.results:
        if result.status in ("pending", "running"):
            result.status = "stopped" if result.cases else "not run"
    evaluation.finished_at = utcnow()
