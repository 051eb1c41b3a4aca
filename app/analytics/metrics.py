"""Pure computations over chat replies: per-model statistics, daily series and filtering (no Flask, no DB)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta


@dataclass(frozen=True)
class MessageRecord:
    """One assistant reply, as the analytics see it."""

    model_id: int | None
    model_name: str
    created_at: datetime  # naive UTC
    prompt_tokens: int | None
    completion_tokens: int | None
    tokens_estimated: bool
    latency_ms: float | None  # whole generation, request to last token
    ttft_ms: float | None  # time to first token
    tool_calls: int  # number of tool calls in the reply
    tool_calls_valid: bool | None  # None when no tool calls; True when all calls valid
    constrained: bool | None  # grammar-constrained decoding used (None = no tools)
    status: str  # "complete" | "stopped" | "error"
    rating: int | None = None  # the user's verdict in the chat: 1 good, -1 bad (API answers have none)


@dataclass(frozen=True)
class ModelStats:
    """Aggregated figures for one model over a set of replies.

    Latency and TTFT percentiles are over every reply that did not end in an error.
    `tokens_per_second` is the decoding speed: sum(completion_tokens) / sum(latency - ttft), in seconds,
    over complete replies that have both timings, completion_tokens > 0 and latency > ttft. Time to first
    token (prompt processing, queueing) is left out so that long prompts do not make decoding look slow.
    `mean_tokens_per_second` is the plain mean of the same per-reply ratios (each reply weighs the same).
    Validity rates are fractions in [0, 1], or None when there is nothing to divide by.
    """

    model_id: int | None
    model_name: str
    messages: int
    errors: int
    stopped: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    estimated_token_messages: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    tokens_per_second: float | None
    mean_tokens_per_second: float | None
    tool_call_messages: int
    valid_tool_call_messages: int
    validity_rate: float | None
    constrained_tool_call_messages: int
    constrained_validity_rate: float | None
    unconstrained_tool_call_messages: int
    unconstrained_validity_rate: float | None
    first_at: datetime
    last_at: datetime
    rated_good: int = 0
    rated_bad: int = 0

    @property
    def good_rate(self) -> float | None:
        """Share of the rated replies rated good."""
        return _rate(self.rated_good, self.rated_good + self.rated_bad)


@dataclass(frozen=True)
class DayPoint:
    """One model's activity on one UTC day; days without replies have zeros and no latency."""

    model_id: int | None
    model_name: str
    day: date
    messages: int
    total_tokens: int
    latency_p50_ms: float | None


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation, like numpy's default; None when empty."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {q}")
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * q / 100
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _generation_speed(record: MessageRecord) -> tuple[int, float] | None:
    """(completion tokens, decoding seconds) for a reply that counts towards tokens/s, else None."""
    if record.status != "complete" or record.latency_ms is None or record.ttft_ms is None:
        return None
    if not record.completion_tokens or record.completion_tokens <= 0:
        return None
    seconds = (record.latency_ms - record.ttft_ms) / 1000
    if not seconds > 0:  # also rejects NaN
        return None
    return record.completion_tokens, seconds


def _stats_for(model_id: int | None, model_name: str, records: Sequence[MessageRecord]) -> ModelStats:
    answered = [r for r in records if r.status != "error"]
    latencies = [r.latency_ms for r in answered if r.latency_ms is not None]
    ttfts = [r.ttft_ms for r in answered if r.ttft_ms is not None]
    speeds = [s for s in map(_generation_speed, records) if s is not None]
    decoded_tokens = sum(tokens for tokens, _ in speeds)
    decoding_seconds = sum(seconds for _, seconds in speeds)

    with_tools = [r for r in records if r.tool_calls > 0]
    constrained = [r for r in with_tools if r.constrained is True]
    unconstrained = [r for r in with_tools if r.constrained is False]

    def valid(rows: list[MessageRecord]) -> int:
        return sum(1 for r in rows if r.tool_calls_valid is True)

    prompt_tokens = sum(r.prompt_tokens or 0 for r in records)
    completion_tokens = sum(r.completion_tokens or 0 for r in records)
    return ModelStats(
        model_id=model_id,
        model_name=model_name,
        messages=len(records),
        errors=sum(1 for r in records if r.status == "error"),
        stopped=sum(1 for r in records if r.status == "stopped"),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
        estimated_token_messages=sum(1 for r in records if r.tokens_estimated),
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
        ttft_p50_ms=percentile(ttfts, 50),
        ttft_p95_ms=percentile(ttfts, 95),
        tokens_per_second=decoded_tokens / decoding_seconds if speeds else None,
        mean_tokens_per_second=(
            sum(tokens / seconds for tokens, seconds in speeds) / len(speeds) if speeds else None
        ),
        tool_call_messages=len(with_tools),
        valid_tool_call_messages=valid(with_tools),
        validity_rate=_rate(valid(with_tools), len(with_tools)),
        constrained_tool_call_messages=len(constrained),
        constrained_validity_rate=_rate(valid(constrained), len(constrained)),
        unconstrained_tool_call_messages=len(unconstrained),
        unconstrained_validity_rate=_rate(valid(unconstrained), len(unconstrained)),
        first_at=min(r.created_at for r in records),
        last_at=max(r.created_at for r in records),
        rated_good=sum(1 for r in records if r.rating == 1),
        rated_bad=sum(1 for r in records if r.rating == -1),
    )


def _model_key(model_id: int | None, model_name: str) -> tuple:
    """Sort by name as a person reads it, then keep the order stable for equal names."""
    return (model_name.casefold(), model_name, model_id is None, model_id or 0)


def _group_order(key: tuple[int | None, str]) -> tuple:
    return _model_key(*key)


def _group(records: Iterable[MessageRecord]) -> dict[tuple[int | None, str], list[MessageRecord]]:
    groups: dict[tuple[int | None, str], list[MessageRecord]] = defaultdict(list)
    for record in records:
        groups[(record.model_id, record.model_name)].append(record)
    return groups


def model_stats(records: Iterable[MessageRecord]) -> list[ModelStats]:
    """Statistics per (model_id, model_name), sorted by model name."""
    groups = _group(records)
    return [_stats_for(mid, name, groups[(mid, name)]) for mid, name in sorted(groups, key=_group_order)]


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


def daily_series(records: Iterable[MessageRecord], start: date, end: date) -> list[DayPoint]:
    """One point per model per day from start to end inclusive, zero-filled; sorted by model, then day.

    Only models with at least one reply in the range appear. Latency is the median over the day's
    non-error replies. Raises ValueError when end is before start.
    """
    if end < start:
        raise ValueError(f"end ({end}) is before start ({start})")
    groups = _group(filter_records(records, start, end))
    points: list[DayPoint] = []
    for mid, name in sorted(groups, key=_group_order):
        by_day: dict[date, list[MessageRecord]] = defaultdict(list)
        for record in groups[(mid, name)]:
            by_day[record.created_at.date()].append(record)
        for day in _days(start, end):
            rows = by_day.get(day, [])
            points.append(
                DayPoint(
                    model_id=mid,
                    model_name=name,
                    day=day,
                    messages=len(rows),
                    total_tokens=sum((r.prompt_tokens or 0) + (r.completion_tokens or 0) for r in rows),
                    latency_p50_ms=percentile(
                        (r.latency_ms for r in rows if r.status != "error" and r.latency_ms is not None), 50
                    ),
                )
            )
    return points


def series_by_model(points: Iterable[DayPoint]) -> dict[str, list[DayPoint]]:
    """Group daily points by model for charting; names shared by several models get their id appended."""
    grouped: dict[tuple[int | None, str], list[DayPoint]] = defaultdict(list)
    for point in points:
        grouped[(point.model_id, point.model_name)].append(point)
    name_counts: dict[str, int] = defaultdict(int)
    for _, name in grouped:
        name_counts[name] += 1
    series: dict[str, list[DayPoint]] = {}
    for mid, name in sorted(grouped, key=_group_order):
        label = name
        if name_counts[name] > 1:
            label = f"{name} (#{mid})" if mid is not None else f"{name} (deleted)"
        series[label] = sorted(grouped[(mid, name)], key=lambda p: p.day)
    return series


def filter_records(
    records: Iterable[MessageRecord],
    start: date | None = None,
    end: date | None = None,
    model_ids: Collection[int | None] | None = None,
) -> list[MessageRecord]:
    """Records whose UTC day is in [start, end] (each bound optional) and, if given, whose model is listed."""
    kept = []
    for record in records:
        day = record.created_at.date()
        if start is not None and day < start:
            continue
        if end is not None and day > end:
            continue
        if model_ids is not None and record.model_id not in model_ids:
            continue
        kept.append(record)
    return kept
