"""A trained model opens the playground in NL → API mode on the spec it was trained to call."""

from __future__ import annotations

import re

from app.extensions import db
from app.models import ChatMode, ChatSession, Dataset, LLMModel, TrainingRun
from tests.conftest import csrf_token
from tests.specs.test_specs_and_nl_api import PETSTORE, pytestmark, spec_id_of, upload_spec  # noqa: F401
from tests.training.test_compare_runs import make_run, register_model

SPEC_BUTTON = re.compile(r'name="mode" value="api">\s*<input type="hidden" name="spec" value="(\d+)">')


def offered_spec(page: str) -> int | None:
    found = SPEC_BUTTON.findall(page)
    return int(found[0]) if found else None


def set_source_spec(app, run_id: int, name: str | None) -> None:
    with app.app_context():
        run = db.session.get(TrainingRun, run_id)
        run.config = {**run.config, "data": {**run.config["data"], "source_spec": name}}
        db.session.commit()


def trained_model(app, user, **run_fields) -> tuple[int, int]:
    run_id = make_run(app, user, "tuned", "sft_toolbench", stage="done", **run_fields)
    return run_id, register_model(app, user, run_id, "tuned-Q4_K_M")


def test_the_configs_source_spec_gives_the_model_an_nl_to_api_button(app, signed_in):
    client, user = signed_in()
    upload_spec(client, PETSTORE, "petstore")
    upload_spec(client, PETSTORE, "petstore")  # version 2: the name means the newest
    newest = spec_id_of(app, "petstore")
    run_id, model_id = trained_model(app, user)
    set_source_spec(app, run_id, "petstore")

    for page_url in (f"/models/{model_id}", f"/runs/{run_id}"):
        page = client.get(page_url).get_data(as_text=True)
        assert offered_spec(page) == newest and "Call petstore v2" in page

    started = client.post(
        "/chat/new",
        data={"csrf_token": csrf_token(client, "/chat/"), "model": model_id, "mode": "api", "spec": newest},
    )
    assert started.status_code == 302
    with app.app_context():
        chat = db.session.execute(db.select(ChatSession)).scalar_one()
        assert (chat.mode, chat.spec_id, chat.model_id) == (ChatMode.API, newest, model_id)


def test_without_a_source_spec_the_datasets_own_spec_is_offered(app, signed_in):
    client, user = signed_in()
    upload_spec(client, PETSTORE, "petstore")
    spec_id = spec_id_of(app, "petstore")
    with app.app_context():
        dataset = Dataset(owner_id=user.id, name="pets", kind="sft", spec_id=spec_id)
        db.session.add(dataset)
        db.session.commit()
        dataset_id = dataset.id
    _, model_id = trained_model(app, user, dataset_id=dataset_id)
    assert offered_spec(client.get(f"/models/{model_id}").get_data(as_text=True)) == spec_id


def test_no_button_without_a_spec_nor_for_someone_elses_run(app, signed_in):
    client, user = signed_in()
    run_id, model_id = trained_model(app, user)
    set_source_spec(app, run_id, "no such spec")
    page = client.get(f"/models/{model_id}").get_data(as_text=True)
    assert offered_spec(page) is None and 'name="mode" value="chat"' in page

    upload_spec(client, PETSTORE, "petstore")
    set_source_spec(app, run_id, "petstore")
    assert offered_spec(client.get(f"/models/{model_id}").get_data(as_text=True)) is not None
    with app.app_context():  # as when an administrator makes the model global
        db.session.get(LLMModel, model_id).owner_id = None
        db.session.commit()
    mallory, _ = signed_in("mallory@example.com")
    upload_spec(mallory, PETSTORE, "petstore")  # same name, her own spec: still not what the model saw
    page = mallory.get(f"/models/{model_id}")
    assert page.status_code == 200 and offered_spec(page.get_data(as_text=True)) is None


def test_the_no_js_try_it_page_keeps_the_button(app, signed_in):
    client, user = signed_in()
    upload_spec(client, PETSTORE, "petstore")
    run_id, model_id = trained_model(app, user)
    set_source_spec(app, run_id, "petstore")
    token = csrf_token(client, f"/models/{model_id}")
    page = client.post(f"/models/{model_id}/try", data={"csrf_token": token, "prompt": ""})
    assert page.status_code == 422 and offered_spec(page.get_data(as_text=True)) == spec_id_of(
        app, "petstore"
    )
