"""Replies that never ended where they began: a second tab on a reply being written, a reply left
"streaming" by a process that died, and a failure that is not a serving error. Each ends in a final
card (a streaming one would make the page connect again, for ever) and a final row."""

from __future__ import annotations

import html
import re
import threading
import time
from datetime import timedelta

from app.chat.generation import WriterHeartbeat
from app.extensions import db
from app.models import ChatMessage, utcnow
from tests.chat.conftest import message_row, new_session, send, stream_events


def claimed_reply(app, client, model_id: int, seconds_ago: float) -> int:
    """A reply some other request claimed `seconds_ago` and is (or was) writing."""
    reply_id = send(client, new_session(client, model_id), "Hello?")
    with app.app_context():
        message = db.session.get(ChatMessage, reply_id)
        message.status = "streaming"
        message.claimed_at = utcnow() - timedelta(seconds=seconds_ago)
        db.session.commit()
    return reply_id


def test_a_reply_left_streaming_by_a_dead_process_ends_as_an_error(app, signed_in, default_model_id):
    client, _ = signed_in()
    reply_id = claimed_reply(
        app, client, default_model_id, seconds_ago=app.config["CHAT_STALE_REPLY_SECONDS"] + 5
    )
    events = stream_events(client, reply_id)
    assert events[-1][1] == "done" and "sse-connect" not in events[-1][2]
    assert "server stopped while writing" in events[-1][2]
    row = message_row(app, reply_id)
    assert row.status == "error" and row.finished_at is not None


def finish_reply(reply_id: int, text: str) -> None:
    """What the writing request does at the end (in the caller's app context): the reply complete."""
    message = db.session.get(ChatMessage, reply_id)
    message.status, message.content, message.finished_at = "complete", text, utcnow()
    db.session.commit()


def test_a_second_tab_waits_for_the_reply_another_request_is_writing(app, signed_in, default_model_id):
    client, _ = signed_in()
    reply_id = claimed_reply(app, client, default_model_id, seconds_ago=1)

    def writer_finishes() -> None:
        time.sleep(1.5)
        with app.app_context():
            finish_reply(reply_id, "Hi there!")

    writer = threading.Thread(target=writer_finishes)
    writer.start()
    started = time.perf_counter()
    events = stream_events(client, reply_id)
    writer.join()
    assert time.perf_counter() - started >= 1.0  # it waited instead of answering with a live card
    assert events[-1][1] == "done" and "Hi there!" in events[-1][2] and "sse-connect" not in events[-1][2]
    assert message_row(app, reply_id).status == "complete"


def test_a_live_writer_keeps_its_reply_past_the_stale_limit_and_a_silent_one_is_given_up(
    app, signed_in, default_model_id
):
    app.config.update(CHAT_REPLY_HEARTBEAT_SECONDS=0.2, CHAT_STALE_REPLY_SECONDS=1.0)
    client, _ = signed_in()
    alive = claimed_reply(app, client, default_model_id, seconds_ago=0)

    def slow_writer() -> None:
        with app.app_context():
            with WriterHeartbeat(alive):
                time.sleep(3.0)  # three stale limits: only the heartbeat keeps the reply alive
            finish_reply(alive, "Slow but sure.")

    writer = threading.Thread(target=slow_writer)
    writer.start()
    events = stream_events(client, alive)
    writer.join()
    assert "Slow but sure." in events[-1][2] and message_row(app, alive).status == "complete"

    silent = claimed_reply(app, client, default_model_id, seconds_ago=0)  # its writer died at once
    started = time.perf_counter()
    events = stream_events(client, silent)
    assert time.perf_counter() - started < 4  # about the stale limit, not half an hour
    assert "server stopped while writing" in events[-1][2] and message_row(app, silent).status == "error"


def test_the_heartbeat_leaves_a_finished_reply_alone(app, signed_in, default_model_id):
    app.config.update(CHAT_REPLY_HEARTBEAT_SECONDS=0.05)
    client, _ = signed_in()
    reply_id = claimed_reply(app, client, default_model_id, seconds_ago=100)
    with app.app_context():
        message = db.session.get(ChatMessage, reply_id)
        message.status, message.finished_at = "complete", utcnow()
        db.session.commit()
        claimed = message.claimed_at
        with WriterHeartbeat(reply_id):
            time.sleep(0.3)
    assert message_row(app, reply_id).claimed_at == claimed


def test_a_failure_that_is_not_a_serving_error_ends_the_reply_as_an_error(
    app, signed_in, default_model_id, monkeypatch
):
    import app.chat.generation as generation

    def broken_plan(session, message):
        raise KeyError("a bug in building the request")

    monkeypatch.setattr(generation, "plan_reply", broken_plan)
    client, _ = signed_in()
    reply_id = send(client, new_session(client, default_model_id), "Hello?")
    events = stream_events(client, reply_id)
    assert events[-1][1] == "done" and "could not start (KeyError)" in events[-1][2]
    assert message_row(app, reply_id).status == "error"


def test_a_page_opened_on_a_reply_being_written_elsewhere_shows_it_growing(app, signed_in, default_model_id):
    """A reload (whose first request keeps writing) or a second tab: the text so far comes as tokens while
    the writer goes on, not a blank "generating…" until the end."""
    app.config.update(CHAT_PROGRESS_SECONDS=0.1)
    client, _ = signed_in()
    reply_id = claimed_reply(app, client, default_model_id, seconds_ago=0)

    def writer() -> None:
        with app.app_context():
            pieces: list[str] = []
            with WriterHeartbeat(reply_id, pieces):
                for piece in ("Rex ", "is ", "a ", "dog."):
                    pieces.append(piece)
                    time.sleep(0.4)
            finish_reply(reply_id, "Rex is a dog.")

    thread = threading.Thread(target=writer)
    thread.start()
    events = stream_events(client, reply_id)
    thread.join()
    tokens = [html.unescape(re.sub(r"<[^>]+>", "", data)) for _, event, data in events if event == "token"]
    assert len(tokens) >= 2 and "".join(tokens) == "Rex is a dog.", tokens  # grew in steps, then done
    assert events[-1][1] == "done" and "Rex is a dog." in events[-1][2]


def test_the_text_so_far_never_overwrites_the_final_text(app, signed_in, default_model_id):
    app.config.update(CHAT_PROGRESS_SECONDS=0.05)
    client, _ = signed_in()
    reply_id = claimed_reply(app, client, default_model_id, seconds_ago=0)
    with app.app_context():
        pieces = ["Half a"]
        with WriterHeartbeat(reply_id, pieces):
            finish_reply(reply_id, "Whole answer.")
            pieces.append(" sentence")  # written after the final commit: never stored
            time.sleep(0.3)
    assert message_row(app, reply_id).content == "Whole answer."
