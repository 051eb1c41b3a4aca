"""Compare models: one prompt to several models, answers streamed side by side through the chat's path."""

from __future__ import annotations

from app.extensions import db
from app.models import ChatMessage, ChatSession, LLMModel
from tests.chat.conftest import STREAM_URL as STREAM
from tests.chat.conftest import message_row, stream_events
from tests.conftest import LLAMA_SERVER_ALIAS, csrf_token, post_form
from tests.registry.conftest import add_model, model_rows
from tests.specs.test_specs_and_nl_api import PETSTORE, spec_id_of, upload_spec


def compare(client, **fields):
    data = {"csrf_token": csrf_token(client, "/chat/compare"), "tool_choice": "auto", **fields}
    return client.post("/chat/compare", data=data)


def test_one_prompt_two_models_local_and_remote_side_by_side(
    app, signed_in, default_model_id, llama_server_url
):
    admin, _ = signed_in("admin@example.com")
    remote = {"provider": "openai_compatible", "name": "llama.cpp server", "model_id": LLAMA_SERVER_ALIAS}
    add_model(admin, {**remote, "base_url": llama_server_url})
    remote_id = model_rows(app)[-1].id
    form = admin.get("/chat/compare").get_data(as_text=True)
    assert "SmolLM2" in form and "llama.cpp server" in form

    response = compare(
        admin,
        models=[str(default_model_id), str(remote_id)],
        content="Name a colour.",
        system_prompt="Answer in one word.",
        temperature="0.2",
        max_tokens="24",
    )
    assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
    location = response.headers["Location"]
    page = admin.get(location).get_data(as_text=True)
    pending = [int(message_id) for message_id in STREAM.findall(page)]
    assert len(pending) == 2 and page.count("Name a colour.") == 2
    for message_id in pending:
        assert [event for _, event, _ in stream_events(admin, message_id)][-1] == "done"
    replies = [message_row(app, message_id) for message_id in pending]
    assert {reply.model_id for reply in replies} == {default_model_id, remote_id}
    assert all(r.status == "complete" and r.content for r in replies), [
        (r.model_name, r.error) for r in replies
    ]
    with app.app_context():
        sessions = list(db.session.execute(db.select(ChatSession)).scalars())
        assert len(sessions) == 2 and len({tuple(s.tags) for s in sessions}) == 1
        assert sessions[0].tags[0].startswith("compare:")
        settings = {(s.system_prompt, s.temperature, s.max_tokens) for s in sessions}
        assert settings == {("Answer in one word.", 0.2, 24)}  # the same for every model
    assert all(r.completion_tokens <= 24 for r in replies)

    # A follow-up goes to both sessions; the finished answers are now cards, the new ones stream.
    assert post_form(admin, f"{location}/messages", {"content": "And another?"}).status_code == 302
    page = admin.get(location).get_data(as_text=True)
    assert len(STREAM.findall(page)) == 2 and page.count("And another?") == 2
    with app.app_context():
        assert db.session.execute(db.select(db.func.count()).select_from(ChatMessage)).scalar() == 8


def test_tools_from_a_spec_go_to_every_model_and_local_calls_are_checked(app, signed_in, default_model_id):
    client, _ = signed_in()
    with app.app_context():  # a second registration of the same GGUF: two local models to compare
        default = db.session.get(LLMModel, default_model_id)
        twin = LLMModel(name="twin", provider="local_gguf", gguf_path=default.gguf_path, max_tokens=128)
        db.session.add(twin)
        db.session.commit()
        twin_id = twin.id
    upload_spec(client, PETSTORE, "petstore")
    response = compare(
        client,
        models=[str(default_model_id), str(twin_id)],
        spec=str(spec_id_of(app, "petstore")),
        tool_choice="required",
        temperature="0",  # greedy (the default too): a sampled call could run past 128 tokens, cut
        content="Get the pet with id 42.",
    )
    assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
    pending = [
        int(i) for i in STREAM.findall(client.get(response.headers["Location"]).get_data(as_text=True))
    ]
    for message_id in pending:
        stream_events(client, message_id)
    for reply in (message_row(app, message_id) for message_id in pending):
        assert reply.status == "complete" and reply.constrained, reply.error
        assert reply.tool_calls and not reply.tool_calls[0]["issues"]  # required + grammar: a valid call
    with app.app_context():
        sessions = list(db.session.execute(db.select(ChatSession)).scalars())
        assert all(len(s.tools) == 20 and s.tool_choice == "required" for s in sessions)


def test_bad_comparisons_are_refused_and_store_nothing(app, signed_in, default_model_id):
    bob, bob_user = signed_in("bob@example.com")
    with app.app_context():
        private = LLMModel(
            owner_id=bob_user.id, name="bob-private", provider="local_gguf", gguf_path="/x.gguf"
        )
        db.session.add(private)
        db.session.commit()
        private_id = private.id
    alice, _ = signed_in("alice@example.com")
    cases = [
        ({"models": [str(default_model_id)], "content": "hi"}, "Pick two to 4 models."),
        ({"models": [str(default_model_id)] * 2, "content": "hi"}, "Pick two to 4 models."),  # one, twice
        ({"models": [str(default_model_id), str(private_id)], "content": "hi"}, "not a valid choice"),
        ({"models": [str(default_model_id)] * 2, "content": "   "}, "Type a prompt."),
        ({"models": [str(default_model_id)] * 2, "content": "x" * 40_000}, "At most"),
        ({"models": [str(default_model_id)] * 2, "content": "hi", "temperature": "5"}, "between 0.0 and 2.0"),
        ({"models": [str(default_model_id)] * 2, "content": "hi", "temperature": "hot"}, "Not a valid float"),
        ({"models": [str(default_model_id)] * 2, "content": "hi", "max_tokens": "0"}, "between 1 and 8192"),
        ({"models": [str(default_model_id)] * 2, "content": "hi", "system_prompt": "x" * 9000}, "8000"),
    ]
    for fields, message in cases:
        response = compare(alice, **fields)
        assert response.status_code == 422 and message in response.get_data(as_text=True), fields
    with app.app_context():
        assert db.session.execute(db.select(ChatSession)).first() is None


def test_another_users_comparison_is_not_found(app, signed_in, default_model_id):
    bob, _ = signed_in("bob@example.com")
    with app.app_context():
        db.session.add(LLMModel(name="second", provider="local_gguf", gguf_path="/y.gguf"))
        db.session.commit()
        second = db.session.execute(db.select(LLMModel.id).where(LLMModel.name == "second")).scalar_one()
    response = compare(bob, models=[str(default_model_id), str(second)], content="hello")
    assert response.status_code == 302
    location = response.headers["Location"]
    alice, _ = signed_in("alice@example.com")
    assert alice.get(location).status_code == 404
    assert post_form(alice, f"{location}/messages", {"content": "hi"}).status_code == 404
    assert alice.get("/chat/compare/../../etc").status_code == 404
    assert alice.get("/chat/compare/ZZZZZZZZ").status_code == 404
