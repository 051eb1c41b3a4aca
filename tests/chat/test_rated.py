"""Rated replies: the page lists the user's verdicts; the good replies become an SFT dataset in one step."""

from __future__ import annotations

import json
from pathlib import Path

from app.datasets.rows import validate_sft_row
from app.extensions import db
from app.models import ChatMessage, Dataset
from tests.chat.conftest import PINNED_PROMPT, htmx_post, new_session, save_settings, send, stream_events
from tests.chat.test_tools import WEATHER_TOOL, attach_json_tools
from tests.conftest import csrf_token


def reply(client, model_id: int, text: str, tools: list | None = None, **settings) -> tuple[int, int]:
    session_id = new_session(client, model_id)
    if tools:
        assert attach_json_tools(client, session_id, tools).status_code == 200
    save_settings(client, session_id, model_id, **settings)
    reply_id = send(client, session_id, text)
    stream_events(client, reply_id)
    return session_id, reply_id


def rate(client, session_id: int, message_id: int, rating: str) -> None:
    response = htmx_post(client, f"/chat/{session_id}/messages/{message_id}/rating", {"rating": rating})
    assert response.status_code == 200


def save(client, name: str = "Good ones", model: str = ""):
    data = {"csrf_token": csrf_token(client, "/chat/rated"), "name": name}
    return client.post(f"/chat/rated/dataset?model={model}", data=data)


def test_good_replies_become_a_dataset_and_bad_ones_are_listed(app, signed_in, default_model_id):
    client, _ = signed_in()
    weather, call_reply = reply(
        client, default_model_id, "What's the weather in Oslo?", [WEATHER_TOOL], tool_choice="required"
    )
    plain, words_reply = reply(client, default_model_id, PINNED_PROMPT, max_tokens=12)
    broken, broken_reply = reply(client, default_model_id, "Hi", max_tokens=4)
    with app.app_context():  # a call in a session that offered no tools: not a usable example
        message = db.session.get(ChatMessage, broken_reply)
        message.tool_calls = [{"id": "c1", "name": "get_time", "arguments": {}, "issues": []}]
        db.session.commit()
    rate(client, weather, call_reply, "good")
    rate(client, plain, words_reply, "bad")
    rate(client, broken, broken_reply, "good")

    page = client.get("/chat/rated").get_data(as_text=True)
    assert "Good (2)" in page and "Bad (1)" in page and page.count("Open in its chat") == 3
    assert f"#msg-{words_reply}" in page and "get_weather(" in page
    only_bad = client.get("/chat/rated?rating=bad").get_data(as_text=True)
    assert only_bad.count("Open in its chat") == 1 and f"#msg-{words_reply}" in only_bad
    assert client.get("/chat/rated?rating=nonsense&model=x%27").status_code == 200  # odd filters: all

    saved = save(client)
    assert saved.status_code == 302, saved.get_data(as_text=True)
    with app.app_context():
        dataset = db.session.execute(db.select(Dataset)).scalar_one()
        figures = (dataset.name, dataset.kind, dataset.sample_count, dataset.source)
        assert figures == ("Good ones", "sft", 1, "chat") and dataset.options["skipped"] == 1
        assert saved.headers["Location"].endswith(f"/datasets/{dataset.id}")
        (row,) = [json.loads(line) for line in Path(dataset.file_path).read_text().splitlines()]
    assert validate_sft_row(row) == []
    assert row["messages"][-1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert [t["function"]["name"] for t in row["tools"]] == ["get_weather"]


def test_nothing_to_save_bad_input_and_other_users(app, signed_in, default_model_id):
    alice, _ = signed_in()
    session_id, reply_id = reply(alice, default_model_id, "Hi", max_tokens=4)
    rate(alice, session_id, reply_id, "bad")
    refused = save(alice)
    assert refused.status_code == 422 and "No good reply can become a row" in refused.get_data(as_text=True)
    assert save(alice, name="x" * 101).status_code == 422
    assert save(alice, name="").status_code == 422
    assert alice.post("/chat/rated/dataset", data={"name": "x"}).status_code == 400  # no CSRF token

    rate(alice, session_id, reply_id, "good")
    bob, _ = signed_in("bob@example.com")
    assert "Open in its chat" not in bob.get("/chat/rated").get_data(as_text=True)
    assert save(bob).status_code == 422  # Alice's good reply is not Bob's to save
    with app.app_context():
        assert db.session.execute(db.select(Dataset)).first() is None


def test_a_bad_reply_regenerated_into_a_good_one_becomes_a_preference_pair(app, signed_in, default_model_id):
    from app.datasets.rows import validate_dpo_row

    client, _ = signed_in()
    session_id, bad = reply(client, default_model_id, PINNED_PROMPT, max_tokens=3)  # cut short: bad
    rate(client, session_id, bad, "bad")
    save_settings(client, session_id, default_model_id, max_tokens=32)
    regenerated = htmx_post(client, f"/chat/{session_id}/messages/{bad}/regenerate")
    good = int(regenerated.get_data(as_text=True).split('sse-connect="/chat/messages/')[1].split("/")[0])
    stream_events(client, good)
    assert "0 pairs" in client.get("/chat/rated").get_data(as_text=True)  # the new one is not rated yet
    rate(client, session_id, good, "good")
    other, lone_good = reply(client, default_model_id, "Hi", max_tokens=4)
    rate(client, other, lone_good, "good")  # good, but nothing it replaced: no pair
    assert "1 pair:" in client.get("/chat/rated").get_data(as_text=True)

    data = {"pairs-csrf_token": csrf_token(client, "/chat/rated"), "pairs-name": "Paris pairs"}
    saved = client.post("/chat/rated/pairs", data=data)
    assert saved.status_code == 302, saved.get_data(as_text=True)
    with app.app_context():
        dataset = db.session.execute(db.select(Dataset)).scalar_one()
        assert (dataset.name, dataset.kind, dataset.sample_count) == ("Paris pairs", "dpo", 1)
        (row,) = [json.loads(line) for line in Path(dataset.file_path).read_text().splitlines()]
        texts = {m.id: m.content for m in db.session.execute(db.select(ChatMessage)).scalars()}
    assert validate_dpo_row(row) == []
    assert [m["role"] for m in row["prompt"]] == ["user"] and row["prompt"][0]["content"] == PINNED_PROMPT
    assert (row["chosen"][0]["content"], row["rejected"][0]["content"]) == (
        texts[good].strip(),
        texts[bad].strip(),
    )

    bob, _ = signed_in("bob@example.com")
    refused = bob.post(
        "/chat/rated/pairs", data={"csrf_token": csrf_token(bob, "/chat/rated"), "pairs-name": "x"}
    )
    assert refused.status_code == 422 and "No pair yet" in refused.get_data(as_text=True)
