"""Arena: two models drawn from a pool answer blind, the vote reveals them, the leaderboard ranks them,
and decisive votes become DPO pairs. Generation is real (the default GGUF through llama.cpp); the vote,
leaderboard and pair tests build their battles in the database to stay fast."""

from __future__ import annotations

import json
import re

import pytest

from app.extensions import db
from app.models import ArenaBattle, ChatMessage, ChatSession, Dataset, LLMModel
from tests.chat.conftest import STREAM_URL as STREAM
from tests.chat.conftest import stream_events
from tests.conftest import csrf_token, post_form

pytestmark = pytest.mark.database

BATTLE = re.compile(r"/chat/arena/([0-9a-f]{8})$")
TOOL = {
    "type": "function",
    "function": {
        "name": "get_pet",
        "parameters": {
            "type": "object",
            "properties": {"pet_id": {"type": "integer"}},
            "required": ["pet_id"],
        },
    },
}


def start(client, **fields):
    data = {"csrf_token": csrf_token(client, "/chat/arena"), "tool_choice": "auto", **fields}
    return client.post("/chat/arena", data=data)


def add_twin(app, default_model_id: int, name: str = "twin") -> int:
    """A second registration of the default GGUF: two local models to battle."""
    with app.app_context():
        default = db.session.get(LLMModel, default_model_id)
        twin = LLMModel(name=name, provider="local_gguf", gguf_path=default.gguf_path, max_tokens=64)
        db.session.add(twin)
        db.session.commit()
        return twin.id


def seed_battle(app, owner_id: int, replies=("Rex is a dog.", "No idea."), verdict=None, tools=None) -> str:
    """A finished battle built in the database: two owned models, blind sessions, a prompt, two replies."""
    with app.app_context():
        models = [
            LLMModel(
                owner_id=owner_id, name=name, provider="openai_compatible", base_url="http://127.0.0.1:9"
            )
            for name in ("alpha", "beta")
        ]
        db.session.add_all(models)
        db.session.flush()
        sessions = []
        for label, model, reply in zip(("Model A", "Model B"), models, replies, strict=True):
            chat = ChatSession(owner_id=owner_id, model_id=model.id, blind_label=label, tools=tools or [])
            chat.messages = [
                ChatMessage(role="user", content="Who is Rex?"),
                ChatMessage(
                    role="assistant",
                    content=reply,
                    status="complete",
                    model_id=model.id,
                    model_name=model.name,
                ),
            ]
            sessions.append(chat)
        db.session.add_all(sessions)
        db.session.flush()
        group = f"{len(db.session.execute(db.select(ArenaBattle)).all()):08x}"
        db.session.add(
            ArenaBattle(
                owner_id=owner_id,
                group=group,
                prompt="Who is Rex?",
                model_a_id=models[0].id,
                model_a_name="alpha",
                model_b_id=models[1].id,
                model_b_name="beta",
                session_a_id=sessions[0].id,
                session_b_id=sessions[1].id,
                verdict=verdict,
            )
        )
        db.session.commit()
        return group


def vote(client, group: str, verdict: str):
    return post_form(client, f"/chat/arena/{group}/vote", {"verdict": verdict})


def battle_row(app, group: str) -> ArenaBattle:
    with app.app_context():
        row = db.session.execute(db.select(ArenaBattle).where(ArenaBattle.group == group)).scalar_one()
        db.session.expunge(row)
        return row


def test_a_blind_battle_streams_both_answers_then_the_vote_reveals_them(app, signed_in, default_model_id):
    client, _ = signed_in()
    twin_id = add_twin(app, default_model_id)
    page = client.get("/chat/arena").get_data(as_text=True)
    assert "SmolLM2" in page and "twin" in page  # the pool, all checked by default

    response = start(
        client,
        models=[str(default_model_id), str(twin_id)],
        content="Name a colour.",
        max_tokens="12",
        temperature="0",
    )
    assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
    group = BATTLE.search(response.headers["Location"]).group(1)
    page = client.get(f"/chat/arena/{group}").get_data(as_text=True)
    pending = [int(message_id) for message_id in STREAM.findall(page)]
    assert len(pending) == 2 and "Model A" in page and "Model B" in page
    assert "SmolLM2" not in page and "twin" not in page  # blind

    assert vote(client, group, "a").status_code == 422  # not before both answers are in
    for message_id in pending:
        events = stream_events(client, message_id)
        assert events[-1][1] == "done"
        assert "Model A" in events[-1][2] or "Model B" in events[-1][2]  # the final card stays blind
        assert "twin" not in events[-1][2] and "SmolLM2" not in events[-1][2]
    with app.app_context():
        sessions = list(db.session.execute(db.select(ChatSession).order_by(ChatSession.id)).scalars())
        assert [s.blind_label for s in sessions] == ["Model A", "Model B"]
        assert {s.tags[0] for s in sessions} == {f"arena:{group}"}
        assert {s.model_id for s in sessions} == {default_model_id, twin_id}
        first_session = sessions[0].id
    # The session's own page and download (they name the model) lead back to the battle until the vote.
    for path in (f"/chat/{first_session}", f"/chat/{first_session}/export.json"):
        assert client.get(path).headers["Location"].endswith(f"/chat/arena/{group}")
    assert "/chat/arena" not in client.get("/chat/").headers.get("Location", "")

    assert vote(client, group, "b").status_code == 302
    fight = battle_row(app, group)
    assert fight.verdict == "b" and fight.voted_at is not None
    assert {fight.model_a_id, fight.model_b_id} == {default_model_id, twin_id}
    page = client.get(f"/chat/arena/{group}").get_data(as_text=True)
    assert "Your vote: B is better" in page and "twin" in page and "SmolLM2" in page
    assert client.get(f"/chat/{first_session}").status_code == 200  # named now
    transcript = client.get(f"/chat/{first_session}/export.md").get_data(as_text=True)
    assert "twin" in transcript or "SmolLM2" in transcript
    assert vote(client, group, "a").status_code == 409  # final
    assert battle_row(app, group).verdict == "b"

    board = client.get("/chat/arena/leaderboard").get_data(as_text=True)
    names = re.findall(r'<a href="/models/\d+">([^<]+)</a>', board)
    winner = fight.model_b_name
    assert names[0] == winner and len(names) == 2


def test_a_follow_up_goes_to_both_sides(app, signed_in):
    client, user = signed_in()
    group = seed_battle(app, user.id)
    response = post_form(client, f"/chat/arena/{group}/messages", {"content": "And his owner?"})
    assert response.status_code == 302
    page = client.get(f"/chat/arena/{group}").get_data(as_text=True)
    assert page.count("And his owner?") == 2 and len(STREAM.findall(page)) == 2
    assert post_form(client, f"/chat/arena/{group}/messages", {"content": "  "}).status_code == 422


def test_the_pool_needs_two_models_and_only_usable_ones(app, signed_in, make_user, default_model_id):
    client, _ = signed_in()
    twin_id = add_twin(app, default_model_id)
    third_id = add_twin(app, default_model_id, "third")
    ticked = re.compile(r'<input[^>]*checked[^>]*value="(\d+)"|<input[^>]*value="(\d+)"[^>]*checked')

    def pool(query: str) -> set[int]:
        page = client.get(f"/chat/arena{query}").get_data(as_text=True)
        return {int(a or b) for a, b in ticked.findall(page)}

    assert pool("") == {default_model_id, twin_id, third_id}  # everything, at first
    assert pool(f"?models={twin_id}&models={third_id}") == {twin_id, third_id}  # a run's page: two of them
    assert pool(f"?models={twin_id}&models=99999") == {default_model_id, twin_id, third_id}  # not two usable
    response = start(client, models=[str(default_model_id)], content="Hi")
    assert response.status_code == 422 and "at least two models" in response.get_data(as_text=True)
    other = make_user("mallory@example.com")
    with app.app_context():
        hidden = LLMModel(owner_id=other.id, name="mallory's", provider="local_gguf", gguf_path="/nope")
        db.session.add(hidden)
        db.session.commit()
        hidden_id = hidden.id
    response = start(client, models=[str(default_model_id), str(hidden_id)], content="Hi")
    assert response.status_code == 422  # not a choice this user has
    assert client.post("/chat/arena", data={"models": ["1", "2"], "content": "Hi"}).status_code == 400
    with app.app_context():
        assert db.session.execute(db.select(db.func.count()).select_from(ArenaBattle)).scalar() == 0
        assert db.session.execute(db.select(db.func.count()).select_from(ChatSession)).scalar() == 0


def test_votes_need_a_known_verdict_and_csrf_and_stay_with_their_owner(app, signed_in):
    client, user = signed_in()
    group = seed_battle(app, user.id)
    assert vote(client, group, "a-ish").status_code == 422
    assert client.post(f"/chat/arena/{group}/vote", data={"verdict": "a"}).status_code == 400
    assert battle_row(app, group).verdict is None

    intruder, _ = signed_in("mallory@example.com")
    assert intruder.get(f"/chat/arena/{group}").status_code == 404
    assert vote(intruder, group, "a").status_code == 404
    assert post_form(intruder, f"/chat/arena/{group}/messages", {"content": "hi"}).status_code == 404
    assert intruder.get("/chat/arena/nothex!!").status_code == 404
    assert "alpha" not in intruder.get("/chat/arena/leaderboard").get_data(as_text=True)
    assert battle_row(app, group).verdict is None


def test_a_battle_with_a_deleted_session_cannot_be_judged(app, signed_in):
    client, user = signed_in()
    group = seed_battle(app, user.id)
    session_b = battle_row(app, group).session_b_id
    assert post_form(client, f"/chat/{session_b}/delete").status_code in (200, 302)
    response = vote(client, group, "a")
    assert response.status_code == 422 and "deleted" in response.get_data(as_text=True)
    assert "This session was deleted." in client.get(f"/chat/arena/{group}").get_data(as_text=True)


def test_the_leaderboard_ranks_by_votes_and_counts_ties_and_both_bad(app, signed_in):
    client, user = signed_in()
    for verdict in ("a", "a", "b", "tie", "both_bad"):
        vote(client, seed_battle(app, user.id), verdict)
    # Each seeded battle registers its own "alpha" and "beta": five of each, one battle apiece.
    board = client.get("/chat/arena/leaderboard").get_data(as_text=True)
    assert "Your 5 votes" in board and "3 decisive votes" in board
    table = board[board.index('id="arena-standings"') : board.index("</table>")]
    assert table.count("<tr>") == 1 + 10

    # A model's page says where it stands; a model without a vote says nothing.
    won = battle_row(app, seed_battle(app, user.id))
    assert "In your arena" not in client.get(f"/models/{won.model_a_id}").get_data(as_text=True)
    vote(client, won.group, "a")
    page = client.get(f"/models/{won.model_a_id}").get_data(as_text=True)
    assert "In your arena" in page and "1 battle: 1 won, 0 lost, 0 tied" in page
    assert re.search(r"#[1-3] of 12 ", page)  # three alphas won their one battle: equal ratings


def test_decisive_votes_become_dpo_pairs_winner_chosen(app, signed_in):
    client, user = signed_in()
    tools = [TOOL]
    won_b = seed_battle(app, user.id, replies=("No idea.", "Rex is a dog."), verdict=None, tools=tools)
    vote(client, won_b, "b")
    vote(client, seed_battle(app, user.id, replies=("Same.", "Same.")), "a")  # no pair: equal answers
    vote(client, seed_battle(app, user.id), "tie")  # no pair: not decisive
    response = post_form(client, "/chat/arena/pairs", {"name": "votes"})
    assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
    with app.app_context():
        dataset = db.session.execute(db.select(Dataset)).scalar_one()
        assert (dataset.kind, dataset.owner_id) == ("dpo", user.id)
        assert dataset.options["skipped"] == 1
        rows = [json.loads(line) for line in open(dataset.file_path, encoding="utf-8")]
    assert len(rows) == 1
    (row,) = rows
    assert row["prompt"] == [{"role": "user", "content": "Who is Rex?"}]
    assert row["chosen"][0]["content"] == "Rex is a dog." and row["rejected"][0]["content"] == "No idea."
    assert row["tools"] == tools and row["meta"]["rejection"] == "arena"
    assert row["meta"]["rejected_model"] == "alpha" and row["meta"]["battle"] == won_b


def test_no_pairs_is_a_clear_error_and_no_dataset(app, signed_in):
    client, user = signed_in()
    vote(client, seed_battle(app, user.id), "tie")
    response = post_form(client, "/chat/arena/pairs", {"name": "votes"})
    assert response.status_code == 422 and "No vote can become a pair yet" in response.get_data(as_text=True)
    assert post_form(client, "/chat/arena/pairs", {"name": ""}).status_code == 422
    with app.app_context():
        assert db.session.execute(db.select(db.func.count()).select_from(Dataset)).scalar() == 0


def test_deleting_one_side_before_the_vote_reveals_the_other(app, signed_in):
    client, user = signed_in()
    group = seed_battle(app, user.id)
    with app.app_context():
        battle = db.session.execute(db.select(ArenaBattle).filter_by(group=group)).scalar_one()
        kept_id, deleted_id = battle.session_a_id, battle.session_b_id
    assert post_form(client, f"/chat/{deleted_id}/delete").status_code == 302
    with app.app_context():
        assert db.session.get(ChatSession, kept_id).blind_label is None
    assert client.get(f"/chat/{kept_id}").status_code == 200  # its own page again, not the battle
    page = client.get(f"/chat/arena/{group}").get_data(as_text=True)
    assert "can no longer be judged" in page and "alpha" in page and "beta" in page
