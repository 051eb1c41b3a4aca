from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta

import pytest

from app.analytics.charts import daily_chart_svg, nice_ticks
from app.analytics.metrics import daily_series, series_by_model
from tests.analytics.conftest import make_record

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg) -> ET.Element:
    root = ET.fromstring(str(svg))
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label")
    return root


def _texts(root: ET.Element) -> list[str]:
    return [el.text or "" for el in root.iter(f"{SVG}text")]


def test_chart_is_valid_svg_with_legend_axes_and_point_tooltips(records):
    series = series_by_model(daily_series(records, date(2024, 4, 30), date(2024, 5, 4)))
    root = _parse(daily_chart_svg(series))

    texts = _texts(root)
    assert "alpha" in texts and "Bravo" in texts  # legend
    assert "May 1" in texts and "May 4" in texts  # day labels
    assert "0" in texts and "3" in texts  # y ticks run from zero to the busiest day
    circles = list(root.iter(f"{SVG}circle"))
    assert len(circles) == 10  # one point per model per day
    tooltips = [c.find(f"{SVG}title").text for c in circles]
    assert "alpha · Fri 2024-05-03: 3 messages" in tooltips
    assert "Bravo · Thu 2024-05-02: 1 message" in tooltips
    assert "Messages per day from 2024-04-30 to 2024-05-04" in root.get("aria-label")


def test_latency_chart_skips_days_without_a_latency(records):
    series = series_by_model(daily_series(records, date(2024, 4, 30), date(2024, 5, 4)))
    root = _parse(daily_chart_svg(series, metric="latency_p50_ms"))
    tooltips = sorted(c.find(f"{SVG}title").text for c in root.iter(f"{SVG}circle"))
    assert tooltips == [
        "alpha · Fri 2024-05-03: 1,700 ms median latency",
        "alpha · Wed 2024-05-01: 1,500 ms median latency",
    ]


def test_hostile_model_name_is_escaped():
    name = "<script>alert(1)</script>\"' &\x00"
    rows = [make_record(model_name=name)]
    svg = str(daily_chart_svg(series_by_model(daily_series(rows, date(2024, 5, 1), date(2024, 5, 1)))))
    assert "<script>" not in svg
    root = _parse(svg)
    assert not list(root.iter(f"{SVG}script")) and not list(root.iter("script"))
    titles = [el.text for el in root.iter(f"{SVG}title")]
    assert "<script>alert(1)</script>\"' &" in titles  # the legend's full name, shown literally minus the NUL
    assert "<script>alert(1)</script>\"'…" in _texts(root)  # long names are shortened in the legend
    assert "<script>" in root.get("aria-label")


def test_day_labels_thin_out_over_a_long_range():
    start = date(2024, 1, 1)
    rows = [make_record(created_at=datetime(2024, 1, 1) + timedelta(days=d)) for d in range(0, 120, 7)]
    series = series_by_model(daily_series(rows, start, start + timedelta(days=119)))
    root = _parse(daily_chart_svg(series))
    months = {"Jan", "Feb", "Mar", "Apr"}
    x_labels = [el.text for el in root.iter(f"{SVG}text") if el.text and el.text[:3] in months]
    assert 3 <= len(x_labels) <= 14
    assert len(list(root.iter(f"{SVG}circle"))) == 120


@pytest.mark.parametrize("series", [{}, {"alpha": []}])
def test_empty_data_gives_a_placeholder(series):
    root = _parse(daily_chart_svg(series))
    assert _texts(root) == ["No messages in this range"]


def test_a_range_without_messages_gives_the_placeholder():
    rows = [make_record(created_at=datetime(2024, 5, 1))]
    points = daily_series(rows, date(2024, 5, 1), date(2024, 5, 3))
    quiet = {"alpha": [p for p in points if p.day > date(2024, 5, 1)]}
    assert _texts(_parse(daily_chart_svg(quiet))) == ["No messages in this range"]


def test_unknown_metric_is_refused():
    with pytest.raises(ValueError):
        daily_chart_svg({}, metric="bogus")


def test_ticks_are_round_numbers():
    assert nice_ticks(7, integer=True) == [0, 2, 4, 6, 8]
    assert nice_ticks(0, integer=True) == [0, 1]
    assert nice_ticks(1, integer=True) == [0, 1]
    assert nice_ticks(1234) == [0, 250, 500, 750, 1000, 1250]
    assert nice_ticks(0.3) == [0, 0.1, 0.2, 0.3]
    assert nice_ticks(100, integer=True) == [0, 20, 40, 60, 80, 100]
