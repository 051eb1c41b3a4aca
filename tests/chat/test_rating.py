"""Rating a reply good or bad: stored on the reply, counted per model in Analytics, kept in exports."""

from __future__ import annotations

import csv
import io

from app.analytics.metrics import model_stats
from tests.analytics.conftest import make_record
from tests.chat.conftest import (
    PINNED_PROMPT,
    htmx_post,
    message_row,
    new_session,
    save_settings,
    send,
    stream_events,
)


def rate(client, session_id: int, message_id: int, rating: str):
    return htmx_post(client, f"/chat/{session_id}/messages/{message_id}/rating", {"rating": rating})


def test_a_reply_is_rated_changed_and_taken_back_and_analytics_counts_it(app, signed_in, default_model_id):
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    save_settings(client, session_id, default_model_id, max_tokens=8)
    reply_id = send(client, session_id, PINNED_PROMPT)
    card = stream_events(client, reply_id)[-1][2]
    assert "👍 Good" in card and 'aria-pressed="false"' in card

    good = rate(client, session_id, reply_id, "good")
    assert good.status_code == 200 and 'value="none" class="small active"' in good.get_data(as_text=True)
    assert message_row(app, reply_id).rating == 1
    assert rate(client, session_id, reply_id, "none").status_code == 200
    assert message_row(app, reply_id).rating is None
    assert rate(client, session_id, reply_id, "bad").status_code == 200
    assert message_row(app, reply_id).rating == -1
    page = client.get(f"/chat/{session_id}").get_data(as_text=True)
    assert 'aria-pressed="true" title="A bad reply"' in page  # the rating shows when the page is reloaded

    table = list(csv.DictReader(io.StringIO(client.get("/analytics/export.csv").get_data(as_text=True))))
    assert [(row["Model"], row["Rated good"], row["Rated bad"]) for row in table] == [
        ("SmolLM2-135M-Instruct", "0", "1")
    ]
    model_page = client.get(f"/models/{default_model_id}").get_data(as_text=True)
    assert "👍 0 good · 👎 1 bad" in model_page and f"/chat/rated?model={default_model_id}" in model_page
    exported = client.get(f"/chat/{session_id}/export.json").get_json()
    assert [m.get("rating") for m in exported["messages"]] == [None, "bad"]


def test_bad_ratings_and_other_users_change_nothing(app, signed_in, default_model_id):
    client, _ = signed_in()
    session_id = new_session(client, default_model_id)
    save_settings(client, session_id, default_model_id, max_tokens=4)
    reply_id = send(client, session_id, "Hi")
    stream_events(client, reply_id)
    assert rate(client, session_id, reply_id, "great").status_code == 422
    assert rate(client, session_id, reply_id - 1, "good").status_code == 422  # the user's own turn
    no_csrf = client.post(f"/chat/{session_id}/messages/{reply_id}/rating", data={"rating": "good"})
    assert no_csrf.status_code == 400

    mallory, _ = signed_in("mallory@example.com")
    assert rate(mallory, session_id, reply_id, "bad").status_code == 404
    mallorys = new_session(mallory, default_model_id)
    assert rate(mallory, mallorys, reply_id, "bad").status_code == 404  # her session, Alice's reply
    assert message_row(app, reply_id).rating is None


def test_ratings_per_model_and_the_share_rated_good():
    records = [
        make_record(rating=1),
        make_record(rating=1),
        make_record(rating=-1),
        make_record(),
        make_record(model_id=2, model_name="beta"),
    ]
    alpha, beta = model_stats(records)
    assert (alpha.rated_good, alpha.rated_bad, alpha.good_rate) == (2, 1, 2 / 3)
    assert (beta.rated_good, beta.rated_bad, beta.good_rate) == (0, 0, None)
