"""A registered model's evaluation in words, for its card and its page: the labels and percentages the
run page shows, not the raw JSON the training pipeline (or someone editing the model) stored."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.training.evaluation_text import METRIC_LABELS, metric_parts

# Keys of a run's evaluation that describe it rather than measure the model.
HELD_OUT_ROWS = "eval_rows"
SKIPPED_ROWS = "skipped_rows"
EVALUATED_FILE = "model"
NOT_MEASURES = {HELD_OUT_ROWS, SKIPPED_ROWS, EVALUATED_FILE, *METRIC_LABELS}


@dataclass(frozen=True)
class EvaluationSummary:
    """What the card and the page say about a model's evaluation."""

    held_out_rows: str | None = None
    skipped_rows: str | None = None
    evaluated_file: str | None = None
    measures: list[tuple[str, str]] = field(default_factory=list)  # (label, value), in the run page's order

    def __bool__(self) -> bool:
        return bool(self.held_out_rows or self.measures)


def evaluation_summary(metrics: Mapping[str, Any] | None) -> EvaluationSummary:
    """The run page's measures first (same labels, rates as percentages), then any other key typed in."""
    if not isinstance(metrics, Mapping):
        return EvaluationSummary()
    typed_in = [
        (key.replace("_", " "), shown_value(key, value))
        for key, value in metrics.items()
        if key not in NOT_MEASURES
    ]
    return EvaluationSummary(
        held_out_rows=_count(metrics.get(HELD_OUT_ROWS)),
        skipped_rows=_count(metrics.get(SKIPPED_ROWS)),
        evaluated_file=str(metrics[EVALUATED_FILE]) if metrics.get(EVALUATED_FILE) else None,
        measures=metric_parts(metrics) + typed_in,
    )


def shown_value(key: str, value: Any) -> str:
    """A hand-typed measure: a rate in [0, 1] as a percentage (a loss stays a number), a count whole."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if 0 <= value <= 1 and "loss" not in key:
            return f"{value:.0%}"
        return f"{value:.4g}"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _count(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{round(value):,}"
    return None
