"""Analytics: per-model figures, a per-day chart, filters, side-by-side comparison, CSV export."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from flask import Response, render_template, request, url_for
from flask_login import login_required

from app.analytics import bp
from app.analytics.charts import daily_chart_svg
from app.analytics.export import STATS_COLUMNS, stats_csv, stats_row
from app.analytics.forms import AnalyticsFilterForm, today
from app.analytics.metrics import daily_series, model_stats, series_by_model
from app.analytics.queries import AnalyticsFilter, models_with_messages, source_choices, user_records
from app.chat.services import user_tags
from app.ownership import MAX_ROW_ID

CHART_METRICS = {"messages": "Messages per day", "total_tokens": "Tokens per day"}


def _filters() -> tuple[AnalyticsFilterForm, AnalyticsFilter]:
    form = AnalyticsFilterForm(request.args)
    form.tag.choices = [("", "All sessions")] + [(t, t) for t in user_tags()]
    form.models.choices = models_with_messages()
    form.source.choices = source_choices()
    if not form.validate():
        end = today()
        return form, AnalyticsFilter(start=end - timedelta(days=29), end=end)
    start, end = form.date_range()
    known = {value for value, _ in form.source.choices}
    return form, AnalyticsFilter(
        start=start,
        end=end,
        tag=form.tag.data or None,
        model_ids=[m for m in form.models.data or [] if 0 < m <= MAX_ROW_ID],  # 10**30 is no row
        source=form.source.data if form.source.data in known else "",
    )


@bp.route("/")
@login_required
def index():
    form, filters = _filters()
    records = user_records(filters)
    stats = model_stats(records)
    metric = request.args.get("metric") if request.args.get("metric") in CHART_METRICS else "messages"
    chart = daily_chart_svg(series_by_model(daily_series(records, filters.start, filters.end)), metric=metric)
    return render_template(
        "analytics/index.html",
        form=form,
        filters=filters,
        stats=stats,
        columns=STATS_COLUMNS,
        rows=[stats_row(s) for s in stats],
        chart=chart,
        metric=metric,
        chart_metrics=CHART_METRICS,
        compare=len(stats) >= 2,
        metric_links={key: _with_args(metric=key) for key in CHART_METRICS},
        csv_url=url_for("analytics.export_csv") + "?" + urlencode(_args_without("metric"), doseq=True),
    )


def _args_without(name: str) -> list[tuple[str, str]]:
    return [(key, value) for key, value in request.args.items(multi=True) if key != name]


def _with_args(**replace: str) -> str:
    """This page's URL with the same filters and one argument replaced (the chart metric links)."""
    args = _args_without(next(iter(replace))) + list(replace.items())
    return url_for("analytics.index") + "?" + urlencode(args, doseq=True)


@bp.route("/export.csv")
@login_required
def export_csv():
    _, filters = _filters()
    body = stats_csv(model_stats(user_records(filters)))
    filename = f"toolsmith-analytics-{filters.start}-{filters.end}.csv"
    return Response(
        body, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )
