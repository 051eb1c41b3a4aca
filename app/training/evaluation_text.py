"""How a run's held-out evaluation reads: the measures its config chose, in words, for the run page,
the run's log and the model card pushed to the Hub."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# In the order they are shown; a run's evaluation holds the ones its config chose.
METRIC_LABELS = {
    "tool_call_accuracy": "tool-call accuracy",
    "right_tool_rate": "right tool",
    "valid_call_rate": "valid calls",
    "exact_match": "exact match",
    "eval_loss": "eval loss",
}


def metric_parts(evaluation: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(label, value) for each measure present: rates as percentages, the eval loss as a number."""
    parts = []
    for name, label in METRIC_LABELS.items():
        value = (evaluation or {}).get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            parts.append((label, f"{value:.4f}" if name == "eval_loss" else f"{value:.0%}"))
    return parts


def metrics_text(evaluation: Mapping[str, Any] | None) -> str:
    return ", ".join(f"{label} {value}" for label, value in metric_parts(evaluation))
