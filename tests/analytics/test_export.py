from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest

from app.analytics.export import STATS_COLUMNS, csv_safe, stats_csv, stats_row
from app.analytics.metrics import model_stats
from tests.analytics.conftest import make_record


def _read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_csv_matches_the_table_definition(records):
    stats = model_stats(records)
    header, *rows = _read(stats_csv(stats))
    assert header == [name for name, _ in STATS_COLUMNS]
    assert rows == [[fmt(s) for _, fmt in STATS_COLUMNS] for s in stats]

    alpha = dict(zip(header, rows[0], strict=True))
    assert alpha["Model"] == "alpha"
    assert alpha["Messages"] == "5"
    assert alpha["Latency p95 (ms)"] == "2850"
    assert alpha["TTFT p50 (ms)"] == "350"
    assert alpha["Tokens/s"] == "27.9"
    assert alpha["Validity"] == "66.7%"
    assert alpha["Constrained validity"] == "100.0%"
    assert alpha["Unconstrained validity"] == "50.0%"
    assert alpha["First message (UTC)"] == "2024-05-01 10:00"
    bravo = dict(zip(header, rows[1], strict=True))
    assert bravo["Latency p50 (ms)"] == "" and bravo["Validity"] == ""


def test_csv_round_trips_names_with_commas_quotes_and_newlines():
    name = 'tiny, "fast"\nv2'
    header, row = _read(stats_csv(model_stats([make_record(model_name=name)])))
    assert row[0] == name


def test_empty_stats_give_just_the_header():
    assert _read(stats_csv([])) == [[name for name, _ in STATS_COLUMNS]]


@pytest.mark.parametrize(
    "name",
    ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "-", "-1e5"],
)
def test_formula_like_model_names_are_neutralised(name):
    stats = model_stats([make_record(model_name=name, created_at=datetime(2024, 5, 1))])
    _, row = _read(stats_csv(stats))
    assert row[0] == "'" + name
    assert row[1:] == stats_row(stats[0])[1:]


@pytest.mark.parametrize("value", ["-12", "-3.5", "-40.0%", "12", "model-1", "a=b"])
def test_numbers_and_ordinary_text_are_left_alone(value):
    assert csv_safe(value) == value
