"""Sweeps: one config on one dataset, run once per combination of a few hyper-parameter values (learning
rate, LoRA rank, epochs), each combination linted like a single run, then compared on one page.

Tiny models train in minutes, so trying three learning rates is cheaper than guessing one. The grid is
small on purpose (MAX_SWEEP_RUNS): runs queue on the `train` workers one after another.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask_login import current_user

from app.configs.linter import LintReport, lint
from app.configs.services import lint_context
from app.extensions import db
from app.models import Dataset, TrainingConfig, TrainingRun, TrainingSweep
from app.queueing import EnqueueError
from app.training.compare import RunColumn, run_columns
from app.training.services import enqueue_run

MAX_SWEEP_RUNS = 8  # the chart's colours, and a day of CPU for small runs
MAX_VALUES_PER_AXIS = 8
_SEPARATORS = re.compile(r"[,;\s]+")


class SweepError(ValueError):
    """The sweep cannot start as asked; the message says why (and `report`, a point's lint, when one)."""

    def __init__(self, message: str, report: LintReport | None = None, label: str = ""):
        super().__init__(message)
        self.report = report
        self.label = label


@dataclass(frozen=True)
class Axis:
    key: str  # the dotted config key
    label: str  # for messages and the sweep page's column
    short: str  # for run names: "lr 0.0001 · r 8"
    parse: Callable[[str], float | int]


def _positive_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError
    return value


def _positive_int(text: str) -> int:
    if not text.isascii() or not text.isdecimal() or len(text) > 6 or int(text) < 1:
        raise ValueError
    return int(text)


AXES = (
    Axis("training.learning_rate", "learning rate", "lr", _positive_float),
    Axis("training.lora_r", "LoRA rank", "r", _positive_int),
    Axis("training.num_epochs", "epochs", "epochs", _positive_float),
)
AXES_BY_KEY = {axis.key: axis for axis in AXES}


def parse_values(text: str, axis: Axis) -> list[float | int]:
    """The distinct values of a comma- or space-separated list, in the order given; SweepError names the
    first value that is not a positive number of the axis's kind."""
    values: dict[float | int, None] = {}  # an ordered set
    for token in _SEPARATORS.split(text.strip()):
        if not token:
            continue
        try:
            value = axis.parse(token)
        except (ValueError, OverflowError):
            shown = token if len(token) <= 20 else token[:19] + "…"
            kind = "a whole number of at least 1" if axis.parse is _positive_int else "a positive number"
            raise SweepError(f"“{shown}” is not a {axis.label}: each value must be {kind}.") from None
        values[value] = None
    if len(values) > MAX_VALUES_PER_AXIS:
        raise SweepError(f"At most {MAX_VALUES_PER_AXIS} values of {axis.label} ({len(values)} given).")
    return list(values)


def parse_axes(texts: Mapping[str, str | None]) -> dict[str, list[float | int]]:
    """{config key: values} for the axes given a value list (key → text), in AXES order."""
    axes = {}
    for axis in AXES:
        values = parse_values(texts.get(axis.key) or "", axis)
        if values:
            axes[axis.key] = values
    return axes


def grid(axes: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination, the first axis varying slowest: [{key: value, ...}, ...]."""
    keys = list(axes)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*axes.values())]


def check_grid_size(axes: Mapping[str, list[Any]]) -> None:
    runs = math.prod(len(values) for values in axes.values())
    if runs > MAX_SWEEP_RUNS:
        sizes = " × ".join(str(len(values)) for values in axes.values())
        raise SweepError(f"A sweep runs at most {MAX_SWEEP_RUNS} combinations; {sizes} makes {runs}.")
    if runs < 2:
        raise SweepError("A sweep needs at least two values of one setting (one value is a single run).")


def apply_point(config: Mapping[str, Any], point: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the config with each dotted key set to the point's value."""
    result = copy.deepcopy(dict(config))
    for key, value in point.items():
        section, name = key.split(".", 1)
        result[section] = {**result.get(section, {}), name: value}
    return result


def axis_label(key: str) -> str:
    return AXES_BY_KEY[key].label if key in AXES_BY_KEY else key


def format_number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def point_label(point: Mapping[str, Any]) -> str:
    """“lr 0.0001 · r 8” for run names and the chart's legend."""
    return " · ".join(
        f"{AXES_BY_KEY[key].short if key in AXES_BY_KEY else key} {format_number(value)}"
        for key, value in point.items()
    )


def pointless_axes(config: Mapping[str, Any], axes: Mapping[str, Any]) -> str | None:
    """Why sweeping an axis would change nothing for this config, or None."""
    training = config.get("training", {})
    if "training.lora_r" in axes and training.get("use_lora") is False:
        return (
            "The config trains without LoRA: the LoRA rank changes nothing. Turn LoRA on or drop the ranks."
        )
    if "training.num_epochs" in axes and training.get("max_steps"):
        return (
            f"The config stops at max_steps {training['max_steps']}: the epochs change nothing. "
            "Clear max steps or drop the epochs."
        )
    return None


# --- with the database and the signed-in user ---------------------------------------------------------


def _point_config(config: TrainingConfig, dataset: Dataset, point: Mapping[str, Any]) -> dict[str, Any]:
    raw = apply_point(config.config, point)
    raw["data"] = {**raw.get("data", {}), "dataset": dataset.name}
    return raw


def lint_sweep(
    config: TrainingConfig, dataset: Dataset, axes: Mapping[str, list[Any]]
) -> list[tuple[dict[str, Any], LintReport]]:
    """Each combination with its lint at submit; SweepError when the grid itself is wrong."""
    check_grid_size(axes)
    if reason := pointless_axes(config.config, axes):
        raise SweepError(reason)
    # A sweep changes no setting the context depends on (model, QLoRA): one context for every point.
    context = lint_context(config.config, submitting=True)
    return [(point, lint(_point_config(config, dataset, point), context)) for point in grid(axes)]


def start_sweep(
    config: TrainingConfig, dataset: Dataset, axes: Mapping[str, list[Any]], name: str = ""
) -> TrainingSweep:
    """All the runs or none: every combination must pass the linter before one is queued."""
    if dataset.status != "ready":
        raise SweepError("That dataset is not ready yet.")
    points = lint_sweep(config, dataset, axes)
    for point, report in points:
        if not report.ok:
            label = point_label(point)
            raise SweepError(f"The config has errors for this dataset at {label}.", report, label)
    base = (name.strip() or f"{config.name} on {dataset.name}")[:120]
    sweep = TrainingSweep(
        owner_id=current_user.id,
        name=base,
        config_id=config.id,
        config_name=config.name,
        dataset_id=dataset.id,
        dataset_name=dataset.name,
        axes={key: list(values) for key, values in axes.items()},
    )
    db.session.add(sweep)
    db.session.flush()
    runs = [
        TrainingRun(
            owner_id=current_user.id,
            name=f"{base} · {point_label(point)}"[:160],
            config_id=config.id,
            config=report.config.model_dump(mode="json"),
            dataset_id=dataset.id,
            dataset_name=dataset.name,
            sweep_id=sweep.id,
            sweep_point=point,
        )
        for point, report in points
    ]
    db.session.add_all(runs)
    config.times_used += len(runs)
    db.session.commit()
    for queued, run in enumerate(runs):
        try:
            enqueue_run(run, resume=False)
        except EnqueueError as exc:
            _drop_unqueued(sweep, config, runs[queued:])
            raise EnqueueError(f"{exc} {queued} of the sweep's {len(runs)} runs were queued.") from exc
        except Exception:  # a database error, say: the runs not queued must not wait forever either
            db.session.rollback()
            _drop_unqueued(sweep, config, [db.session.merge(run) for run in runs[queued:]])
            raise
    return sweep


def _drop_unqueued(sweep: TrainingSweep, config: TrainingConfig, runs: list[TrainingRun]) -> None:
    """Runs that never reached the queue would wait forever: remove them (and an empty sweep)."""
    for run in runs:
        db.session.delete(run)
    config.times_used -= len(runs)
    db.session.flush()
    if not db.session.execute(db.select(TrainingRun.id).where(TrainingRun.sweep_id == sweep.id)).first():
        db.session.delete(sweep)
    db.session.commit()


def sweep_runs(sweep: TrainingSweep) -> list[TrainingRun]:
    query = db.select(TrainingRun).where(
        TrainingRun.sweep_id == sweep.id, TrainingRun.owner_id == sweep.owner_id
    )
    return list(db.session.execute(query.order_by(TrainingRun.id)).scalars())


@dataclass
class SweepRow:
    """One run of the sweep as its table shows it."""

    column: RunColumn
    values: list[str]  # the swept values, in the sweep's axis order
    label: str

    @property
    def run(self) -> TrainingRun:
        return self.column.run

    @property
    def eval_loss(self) -> float | None:
        """The weights the run kept (its best evaluation with early stopping, else its last one)."""
        if self.run.best_eval_loss is not None:
            return self.run.best_eval_loss
        return self.column.summary.last_eval_loss

    @property
    def accuracy(self) -> float | None:
        return self.column.evaluation.get("tool_call_accuracy")


@dataclass
class SweepTable:
    rows: list[SweepRow]
    best_eval_loss_id: int | None  # the run with the lowest eval loss
    best_accuracy_id: int | None  # the run with the highest held-out tool-call accuracy

    @property
    def finished(self) -> bool:
        return all(row.run.is_final for row in self.rows)


def sweep_table(sweep: TrainingSweep, runs: list[TrainingRun]) -> SweepTable:
    keys = list(sweep.axes or {})
    rows = [
        SweepRow(
            column=column,
            values=[format_number((column.run.sweep_point or {}).get(key, "—")) for key in keys],
            label=point_label(column.run.sweep_point or {}) or column.run.name,
        )
        for column in run_columns(runs)
    ]
    with_loss = [row for row in rows if row.eval_loss is not None]
    with_accuracy = [row for row in rows if row.accuracy is not None]
    return SweepTable(
        rows=rows,
        best_eval_loss_id=min(with_loss, key=lambda r: r.eval_loss).run.id if len(with_loss) > 1 else None,
        best_accuracy_id=max(with_accuracy, key=lambda r: r.accuracy).run.id
        if len(with_accuracy) > 1
        else None,
    )
