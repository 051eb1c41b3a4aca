"""Server-rendered SVG charts of daily usage: no JavaScript, no external assets, every text escaped."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup, escape

from app.analytics.metrics import DayPoint


@dataclass(frozen=True)
class ChartMetric:
    """What a chart plots: a DayPoint field, how to name it and how to print one value."""

    label: str
    value: Callable[[DayPoint], float | None]
    describe: Callable[[float], str]
    integer: bool


CHART_METRICS: dict[str, ChartMetric] = {
    "messages": ChartMetric(
        "Messages", lambda p: p.messages, lambda v: f"{v:,.0f} message{'' if v == 1 else 's'}", True
    ),
    "total_tokens": ChartMetric("Total tokens", lambda p: p.total_tokens, lambda v: f"{v:,.0f} tokens", True),
    "latency_p50_ms": ChartMetric(
        "Median latency (ms)", lambda p: p.latency_p50_ms, lambda v: f"{v:,.0f} ms median latency", False
    ),
}

# Okabe-Ito colours (colour-blind safe, yellow left out for contrast on white); dashes tell apart
# models that share a colour once there are more models than colours.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#999999")
DASHES = ("", "6 3", "2 3")

_LEGEND_ROW = 18
_LEGEND_LABEL_CHARS = 28
_CHAR_WIDTH = 6.5  # average glyph width at font-size 11, for layout estimates
# Characters XML 1.0 forbids even when escaped: a model name containing one must not break the page.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: object) -> str:
    """Escape for XML text and attribute values, dropping characters XML cannot carry."""
    return str(escape(_XML_INVALID.sub("", str(value))))


def _num(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def nice_ticks(maximum: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values from 0 to at least maximum, about `count` steps of 1, 2, 2.5 or 5 times 10^n."""
    if not maximum > 0 or math.isinf(maximum):
        maximum = 1
    raw_step = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw_step))
    multipliers = (1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10)
    step = next(m * magnitude for m in multipliers if raw_step <= m * magnitude * (1 + 1e-9))
    if integer:
        step = max(1, round(step))
    steps = math.ceil(maximum / step - 1e-9)
    return [round(i * step, 10) for i in range(steps + 1)]


def format_tick(value: float) -> str:
    """Short axis label: 950, 1.5k, 2.5M, 0.25."""
    for threshold, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:.3g}{suffix}"
    return f"{value:.3g}"


def _day_label(day: date, with_year: bool) -> str:
    return day.isoformat() if with_year else f"{day:%b} {day.day}"


def _placeholder(width: int, height: int, message: str) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="analytics-chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{_text(message)}" '
        f'font-family="system-ui, sans-serif" font-size="13">'
        f"<title>{_text(message)}</title>"
        f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="none" stroke="currentColor" '
        f'stroke-opacity="0.2" stroke-dasharray="4 4" rx="6"/>'
        f'<text x="{width / 2:.1f}" y="{height / 2:.1f}" text-anchor="middle" dominant-baseline="middle" '
        f'fill="currentColor" fill-opacity="0.7">{_text(message)}</text></svg>'
    )


def _legend(labels: list[str], width: int, left: int) -> tuple[list[str], int]:
    """Legend items wrapped into rows; returns the SVG parts and the height they take."""
    parts = ['<g class="legend">']
    x, y = left, 8
    for index, label in enumerate(labels):
        label = _XML_INVALID.sub("", label)
        shown = label if len(label) <= _LEGEND_LABEL_CHARS else label[: _LEGEND_LABEL_CHARS - 1] + "…"
        item_width = 20 + len(shown) * _CHAR_WIDTH + 16
        if x > left and x + item_width > width - 8:
            x, y = left, y + _LEGEND_ROW
        colour, dash = _style(index)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f"<g><title>{_text(label)}</title>"
            f'<line x1="{x}" y1="{y + 6}" x2="{x + 14}" y2="{y + 6}" stroke="{colour}" stroke-width="3"'
            f"{dash_attr}/>"
            f'<text x="{x + 20}" y="{y + 10}" fill="currentColor">{_text(shown)}</text></g>'
        )
        x += item_width
    parts.append("</g>")
    return parts, y + _LEGEND_ROW


def _style(index: int) -> tuple[str, str]:
    return PALETTE[index % len(PALETTE)], DASHES[(index // len(PALETTE)) % len(DASHES)]


def daily_chart_svg(
    series_by_model: dict[str, list[DayPoint]],
    metric: str = "messages",
    width: int = 720,
    height: int = 240,
) -> Markup:
    """A line chart of one daily metric, one line per model, as inline SVG safe to put in a template."""
    if metric not in CHART_METRICS:
        raise ValueError(f"unknown chart metric {metric!r}; choose from {', '.join(CHART_METRICS)}")
    spec = CHART_METRICS[metric]
    days = sorted({point.day for points in series_by_model.values() for point in points})
    if not any(point.messages for points in series_by_model.values() for point in points):
        return _placeholder(width, height, "No messages in this range")

    left, right, bottom = 52, 24, 24
    labels = list(series_by_model)
    legend, legend_height = _legend(labels, width, left)
    top = legend_height + 10
    plot_width = width - left - right
    plot_height = max(height - top - bottom, 20)
    height = top + plot_height + bottom

    values = [spec.value(p) for points in series_by_model.values() for p in points]
    ticks = nice_ticks(max((v for v in values if v is not None), default=0), integer=spec.integer)
    y_max = ticks[-1]

    day_index = {day: index for index, day in enumerate(days)}

    def x_at(day: date) -> float:
        if len(days) == 1:
            return left + plot_width / 2
        return left + plot_width * day_index[day] / (len(days) - 1)

    def y_at(value: float) -> float:
        return top + plot_height * (1 - value / y_max)

    description = (
        f"{spec.label} per day from {days[0].isoformat()} to {days[-1].isoformat()}, "
        f"{len(labels)} model{'' if len(labels) == 1 else 's'}: {', '.join(labels)}"
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="analytics-chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{_text(description)}" '
        f'font-family="system-ui, sans-serif" font-size="11">',
        f"<title>{_text(description)}</title>",
        *legend,
        '<g class="y-axis">',
    ]
    for tick in ticks:
        y = _num(y_at(tick))
        parts.append(
            f'<line x1="{left}" y1="{y}" x2="{width - right}" y2="{y}" stroke="currentColor" '
            f'stroke-opacity="{0.4 if tick == 0 else 0.12}"/>'
            f'<text x="{left - 6}" y="{y}" text-anchor="end" dominant-baseline="middle" '
            f'fill="currentColor">{_text(format_tick(tick))}</text>'
        )
    parts.append("</g>")

    # Thin the day labels out so that they never overlap.
    with_year = days[0].year != days[-1].year
    label_width = max(len(_day_label(day, with_year)) for day in days) * _CHAR_WIDTH + 10
    every = max(1, math.ceil(len(days) / max(1, int(plot_width // label_width))))
    parts.append('<g class="x-axis">')
    for index, day in enumerate(days):
        if index % every == 0:
            parts.append(
                f'<text x="{_num(x_at(day))}" y="{top + plot_height + 16}" text-anchor="middle" '
                f'fill="currentColor">{_text(_day_label(day, with_year))}</text>'
            )
    parts.append("</g>")

    for index, (label, points) in enumerate(series_by_model.items()):
        colour, dash = _style(index)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<g class="series" aria-label="{_text(label)}">')
        segment: list[str] = []
        segments: list[list[str]] = [segment]
        markers: list[str] = []
        for point in sorted(points, key=lambda p: p.day):
            value = spec.value(point)
            if value is None:  # no latency that day: break the line rather than draw a fake zero
                segment = []
                segments.append(segment)
                continue
            x, y = _num(x_at(point.day)), _num(y_at(value))
            segment.append(f"{x},{y}")
            tooltip = f"{label} · {point.day:%a} {point.day.isoformat()}: {spec.describe(value)}"
            markers.append(
                f'<circle cx="{x}" cy="{y}" r="3" fill="{colour}"><title>{_text(tooltip)}</title></circle>'
            )
        for line in segments:
            if len(line) > 1:
                parts.append(
                    f'<polyline points="{" ".join(line)}" fill="none" stroke="{colour}" stroke-width="2" '
                    f'stroke-linejoin="round"{dash_attr}/>'
                )
        parts.extend(markers)
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))
