"""The loss chart of a run: train and eval loss against the step, as server-rendered SVG."""

from __future__ import annotations

from collections.abc import Callable

from markupsafe import Markup, escape

from app.analytics.charts import format_tick, nice_ticks

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 640, 220, 48, 12, 12, 28
# In the chart's own units: inherited from the page, the labels grew with the chart's width.
FONT = 'font-size="12"'
SERIES = (("loss", "train loss", "#2f5bd3", ""), ("eval_loss", "eval loss", "#c2410c", "5 3"))


def loss_chart_svg(points: list[dict[str, float | None]]) -> Markup:
    """`points`: dicts with step, loss, eval_loss (either may be None)."""
    usable = [p for p in points if p.get("loss") is not None or p.get("eval_loss") is not None]
    if not usable:
        return Markup(
            f'<svg class="chart" viewBox="0 0 {WIDTH} 60" {FONT} role="img" aria-label="No loss logged yet">'
            f'<text x="{WIDTH / 2}" y="34" text-anchor="middle" class="muted">No loss logged yet</text></svg>'
        )
    steps = [p["step"] for p in usable]
    values = [v for p in usable for v in (p.get("loss"), p.get("eval_loss")) if v is not None]
    top = nice_ticks(max(values))
    y_max = top[-1] or 1.0
    x_min, x_max = min(steps), max(max(steps), min(steps) + 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(step: float) -> float:
        return LEFT + (step - x_min) / (x_max - x_min) * plot_w

    def y(value: float) -> float:
        return TOP + plot_h - value / y_max * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" {FONT} role="img" aria-label="Loss by step">'
    ]
    for tick in top:
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{escape(format_tick(tick))}</text>'
        )
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - 6}">step {x_min}</text>')
    parts.append(f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 6}" text-anchor="end">step {x_max}</text>')
    for key, label, colour, dash in SERIES:
        series = [(p["step"], p[key]) for p in usable if p.get(key) is not None]
        if not series:
            continue
        parts.append(series_svg(series, x, y, colour, dash, escape(label)))
    parts.append("</svg>")
    return Markup("".join(parts))


def series_svg(
    series: list[tuple[float, float]], x: Callable, y: Callable, colour: str, dash: str, title: str
) -> str:
    """One line of (step, value) points; a lone point is drawn as a dot so it is seen. `title` is escaped."""
    path = " ".join(f"{'M' if i == 0 else 'L'}{x(s):.1f},{y(v):.1f}" for i, (s, v) in enumerate(series))
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    svg = (
        f'<path class="series" d="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash_attr}>'
        f"<title>{title}</title></path>"
    )
    if len(series) == 1:
        s, v = series[0]
        svg += f'<circle cx="{x(s):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>'
    return svg
