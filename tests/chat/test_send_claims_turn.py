"""Sending a message claims the conversation's turn, as regenerate, edit and a tool result do: of two tabs
(or a double submit) sending at once only the first goes ahead, a send loses to a regenerate or edit of
the same turn that wrote first, and a message sent while a reply is still being written is refused until
it has finished. The loser is told why and leaves nothing behind; the winner's reply streams as usual."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import ChatMessage, ChatSession, MessageStatus, utcnow
from tests.chat.conftest import htmx_post, stream_events
from tests.chat.test_arena import add_twin, seed_battle
from tests.chat.test_compare import compare
from tests.chat.test_streaming import second_connection
from tests.conftest import csrf_token, post_form

LOSER = "Tell me about owls."
CHANGED = "The conversation changed meanwhile"
WAIT = "wait for it to finish"


@pytest.fixture
def finished_turn(app, signed_in, default_model_id):
    """(tab A, tab B, session id, user message id, reply id): one finished exchange, open in two tabs."""
    tab_a, user = signed_in()
    with app.app_context():
        chat = ChatSession(owner_id=user.id, model_id=default_model_id, title="two tabs", max_tokens=8)
        chat.temperature = 0.0
        db.session.add(chat)
        db.session.flush()
        prompt = ChatMessage(session_id=chat.id, role="user", content="Hi")
        reply = ChatMessage(
            session_id=chat.id,
            role="assistant",
            content="Hello! How can I help?",
            status=MessageStatus.COMPLETE,
            finished_at=utcnow(),
        )
        db.session.add_all([prompt, reply])
        db.session.commit()
        ids = chat.id, prompt.id, reply.id
    return (tab_a, second_connection(app, tab_a), *ids)


def _conversation(app, session_id: int) -> list[tuple[str, str, str]]:
    """(role, status, content) of each message of the conversation as shown, replaced ones left out."""
    with app.app_context():
        query = (
            sa.select(ChatMessage)
            .where(ChatMessage.session_id == session_id, ChatMessage.replaced.is_(False))
            .order_by(ChatMessage.id)
        )
        return [(m.role, m.status, m.content) for m in db.session.execute(query).scalars()]


def _pending_reply(app, session_id: int) -> int:
    with app.app_context():
        query = sa.select(ChatMessage.id).where(
            ChatMessage.session_id == session_id, ChatMessage.status == MessageStatus.PENDING
        )
        return db.session.execute(query).scalar_one()


def _when_it_first_writes(app, other_request):
    """Run `other_request` (another tab's whole request, on its own connection) the moment this request
    first writes to the conversation: both have read it by then, neither has changed it. Returns the
    other request's response, once it has run."""
    answers = []

    def before_write(conn, cursor, statement, parameters, context, executemany):
        if answers or not statement.lstrip().upper().startswith(
            ("UPDATE CHAT_SESSIONS", "INSERT INTO CHAT_MESSAGES")
        ):
            return
        answers.append(None)
        tab = threading.Thread(target=lambda: answers.append(other_request()))
        tab.start()
        tab.join()

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", before_write)
    return engine, before_write, answers


@pytest.mark.parametrize("winner", ["send", "regenerate", "edit"])
def test_of_two_tabs_acting_on_the_turn_a_send_that_writes_second_is_refused(app, finished_turn, winner):
    tab_a, tab_b, session_id, prompt_id, reply_id = finished_turn
    csrf_token(tab_b, f"/chat/{session_id}")  # tab B's page is open
    path = f"/chat/{session_id}/messages"
    winning = {
        "send": lambda: htmx_post(tab_b, path, {"content": "What is 2 + 2?"}),
        "regenerate": lambda: htmx_post(tab_b, f"{path}/{reply_id}/regenerate"),
        "edit": lambda: htmx_post(tab_b, f"{path}/{prompt_id}/edit", {"content": "Hi again"}),
    }[winner]
    engine, hook, answers = _when_it_first_writes(app, winning)
    try:
        lost = htmx_post(tab_a, path, {"content": LOSER})
    finally:
        sa.event.remove(engine, "before_cursor_execute", hook)

    won = answers[-1]
    assert won.status_code in (200, 302), won.get_data(as_text=True)[-1500:]
    assert lost.status_code == 409, lost.get_data(as_text=True)[-1500:]
    assert CHANGED in lost.get_data(as_text=True) and "reload the page" in lost.get_data(as_text=True)
    conversation = _conversation(app, session_id)
    assert all(LOSER not in content for _, _, content in conversation)
    assert [role for role, _, _ in conversation] == {
        "send": ["user", "assistant", "user", "assistant"],
        "regenerate": ["user", "assistant"],
        "edit": ["user", "assistant"],
    }[winner]

    # The winner's reply is written as if the other tab had never sent.
    events = stream_events(tab_b, _pending_reply(app, session_id))
    assert events[-1][1] == "done" and "status-complete" in events[-1][2]
    assert conversation[-1][1] == "pending" and _conversation(app, session_id)[-1][1] == "complete"


def test_a_message_sent_while_the_reply_is_being_written_waits_for_it(app, finished_turn):
    tab_a, tab_b, session_id, _, _ = finished_turn
    path = f"/chat/{session_id}/messages"
    sent = htmx_post(tab_a, path, {"content": "What is 2 + 2?"})
    assert sent.status_code == 200

    # A double submit, or a second message before the reply has started.
    again = htmx_post(tab_a, path, {"content": LOSER})
    assert again.status_code == 409 and WAIT in again.get_data(as_text=True)
    # Without JS: the page again, the typed message kept in the box beside the reason.
    plain = post_form(tab_a, path, {"content": LOSER})
    assert plain.status_code == 409
    assert WAIT in plain.get_data(as_text=True) and f"{LOSER}</textarea>" in plain.get_data(as_text=True)

    # While it streams.
    refused = []

    def send_from_the_other_tab(event, _data):
        if event == "token" and not refused:
            tab = threading.Thread(target=lambda: refused.append(htmx_post(tab_b, path, {"content": LOSER})))
            tab.start()
            tab.join()

    events = stream_events(tab_a, _pending_reply(app, session_id), on_event=send_from_the_other_tab)
    assert events[-1][1] == "done"
    assert [r.status_code for r in refused] == [409] and WAIT in refused[0].get_data(as_text=True)
    conversation = _conversation(app, session_id)
    assert [(role, status) for role, status, _ in conversation] == [
        ("user", "complete"),
        ("assistant", "complete"),
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    assert all(LOSER not in content for _, _, content in conversation)

    # Once it has finished, the next message goes.
    assert htmx_post(tab_a, path, {"content": LOSER}).status_code == 200
    assert _conversation(app, session_id)[-2][2] == LOSER


def test_a_comparison_follow_up_waits_for_every_answer(app, signed_in, default_model_id):
    client, _ = signed_in()
    twin_id = add_twin(app, default_model_id)
    started = compare(client, models=[str(default_model_id), str(twin_id)], content="Hi", max_tokens="8")
    assert started.status_code == 302, started.get_data(as_text=True)[-1500:]
    location = started.headers["Location"]
    with app.app_context():
        sessions = [chat.id for chat in db.session.execute(sa.select(ChatSession)).scalars()]
    first_reply = _pending_reply(app, sessions[0])
    stream_events(client, first_reply)  # one answer finished, the other not yet

    refused = post_form(client, f"{location}/messages", {"content": LOSER})
    assert refused.status_code == 409 and "wait for every answer" in refused.get_data(as_text=True)
    assert f"{LOSER}</textarea>" in refused.get_data(as_text=True)
    assert all(len(_conversation(app, session_id)) == 2 for session_id in sessions)  # neither got it

    stream_events(client, _pending_reply(app, sessions[1]))
    assert post_form(client, f"{location}/messages", {"content": LOSER}).status_code == 302
    assert all(_conversation(app, session_id)[-2][2] == LOSER for session_id in sessions)


def test_an_arena_follow_up_waits_for_both_answers(app, signed_in):
    client, user = signed_in()
    group = seed_battle(app, user.id)
    with app.app_context():
        sides = list(db.session.execute(sa.select(ChatSession).order_by(ChatSession.id)).scalars())
        sides[1].messages[-1].status = MessageStatus.STREAMING
        db.session.commit()
        session_ids = [side.id for side in sides]

    refused = post_form(client, f"/chat/arena/{group}/messages", {"content": LOSER})
    assert refused.status_code == 409 and "wait for every answer" in refused.get_data(as_text=True)
    assert all(len(_conversation(app, session_id)) == 2 for session_id in session_ids)  # neither side

    with app.app_context():
        db.session.get(ChatSession, session_ids[1]).messages[-1].status = MessageStatus.COMPLETE
        db.session.commit()
    assert post_form(client, f"/chat/arena/{group}/messages", {"content": LOSER}).status_code == 302
    assert all(_conversation(app, session_id)[-2][2] == LOSER for session_id in session_ids)


def test_an_empty_send_replaces_the_box_not_adds_one_to_the_messages(app, finished_turn):
    tab_a, _, session_id, _, _ = finished_turn
    refused = htmx_post(tab_a, f"/chat/{session_id}/messages", {"content": "   "})
    text = refused.get_data(as_text=True)
    # The form swaps its answers into #messages: only an out-of-band box lands where the box is.
    assert refused.status_code == 422 and "Type a message." in text and 'hx-swap-oob="true"' in text
    token = csrf_token(tab_a, f"/chat/{session_id}")
    page = tab_a.post(f"/chat/{session_id}/messages", data={"csrf_token": token, "content": ""})
    text = page.get_data(as_text=True)
    assert page.status_code == 422 and "<html" in text and "Type a message." in text  # without JS: the page
    assert _conversation(app, session_id) == [
        ("user", "complete", "Hi"),
        ("assistant", "complete", "Hello! How can I help?"),
    ]


def test_a_refused_send_to_an_arena_side_before_its_vote_leads_to_the_battle(app, signed_in):
    client, user = signed_in()
    group = seed_battle(app, user.id)
    with app.app_context():
        side = db.session.execute(
            sa.select(ChatSession).where(ChatSession.blind_label == "Model A")
        ).scalar_one()
        side_id = side.id
    token = csrf_token(client, "/chat/")
    refused = client.post(f"/chat/{side_id}/messages", data={"csrf_token": token, "content": ""})
    # Its page would name the model (the settings' picker): the battle instead, as the page itself does.
    assert refused.status_code == 302 and refused.headers["Location"].endswith(f"/chat/arena/{group}")
