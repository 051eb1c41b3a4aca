"""The model statistics table, defined once: the page renders STATS_COLUMNS and the CSV export writes them."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import datetime

from app.analytics.metrics import ModelStats

# Spreadsheets run a cell that starts with one of these as a formula (OWASP "CSV injection").
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NEGATIVE_NUMBER = re.compile(r"-\d+(\.\d+)?%?")


def _count(value: int) -> str:
    return str(value)


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def _speed(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


def _timestamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


# (header, formatter) pairs. Empty string means "no data"; a template may show it as a dash.
STATS_COLUMNS: list[tuple[str, Callable[[ModelStats], str]]] = [
    ("Model", lambda s: s.model_name),
    ("Messages", lambda s: _count(s.messages)),
    ("Errors", lambda s: _count(s.errors)),
    ("Stopped", lambda s: _count(s.stopped)),
    ("Prompt tokens", lambda s: _count(s.prompt_tokens)),
    ("Completion tokens", lambda s: _count(s.completion_tokens)),
    ("Total tokens", lambda s: _count(s.total_tokens)),
    ("Estimated token counts", lambda s: _count(s.estimated_token_messages)),
    ("Latency p50 (ms)", lambda s: _ms(s.latency_p50_ms)),
    ("Latency p95 (ms)", lambda s: _ms(s.latency_p95_ms)),
    ("TTFT p50 (ms)", lambda s: _ms(s.ttft_p50_ms)),
    ("TTFT p95 (ms)", lambda s: _ms(s.ttft_p95_ms)),
    ("Tokens/s", lambda s: _speed(s.tokens_per_second)),
    ("Mean tokens/s", lambda s: _speed(s.mean_tokens_per_second)),
    ("Tool-call messages", lambda s: _count(s.tool_call_messages)),
    ("Valid tool calls", lambda s: _count(s.valid_tool_call_messages)),
    ("Validity", lambda s: _percent(s.validity_rate)),
    ("Constrained validity", lambda s: _percent(s.constrained_validity_rate)),
    ("Unconstrained validity", lambda s: _percent(s.unconstrained_validity_rate)),
    ("Rated good", lambda s: _count(s.rated_good)),
    ("Rated bad", lambda s: _count(s.rated_bad)),
    ("First message (UTC)", lambda s: _timestamp(s.first_at)),
    ("Last message (UTC)", lambda s: _timestamp(s.last_at)),
]


def stats_row(stats: ModelStats) -> list[str]:
    """One table row: every STATS_COLUMNS formatter applied to the stats."""
    return [format_cell(stats) for _, format_cell in STATS_COLUMNS]


def csv_safe(value: str) -> str:
    """Prefix an apostrophe to a cell a spreadsheet would run as a formula; negative numbers stay numbers."""
    if value.startswith(_FORMULA_PREFIXES) and not _NEGATIVE_NUMBER.fullmatch(value):
        return "'" + value
    return value


def stats_csv(stats: list[ModelStats]) -> str:
    """The statistics table as CSV text with a header row, formatted exactly like the page's table."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([csv_safe(header) for header, _ in STATS_COLUMNS])
    for row in stats:
        writer.writerow([csv_safe(cell) for cell in stats_row(row)])
    return buffer.getvalue()
