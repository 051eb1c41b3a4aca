"""A small hand-made set of chat replies whose statistics are worked out by hand in the tests."""

from __future__ import annotations

from datetime import datetime

import pytest

from app.analytics.metrics import MessageRecord


def make_record(**overrides) -> MessageRecord:
    """A complete reply without tool calls; override what the test cares about."""
    fields = dict(
        model_id=1,
        model_name="alpha",
        created_at=datetime(2024, 5, 1, 12, 0),
        prompt_tokens=10,
        completion_tokens=10,
        tokens_estimated=False,
        latency_ms=1000.0,
        ttft_ms=100.0,
        tool_calls=0,
        tool_calls_valid=None,
        constrained=None,
        status="complete",
    )
    fields.update(overrides)
    return MessageRecord(**fields)


@pytest.fixture
def records() -> list[MessageRecord]:
    return [
        # alpha: two complete replies on 1 May, one stopped, one error and one complete on 3 May.
        make_record(
            created_at=datetime(2024, 5, 1, 10, 0),
            prompt_tokens=100,
            completion_tokens=50,
            latency_ms=1000.0,
            ttft_ms=200.0,
            tool_calls=1,
            tool_calls_valid=True,
            constrained=True,
        ),
        make_record(
            created_at=datetime(2024, 5, 1, 12, 0),
            prompt_tokens=80,
            completion_tokens=30,
            tokens_estimated=True,
            latency_ms=2000.0,
            ttft_ms=500.0,
            tool_calls=2,
            tool_calls_valid=False,
            constrained=False,
        ),
        make_record(
            created_at=datetime(2024, 5, 3, 9, 0),
            prompt_tokens=60,
            completion_tokens=10,
            latency_ms=400.0,
            ttft_ms=100.0,
            status="stopped",
        ),
        make_record(
            created_at=datetime(2024, 5, 3, 9, 30),
            prompt_tokens=20,
            completion_tokens=None,
            latency_ms=99_999.0,
            ttft_ms=99_999.0,
            status="error",
        ),
        make_record(
            created_at=datetime(2024, 5, 3, 11, 0),
            prompt_tokens=50,
            completion_tokens=40,
            latency_ms=3000.0,
            ttft_ms=1000.0,
            tool_calls=1,
            tool_calls_valid=True,
            constrained=False,
        ),
        # Bravo: a single failed reply on 2 May.
        make_record(
            model_id=2,
            model_name="Bravo",
            created_at=datetime(2024, 5, 2, 8, 0),
            prompt_tokens=None,
            completion_tokens=None,
            latency_ms=None,
            ttft_ms=None,
            status="error",
        ),
    ]
