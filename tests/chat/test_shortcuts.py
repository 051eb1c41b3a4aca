"""One click from a model or a finished run to a chat with it, or to comparing it (with its base)."""

from __future__ import annotations

import re

from app.extensions import db
from app.models import ChatSession, LLMModel
from tests.conftest import csrf_token
from tests.training.test_compare_runs import make_run

CHECKED = re.compile(r'<input checked[^>]*value="(\d+)"|<input[^>]*value="(\d+)"[^>]*checked')


def checked(page: str) -> set[int]:
    return {int(a or b) for a, b in CHECKED.findall(page)}


def add_model(app, name: str, owner_id: int | None = None) -> int:
    with app.app_context():
        model = LLMModel(name=name, provider="local_gguf", gguf_path="/x.gguf", owner_id=owner_id)
        db.session.add(model)
        db.session.commit()
        return model.id


def attach(app, model_id: int, run_id: int) -> None:
    """As the export registers a run's model: it points back at its run."""
    with app.app_context():
        db.session.get(LLMModel, model_id).training_run_id = run_id
        db.session.commit()


def test_the_model_page_starts_a_chat_and_a_comparison_with_it(app, signed_in, default_model_id):
    client, user = signed_in()
    page = client.get(f"/models/{default_model_id}").get_data(as_text=True)
    assert 'action="/chat/new"' in page and f'name="model" value="{default_model_id}"' in page
    assert f"/chat/compare?models={default_model_id}" in page
    started = client.post(
        "/chat/new",
        data={"csrf_token": csrf_token(client, "/chat/"), "model": default_model_id, "mode": "chat"},
    )
    assert started.status_code == 302
    with app.app_context():
        (chat,) = db.session.execute(db.select(ChatSession)).scalars()
        assert chat.model_id == default_model_id and chat.owner_id == user.id


def test_compare_picks_the_models_in_the_address_it_may_offer(app, signed_in, default_model_id):
    client, _ = signed_in()
    twin = add_model(app, "twin")
    third = add_model(app, "third")
    _, mallory = signed_in("mallory@example.com")
    hers = add_model(app, "mallorys", owner_id=mallory.id)
    page = client.get(f"/chat/compare?models={twin}&models={third}").get_data(as_text=True)
    assert checked(page) == {twin, third}
    page = client.get(f"/chat/compare?models={hers}&models=abc&models=99999").get_data(as_text=True)
    assert hers not in checked(page) and len(checked(page)) == 2  # nothing usable asked: the first two


def test_a_finished_runs_models_offer_a_chat_and_a_comparison_with_the_base(app, signed_in, default_model_id):
    client, user = signed_in()
    tuned = add_model(app, "run1-Q4_K_M", owner_id=user.id)
    on_default = make_run(app, user, "tuned", "sft_toolbench", stage="done", model_ids=[tuned])
    attach(app, tuned, on_default)
    page = client.get(f"/runs/{on_default}").get_data(as_text=True)
    assert f'name="model" value="{tuned}"' in page
    assert f"/chat/compare?models={tuned}&amp;models={default_model_id}" in page
    assert "Compare with SmolLM2-135M-Instruct" in page
    assert f"/chat/arena?models={tuned}&amp;models={default_model_id}" in page  # a blind vote between them

    tuned = add_model(app, "run2-Q4_K_M", owner_id=user.id)
    other = make_run(app, user, "other base", "sft_toolbench", stage="done", model_ids=[tuned])
    attach(app, tuned, other)
    with app.app_context():
        from app.models import TrainingRun

        run = db.session.get(TrainingRun, other)
        run.config = {**run.config, "model": {**run.config["model"], "name": "someone/else"}}
        db.session.commit()
    page = client.get(f"/runs/{other}").get_data(as_text=True)
    assert f'href="/chat/compare?models={tuned}"' in page and "Compare with" not in page
    assert "Arena against it" not in page
