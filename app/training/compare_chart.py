"""The loss of several runs on one chart: train loss solid and eval loss dashed, one colour per run,
as server-rendered SVG with every run name escaped."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

from app.analytics.charts import PALETTE, format_tick, nice_ticks
from app.training.charts import FONT, series_svg

WIDTH, PLOT_HEIGHT, LEFT, RIGHT, BOTTOM = 720, 240, 48, 16, 32
LEGEND_ROW, LEGEND_LABEL_CHARS, CHAR_WIDTH = 18, 32, 6.5  # glyph width at font-size 11, for layout
EVAL_DASH = "5 3"
SERIES_PALETTE = (*PALETTE, "#000000")  # a sweep's 8 runs, each its own colour
# Characters XML forbids even escaped: a run name holding one must not break the page.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class RunSeries:
    """One run's name and logged points (dicts with step, loss, eval_loss; either loss may be None)."""

    name: str
    points: list[Mapping[str, Any]] = field(default_factory=list)


def series_colour(index: int) -> str:
    """The colour of the index-th run, shared by the chart and the tables under it."""
    return SERIES_PALETTE[index % len(SERIES_PALETTE)]


def _text(value: object) -> str:
    return str(escape(_XML_INVALID.sub("", str(value))))


def _values(points: list[Mapping[str, Any]], key: str) -> list[tuple[float, float]]:
    """(step, value) sorted by step; a step logged again after a resume keeps its latest value."""
    by_step = {
        p["step"]: p[key]
        for p in points
        if p.get("step") is not None and p.get(key) is not None and math.isfinite(p[key])
    }
    return sorted(by_step.items())


def _legend(runs: list[RunSeries]) -> tuple[list[str], int]:
    """Run names with their colours, wrapped into rows, then the solid / dashed key; (parts, height)."""
    parts, x, y = ['<g class="legend">'], LEFT, 4
    for index, run in enumerate(runs):
        name = _XML_INVALID.sub("", run.name)
        shown = name if len(name) <= LEGEND_LABEL_CHARS else name[: LEGEND_LABEL_CHARS - 1] + "…"
        if not _values(run.points, "loss") and not _values(run.points, "eval_loss"):
            shown += " (no loss logged)"
        width = 22 + len(shown) * CHAR_WIDTH + 18
        if x > LEFT and x + width > WIDTH - RIGHT:
            x, y = LEFT, y + LEGEND_ROW
        parts.append(
            f"<g><title>{_text(name)}</title>"
            f'<line x1="{x}" x2="{x + 16}" y1="{y + 6}" y2="{y + 6}" stroke="{series_colour(index)}" '
            f'stroke-width="3"/>'
            f'<text x="{x + 22}" y="{y + 10}" fill="currentColor">{_text(shown)}</text></g>'
        )
        x += width
    y += LEGEND_ROW
    parts.append(
        f'<g class="legend-key" fill="currentColor" fill-opacity="0.75">'
        f'<line x1="{LEFT}" x2="{LEFT + 16}" y1="{y + 6}" y2="{y + 6}" stroke="currentColor" '
        f'stroke-width="2"/>'
        f'<text x="{LEFT + 22}" y="{y + 10}">train loss</text>'
        f'<line x1="{LEFT + 100}" x2="{LEFT + 116}" y1="{y + 6}" y2="{y + 6}" stroke="currentColor" '
        f'stroke-width="2" stroke-dasharray="{EVAL_DASH}"/>'
        f'<text x="{LEFT + 122}" y="{y + 10}">eval loss</text></g></g>'
    )
    return parts, y + LEGEND_ROW + 6


def _placeholder(message: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} 60" {FONT} role="img" aria-label="{_text(message)}">'
        f'<text x="{WIDTH / 2}" y="34" text-anchor="middle" fill="currentColor" fill-opacity="0.7">'
        f"{_text(message)}</text></svg>"
    )


def compare_loss_chart_svg(runs: list[RunSeries]) -> Markup:
    """Train loss (solid) and eval loss (dashed) of each run against the step, one colour per run."""
    all_points = [
        (s, v) for run in runs for key in ("loss", "eval_loss") for s, v in _values(run.points, key)
    ]
    if not all_points:
        return _placeholder("No loss logged yet for these runs")
    legend, top = _legend(runs)
    height = top + PLOT_HEIGHT + BOTTOM
    plot_w = WIDTH - LEFT - RIGHT
    y_ticks = nice_ticks(max(v for _, v in all_points))
    x_ticks = nice_ticks(max(s for s, _ in all_points), integer=True)
    y_max, x_max = y_ticks[-1] or 1.0, x_ticks[-1] or 1

    def x(step: float) -> float:
        return LEFT + step / x_max * plot_w

    def y(value: float) -> float:
        return top + PLOT_HEIGHT - value / y_max * PLOT_HEIGHT

    names = ", ".join(run.name for run in runs)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{_text("Loss by step: " + names)}" font-family="system-ui, sans-serif" font-size="11">',
        *legend,
    ]
    for tick in y_ticks:
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="currentColor" stroke-opacity="{0.4 if tick == 0 else 0.12}"/>'
            f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="currentColor">'
            f"{_text(format_tick(tick))}</text>"
        )
    for tick in x_ticks:
        parts.append(
            f'<text x="{x(tick):.1f}" y="{top + PLOT_HEIGHT + 16}" text-anchor="middle" fill="currentColor">'
            f"{_text(format_tick(tick))}</text>"
        )
    parts.append(
        f'<text x="{WIDTH - RIGHT}" y="{height - 2}" text-anchor="end" fill="currentColor" '
        f'fill-opacity="0.7">step</text>'
    )
    for index, run in enumerate(runs):
        colour = series_colour(index)
        for key, label, dash in (("loss", "train loss", ""), ("eval_loss", "eval loss", EVAL_DASH)):
            series = _values(run.points, key)
            if not series:
                continue
            parts.append(series_svg(series, x, y, colour, dash, _text(f"{run.name} · {label}")))
    parts.append("</svg>")
    return Markup("".join(parts))
