"""Before its vote an arena battle names no model anywhere: not on the rated replies page, not on a
comparison page a tag would put a side on, not in a training row saved from a side, not in Analytics.
After the vote each is back."""

from __future__ import annotations

from app.extensions import db
from app.models import ArenaBattle, ChatMessage, Dataset
from tests.chat.test_arena import battle_row, seed_battle, vote
from tests.conftest import post_form


def sides(app, group: str) -> list[tuple[int, int]]:
    """(session id, reply id) of side A and side B."""
    with app.app_context():
        battle = db.session.execute(db.select(ArenaBattle).filter_by(group=group)).scalar_one()
        return [
            (side, db.session.execute(
                db.select(ChatMessage.id).filter_by(session_id=side, role="assistant")).scalar_one())
            for side in (battle.session_a_id, battle.session_b_id)
        ]  # fmt: skip


def test_a_rated_side_is_not_on_the_rated_page_before_the_vote(app, signed_in):
    client, user = signed_in()
    group = seed_battle(app, user.id)
    (session_a, reply_a), _ = sides(app, group)
    rated = post_form(client, f"/chat/{session_a}/messages/{reply_a}/rating", {"rating": "good"})
    assert rated.status_code in (200, 302)
    assert battle_row(app, group).verdict is None
    page = client.get("/chat/rated").get_data(as_text=True)
    assert "alpha" not in page and "beta" not in page
    assert "alpha" not in client.get("/analytics/").get_data(as_text=True)


def test_a_side_cannot_be_tagged_or_saved_as_an_example_before_the_vote(app, signed_in):
    client, user = signed_in()
    group = seed_battle(app, user.id)
    (session_a, reply_a), _ = sides(app, group)
    assert post_form(client, f"/chat/{session_a}/tags", {"tags": "compare:0badc0de"}).status_code == 404
    assert client.get("/chat/compare/0badc0de").status_code == 404
    data = {
        "kind": "sft",
        "dataset": "new",
        "new_name": "x",
        "split": "train",
        "content": "Rex.",
        "calls": "",
    }
    assert post_form(client, f"/chat/{session_a}/messages/{reply_a}/example", data).status_code == 404
    assert client.get(f"/chat/{session_a}/messages/{reply_a}/example").status_code == 404
    with app.app_context():
        assert db.session.query(Dataset).count() == 0


def test_after_the_vote_the_sides_are_rated_tagged_and_saved_by_name(app, signed_in):
    client, user = signed_in()
    group = seed_battle(app, user.id)
    assert vote(client, group, "a").status_code == 302
    (session_a, reply_a), _ = sides(app, group)
    post_form(client, f"/chat/{session_a}/messages/{reply_a}/rating", {"rating": "good"})
    assert "alpha" in client.get("/chat/rated").get_data(as_text=True)
    assert post_form(client, f"/chat/{session_a}/tags", {"tags": "compare:0badc0de"}).status_code == 302
    assert "alpha" in client.get("/chat/compare/0badc0de").get_data(as_text=True)
