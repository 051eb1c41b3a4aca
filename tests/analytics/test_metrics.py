from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.analytics.metrics import (
    MessageRecord,
    daily_series,
    filter_records,
    model_stats,
    percentile,
    series_by_model,
)
from tests.analytics.conftest import make_record


def test_percentile_interpolates_linearly():
    values = [400, 1000, 2000, 3000]
    assert percentile(values, 50) == 1500  # halfway between 1000 and 2000
    assert percentile(values, 95) == pytest.approx(2850)  # position 2.85: 2000 + 0.85 * 1000
    assert percentile(values, 0) == 400
    assert percentile(values, 100) == 3000
    assert percentile([7], 95) == 7
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 101)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30), st.floats(0, 100))
def test_percentile_matches_numpy(values, q):
    numpy = pytest.importorskip("numpy")
    assert percentile(values, q) == pytest.approx(float(numpy.percentile(values, q)), abs=1e-6)


def test_model_stats_match_hand_computed_values(records):
    alpha, bravo = model_stats(records)

    assert (alpha.model_id, alpha.model_name) == (1, "alpha")
    assert (alpha.messages, alpha.errors, alpha.stopped) == (5, 1, 1)
    assert (alpha.prompt_tokens, alpha.completion_tokens, alpha.total_tokens) == (310, 130, 440)
    assert alpha.estimated_token_messages == 1
    # The error reply's 99,999 ms is left out: latencies are 400, 1000, 2000, 3000.
    assert alpha.latency_p50_ms == pytest.approx(1500)
    assert alpha.latency_p95_ms == pytest.approx(2850)
    # TTFTs 100, 200, 500, 1000.
    assert alpha.ttft_p50_ms == pytest.approx(350)
    assert alpha.ttft_p95_ms == pytest.approx(925)
    # Complete replies only: (50 + 30 + 40) tokens over (0.8 + 1.5 + 2.0) s of decoding.
    assert alpha.tokens_per_second == pytest.approx(120 / 4.3)
    assert alpha.mean_tokens_per_second == pytest.approx((62.5 + 20 + 20) / 3)
    assert (alpha.tool_call_messages, alpha.valid_tool_call_messages) == (3, 2)
    assert alpha.validity_rate == pytest.approx(2 / 3)
    assert (alpha.constrained_tool_call_messages, alpha.constrained_validity_rate) == (1, 1.0)
    assert (alpha.unconstrained_tool_call_messages, alpha.unconstrained_validity_rate) == (2, 0.5)
    assert alpha.first_at == datetime(2024, 5, 1, 10, 0)
    assert alpha.last_at == datetime(2024, 5, 3, 11, 0)

    assert (bravo.model_name, bravo.messages, bravo.errors, bravo.total_tokens) == ("Bravo", 1, 1, 0)
    assert bravo.latency_p50_ms is None and bravo.ttft_p95_ms is None
    assert bravo.tokens_per_second is None and bravo.mean_tokens_per_second is None
    assert bravo.validity_rate is None
    assert bravo.constrained_validity_rate is None and bravo.unconstrained_validity_rate is None


def test_model_stats_sorts_by_name_ignoring_case_and_separates_same_name_models():
    rows = [
        make_record(model_id=3, model_name="charlie"),
        make_record(model_id=None, model_name="Bravo"),
        make_record(model_id=2, model_name="Bravo"),
        make_record(model_id=1, model_name="alpha"),
    ]
    assert [(s.model_id, s.model_name) for s in model_stats(rows)] == [
        (1, "alpha"),
        (2, "Bravo"),
        (None, "Bravo"),
        (3, "charlie"),
    ]


def test_tokens_per_second_skips_replies_without_decoding_time():
    rows = [
        make_record(completion_tokens=100, latency_ms=2100.0, ttft_ms=100.0),  # counts: 50 tok/s
        make_record(completion_tokens=100, latency_ms=500.0, ttft_ms=500.0),  # no decoding time
        make_record(completion_tokens=0, latency_ms=900.0, ttft_ms=100.0),  # nothing generated
        make_record(completion_tokens=100, latency_ms=900.0, ttft_ms=None),  # TTFT unknown
        make_record(completion_tokens=100, latency_ms=1100.0, ttft_ms=100.0, status="stopped"),
    ]
    (stats,) = model_stats(rows)
    assert stats.tokens_per_second == pytest.approx(50)
    assert stats.mean_tokens_per_second == pytest.approx(50)


def test_daily_series_fills_empty_days_with_zeros(records):
    points = daily_series(records, date(2024, 4, 30), date(2024, 5, 4))
    alpha = [(p.day, p.messages, p.total_tokens, p.latency_p50_ms) for p in points if p.model_id == 1]
    assert alpha == [
        (date(2024, 4, 30), 0, 0, None),
        (date(2024, 5, 1), 2, 260, 1500),
        (date(2024, 5, 2), 0, 0, None),
        (date(2024, 5, 3), 3, 180, 1700),  # the error reply adds tokens but no latency
        (date(2024, 5, 4), 0, 0, None),
    ]
    bravo = [(p.day, p.messages, p.latency_p50_ms) for p in points if p.model_id == 2]
    assert bravo == [
        (date(2024, 4, 30), 0, None),
        (date(2024, 5, 1), 0, None),
        (date(2024, 5, 2), 1, None),
        (date(2024, 5, 3), 0, None),
        (date(2024, 5, 4), 0, None),
    ]


def test_daily_series_leaves_out_models_without_replies_in_range(records):
    points = daily_series(records, date(2024, 5, 3), date(2024, 5, 3))
    assert [(p.model_name, p.day, p.messages) for p in points] == [("alpha", date(2024, 5, 3), 3)]
    assert daily_series(records, date(2023, 1, 1), date(2023, 1, 2)) == []
    with pytest.raises(ValueError):
        daily_series(records, date(2024, 5, 3), date(2024, 5, 1))


def test_series_by_model_labels_models_that_share_a_name():
    rows = [make_record(model_id=1, model_name="tiny"), make_record(model_id=None, model_name="tiny")]
    series = series_by_model(daily_series(rows, date(2024, 5, 1), date(2024, 5, 2)))
    assert list(series) == ["tiny (#1)", "tiny (deleted)"]
    assert [p.day for p in series["tiny (#1)"]] == [date(2024, 5, 1), date(2024, 5, 2)]


def test_filter_records_by_inclusive_dates_and_models(records):
    late = make_record(created_at=datetime(2024, 5, 3, 23, 59, 59))
    rows = [*records, late]
    kept = filter_records(rows, start=date(2024, 5, 2), end=date(2024, 5, 3))
    assert kept == rows[2:]
    assert filter_records(rows, end=date(2024, 5, 1)) == rows[:2]
    assert filter_records(rows, start=date(2024, 5, 4)) == []
    assert filter_records(rows, model_ids={2}) == [records[5]]
    assert filter_records(rows, model_ids=[]) == []
    assert filter_records(rows) == rows


def test_filter_records_can_select_replies_of_deleted_models():
    gone = make_record(model_id=None, model_name="old")
    assert filter_records([make_record(), gone], model_ids={None}) == [gone]


_optional_ms = st.none() | st.floats(0, 1e7, allow_nan=False)
_optional_tokens = st.none() | st.integers(0, 10**6)
_records = st.builds(
    MessageRecord,
    model_id=st.none() | st.integers(1, 4),
    model_name=st.sampled_from(["a", "B", "a", "<b>", ""]),
    created_at=st.datetimes(datetime(2024, 1, 1), datetime(2024, 1, 10)),
    prompt_tokens=_optional_tokens,
    completion_tokens=_optional_tokens,
    tokens_estimated=st.booleans(),
    latency_ms=_optional_ms,
    ttft_ms=_optional_ms,
    tool_calls=st.integers(0, 3),
    tool_calls_valid=st.none() | st.booleans(),
    constrained=st.none() | st.booleans(),
    status=st.sampled_from(["complete", "stopped", "error"]),
)


@given(st.lists(_records, max_size=40))
def test_model_stats_accounts_for_every_record(rows):
    stats = model_stats(rows)
    assert sum(s.messages for s in stats) == len(rows)
    assert sum(s.errors for s in stats) == sum(1 for r in rows if r.status == "error")
    for s in stats:
        for rate in (s.validity_rate, s.constrained_validity_rate, s.unconstrained_validity_rate):
            assert rate is None or 0 <= rate <= 1
        assert s.tokens_per_second is None or s.tokens_per_second > 0
        assert s.first_at <= s.last_at
    points = daily_series(rows, date(2024, 1, 1), date(2024, 1, 10))
    assert sum(p.messages for p in points) == len(rows)
    assert len(points) == 10 * len(stats)
