"""The Analytics page and CSV over real stored messages: figures, filters, comparison, isolation."""

from __future__ import annotations

import csv
import html
import io
import re
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from app.analytics.forms import today
from app.extensions import db
from app.models import ChatMessage, ChatSession, ChatSessionTag, LLMModel, utcnow


def _seed(
    app,
    owner_id: int,
    model_id: int,
    tag: str | None,
    count: int,
    *,
    offset: int = 0,
    days_ago: int = 0,
    valid_every: int = 2,
) -> None:
    with app.app_context():
        model = db.session.get(LLMModel, model_id)
        session = ChatSession(owner_id=owner_id, model_id=model_id, title=f"s{offset}")
        if tag:
            session.tag_rows = [ChatSessionTag(tag=tag)]
        db.session.add(session)
        db.session.flush()
        for i in range(count):
            has_call = i % 3 == 0
            db.session.add(
                ChatMessage(
                    session_id=session.id,
                    role="assistant",
                    status="complete" if i != 4 else "error",
                    model_id=model_id,
                    model_name=model.name,
                    prompt_tokens=20 + i,
                    completion_tokens=10 + 2 * i,
                    tokens_estimated=i == 1,
                    latency_ms=100.0 + 37 * i + offset,
                    ttft_ms=10.0 + i,
                    tool_calls=[{"id": "c", "name": "f", "arguments": {}, "issues": []}]
                    if has_call
                    else None,
                    tool_calls_valid=(i % valid_every == 0) if has_call else None,
                    constrained=(i % 2 == 0) if has_call else None,
                    created_at=utcnow() - timedelta(days=days_ago, minutes=i),
                )
            )
        db.session.commit()


def _second_model(app) -> int:
    with app.app_context():
        model = LLMModel(
            name="Remote B",
            provider="openai_compatible",
            base_url="http://127.0.0.1:9/v1",
            model_id="b",
            owner_id=None,
        )
        db.session.add(model)
        db.session.commit()
        return model.id


def _table(page: str, table_id: str) -> list[list[str]]:
    body = page.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    return [
        [html.unescape(c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, re.S)] for r in rows
    ]


def _expected(app, owner_id: int, model_name: str) -> dict[str, str]:
    """The figures computed straight from the stored rows, independently of app.analytics."""
    with app.app_context():
        rows = (
            db.session.execute(
                db.select(ChatMessage)
                .join(ChatSession)
                .where(ChatSession.owner_id == owner_id, ChatMessage.model_name == model_name)
            )
            .scalars()
            .all()
        )
        ok = [r for r in rows if r.status != "error"]
        complete = [r for r in rows if r.status == "complete"]
        calls = [r for r in rows if r.tool_calls]
        generation_s = sum((r.latency_ms - r.ttft_ms) / 1000 for r in complete)
        return {
            "Messages": str(len(rows)),
            "Errors": str(sum(r.status == "error" for r in rows)),
            "Prompt tokens": str(sum(r.prompt_tokens for r in rows)),
            "Completion tokens": str(sum(r.completion_tokens for r in rows)),
            "Latency p50 (ms)": f"{np.percentile([r.latency_ms for r in ok], 50):.0f}",
            "Latency p95 (ms)": f"{np.percentile([r.latency_ms for r in ok], 95):.0f}",
            "TTFT p95 (ms)": f"{np.percentile([r.ttft_ms for r in ok], 95):.0f}",
            "Tokens/s": f"{sum(r.completion_tokens for r in complete) / generation_s:.1f}",
            "Tool-call messages": str(len(calls)),
            "Validity": f"{100 * sum(bool(r.tool_calls_valid) for r in calls) / len(calls):.1f}%",
        }


def test_figures_match_the_stored_messages_and_the_csv_matches_the_table(app, signed_in, default_model_id):
    client, user = signed_in()
    other_id = _second_model(app)
    _seed(app, user.id, default_model_id, "eval", 9)
    _seed(app, user.id, other_id, "prod", 7, offset=50, valid_every=3)
    _, mallory = signed_in("mallory@example.com")
    _seed(app, mallory.id, default_model_id, "eval", 5, offset=999)  # must never be counted for alice

    page = client.get("/analytics/").get_data(as_text=True)
    table = _table(page, "stats-table")
    header, rows = table[0], {row[0]: dict(zip(table[0], row, strict=True)) for row in table[1:]}
    assert set(rows) == {"SmolLM2-135M-Instruct", "Remote B"}
    for name, row in rows.items():
        for column, value in _expected(app, user.id, name).items():
            assert row[column] == value, (name, column)
    assert "<svg" in page and "compare-table" in page  # chart, and two models side by side

    exported = client.get("/analytics/export.csv")
    assert exported.mimetype == "text/csv"
    lines = list(csv.reader(io.StringIO(exported.get_data(as_text=True))))
    assert lines[0] == header
    assert [[cell or "—" for cell in line] for line in lines[1:]] == table[1:]


def test_filters_by_tag_date_and_model(app, signed_in, default_model_id):
    client, user = signed_in()
    other_id = _second_model(app)
    _seed(app, user.id, default_model_id, "eval", 3)
    _seed(app, user.id, other_id, "prod", 4)
    _seed(app, user.id, other_id, "prod", 2, days_ago=40)

    def models_in(query: str) -> dict[str, str]:
        table = _table(client.get(f"/analytics/?{query}").get_data(as_text=True), "stats-table")
        return {row[0]: row[1] for row in table[1:]}

    assert models_in("tag=eval") == {"SmolLM2-135M-Instruct": "3"}
    assert models_in("") == {"SmolLM2-135M-Instruct": "3", "Remote B": "4"}
    start = (datetime.now() - timedelta(days=60)).date()
    assert models_in(f"start={start}") == {"SmolLM2-135M-Instruct": "3", "Remote B": "6"}
    assert models_in(f"start={start}&models={other_id}") == {"Remote B": "6"}
    # A reversed range is reported, not a 500.
    response = client.get("/analytics/?start=2026-05-01&end=2026-04-01")
    assert response.status_code == 200 and "before the start date" in response.get_data(as_text=True)
    assert client.get("/analytics/?start=garbage&models=x").status_code == 200


def test_analytics_needs_sign_in(client):
    assert client.get("/analytics/").status_code == 302
    assert client.get("/analytics/export.csv").status_code == 302


def test_source_filter_splits_chat_api_and_each_token(app, signed_in, default_model_id):
    from app.models import ApiRequest, ApiToken

    client, user = signed_in()
    _, mallory = signed_in("mallory@example.com")
    _seed(app, user.id, default_model_id, "eval", 3)
    with app.app_context():
        ci = ApiToken(owner_id=user.id, name="ci", token_hash="a" * 64, prefix="ts_a")
        bot = ApiToken(owner_id=user.id, name="bot", token_hash="b" * 64, prefix="ts_b")
        theirs = ApiToken(owner_id=mallory.id, name="theirs", token_hash="c" * 64, prefix="ts_c")
        db.session.add_all([ci, bot, theirs])
        db.session.flush()
        for token, owner, count in ((ci, user.id, 2), (bot, user.id, 5), (theirs, mallory.id, 7)):
            for _ in range(count):
                db.session.add(
                    ApiRequest(
                        owner_id=owner,
                        token_id=token.id,
                        model_id=default_model_id,
                        model_name="SmolLM2-135M-Instruct",
                        status="complete",
                        streamed=False,
                        prompt_tokens=5,
                        completion_tokens=5,
                        tokens_estimated=False,
                        latency_ms=50.0,
                        tool_calls=0,
                    )
                )
        db.session.commit()
        ci_id, bot_id, theirs_id = ci.id, bot.id, theirs.id

    def messages(query: str) -> str:
        page = client.get(f"/analytics/?{query}").get_data(as_text=True)
        if 'id="stats-table"' not in page:
            return "0"
        table = _table(page, "stats-table")
        return {row[0]: row[1] for row in table[1:]}.get("SmolLM2-135M-Instruct", "0")

    assert messages("") == "10" and messages("source=chat") == "3" and messages("source=api") == "7"
    assert messages(f"source=token:{ci_id}") == "2" and messages(f"source=token:{bot_id}") == "5"
    assert messages("source=api&tag=eval") == "0"  # API answers have no session tag
    # Another user's token, garbage and unknown values fall back to everything of one's own.
    for query in (
        f"source=token:{theirs_id}",
        "source=token:x",
        "source=<script>",
        "source=token:" + "9" * 40,
    ):
        assert messages(query) == "10", query
    page = client.get("/analytics/").get_data(as_text=True)
    assert "API token “ci”" in page and "“theirs”" not in page
    exported = client.get(f"/analytics/export.csv?source=token:{bot_id}").get_data(as_text=True)
    assert list(csv.reader(io.StringIO(exported)))[1][1] == "5"


@pytest.mark.parametrize("zone", ["Etc/GMT+12", "Etc/GMT-14"])  # UTC-12 and UTC+14
def test_the_default_window_ends_today_in_utc_whatever_the_local_zone(zone, monkeypatch):
    """Stored times are UTC: a window ending on the local date would drop (or run past) today's rows.
    At any hour one of the two zones is on another date than UTC, so this test fails on local dates."""
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        assert today() == datetime.now(UTC).date()
    finally:
        monkeypatch.undo()
        time.tzset()
