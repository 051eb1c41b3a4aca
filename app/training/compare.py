"""Compare 2 to 4 training runs: which ids were asked for, how their config snapshots differ, and what
each run achieved (losses and speed from its logged metrics, duration, held-out evaluation)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.extensions import db
from app.models import LLMModel, RunMetric, TrainingRun
from app.ownership import visible

MIN_RUNS, MAX_RUNS = 2, 4
_MAX_ID = 2**63 - 1  # beyond what the database stores: not an id at all
_SHOWN_BAD_ID_CHARS = 20


class CompareError(ValueError):
    """The picked runs cannot be compared (too few, too many, not run ids); the message says why."""


class _Missing:
    """A key the run's config does not have (older snapshots lack newer keys)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def parse_run_ids(values: Iterable[str]) -> list[int]:
    """The distinct run ids in the order given; CompareError when one is not an id or the count is off."""
    ids: dict[int, None] = {}  # an ordered set
    for raw in values:
        text = raw.strip()
        # The length check comes first: int() refuses strings of thousands of digits.
        if not (text.isascii() and text.isdecimal() and len(text) <= 19 and 0 < int(text) <= _MAX_ID):
            shown = text if len(text) <= _SHOWN_BAD_ID_CHARS else text[: _SHOWN_BAD_ID_CHARS - 1] + "…"
            raise CompareError(f"“{shown}” is not a run id: tick the runs to compare in the list of runs.")
        ids[int(text)] = None
    if len(ids) < MIN_RUNS:
        picked = "no run" if not ids else "1 run"
        raise CompareError(f"Pick {MIN_RUNS} to {MAX_RUNS} runs to compare (you picked {picked}).")
    if len(ids) > MAX_RUNS:
        raise CompareError(f"Pick at most {MAX_RUNS} runs to compare (you picked {len(ids)}).")
    return list(ids)


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested sections become dotted keys (`training.learning_rate`); lists and scalars are leaves."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_config(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _comparable(value: Any) -> tuple:
    # 2 and 2.0 are the same setting (JSON round trips change one into the other); True and 1 are not.
    if value is MISSING:
        return ("missing",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", float(value))
    return ("json", json.dumps(value, sort_keys=True, default=str))


def format_value(value: Any) -> str:
    """A config value as the table shows it: strings as they are, everything else as JSON."""
    if value is MISSING:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


@dataclass(frozen=True)
class ConfigRow:
    key: str
    values: tuple[Any, ...]  # one per run, MISSING where the run's config has no such key

    @property
    def differs(self) -> bool:
        return len({_comparable(v) for v in self.values}) > 1

    @property
    def shown(self) -> tuple[str, ...]:
        return tuple(format_value(v) for v in self.values)


def config_rows(configs: list[Mapping[str, Any]], only_differences: bool = True) -> list[ConfigRow]:
    """One row per dotted key in any of the configs, sorted; only the differing ones unless asked."""
    flat = [flatten_config(c or {}) for c in configs]
    keys = sorted({key for f in flat for key in f})
    rows = [ConfigRow(key, tuple(f.get(key, MISSING) for f in flat)) for key in keys]
    return [r for r in rows if r.differs] if only_differences else rows


@dataclass(frozen=True)
class MetricSummary:
    final_loss: float | None = None
    last_eval_loss: float | None = None
    mean_tokens_per_second: float | None = None


def summarise_metrics(points: list[Mapping[str, Any]]) -> MetricSummary:
    """Last train loss, last eval loss and mean throughput of a run's logged rows (in logging order)."""

    def usable(key: str) -> list[float]:
        return [p[key] for p in points if p.get(key) is not None and math.isfinite(p[key])]

    losses, eval_losses, speeds = usable("loss"), usable("eval_loss"), usable("tokens_per_second")
    return MetricSummary(
        final_loss=losses[-1] if losses else None,
        last_eval_loss=eval_losses[-1] if eval_losses else None,
        mean_tokens_per_second=sum(speeds) / len(speeds) if speeds else None,
    )


def format_duration(started: datetime | None, finished: datetime | None) -> str:
    """“1 h 02 min”, “3 min 05 s”, “42 s”; “—” unless both ends are known."""
    if started is None or finished is None or finished < started:
        return "—"
    seconds = round((finished - started).total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"


@dataclass
class RunColumn:
    """One compared run with what the page shows of it."""

    run: TrainingRun
    points: list[dict[str, Any]]
    summary: MetricSummary
    duration: str
    models: list[LLMModel] = field(default_factory=list)

    @property
    def evaluation(self) -> dict[str, Any]:
        """The held-out figures, when the export evaluated the model (a Teacher Mode report alone is not)."""
        figures = self.run.evaluation or {}
        return figures if "tool_call_accuracy" in figures else {}


def run_columns(runs: list[TrainingRun]) -> list[RunColumn]:
    """Each run's metric points, summary, duration and registered models, in the order given."""
    ids = [run.id for run in runs]
    metrics = db.session.execute(
        db.select(RunMetric).where(RunMetric.run_id.in_(ids)).order_by(RunMetric.id)
    ).scalars()
    points: dict[int, list[dict[str, Any]]] = {run_id: [] for run_id in ids}
    for m in metrics:
        points[m.run_id].append(
            {
                "step": m.step,
                "loss": m.loss,
                "eval_loss": m.eval_loss,
                "tokens_per_second": m.tokens_per_second,
            }
        )
    model_ids = {model_id for run in runs for model_id in (run.model_ids or [])}
    models = {}
    if model_ids:
        # Only the models each run registered: SQLite gives a deleted model's id to the next model
        # (anyone's global one), which `model_ids` would otherwise name as the run's.
        query = visible(LLMModel).where(
            LLMModel.id.in_(model_ids), LLMModel.training_run_id.in_([run.id for run in runs])
        )
        models = {m.id: m for m in db.session.execute(query).scalars()}

    def registered_by(run: TrainingRun) -> list[LLMModel]:
        mine = (models.get(i) for i in run.model_ids or [])
        return [
            m for m in mine if m is not None and m.training_run_id == run.id and m.owner_id == run.owner_id
        ]

    return [
        RunColumn(
            run=run,
            points=points[run.id],
            summary=summarise_metrics(points[run.id]),
            duration=format_duration(run.started_at, run.finished_at),
            models=registered_by(run),
        )
        for run in runs
    ]
