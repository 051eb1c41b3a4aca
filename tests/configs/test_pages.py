"""Config pages: template → form → live lint → save → download → re-upload; isolation and CSRF."""

from __future__ import annotations

import io
import json

import pytest
from jsonschema import Draft202012Validator

from app.configs.forms import FIELDS
from app.configs.templates import TEMPLATES, TEMPLATES_BY_KEY
from app.extensions import db
from app.models import Dataset, TrainingConfig
from tests.configs.test_linter import TRAIN_PY_EXAMPLE
from tests.conftest import csrf_token


def form_data(config: dict, name: str, client) -> dict:
    """The editor's fields filled from a config, as a browser would submit them."""
    data: dict = {"csrf_token": csrf_token(client, "/configs/"), "name": name, "description": ""}
    for spec in FIELDS:
        value = config.get(spec.key) if not spec.section else config[spec.section].get(spec.key)
        if spec.kind == "bool":
            if value:
                data[spec.form_name] = "y"
        elif spec.kind == "multi":
            data[spec.form_name] = list(value)
        elif spec.kind == "json":
            data[spec.form_name] = json.dumps(value) if value else ""
        elif spec.kind == "modules":
            data[spec.form_name] = value if isinstance(value, str) else ", ".join(value)
        else:
            data[spec.form_name] = "" if value is None else str(value)
    return data


def upload(client, body: bytes, filename: str = "config.json", name: str = ""):
    data = {"csrf_token": csrf_token(client, "/configs/"), "name": name, "file": (io.BytesIO(body), filename)}
    return client.post("/configs/upload", data=data, content_type="multipart/form-data")


def config_count(app) -> int:
    with app.app_context():
        return db.session.query(TrainingConfig).count()


def saved(app, config_id: int) -> TrainingConfig:
    with app.app_context():
        row = db.session.get(TrainingConfig, config_id)
        db.session.expunge(row)
        return row


def new_config(client, template: str = "sft_toolbench", name: str = "mine", **changes) -> int:
    config = TEMPLATES_BY_KEY[template].build()
    data = form_data(config, name, client)
    data.update(changes)
    response = client.post(f"/configs/new?template={template}", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return int(response.headers["Location"].rstrip("/").split("/")[-2])


def test_list_page_offers_every_template_and_the_schema_is_published(client, signed_in):
    user_client, _ = signed_in()
    page = user_client.get("/configs/").get_data(as_text=True)
    for template in TEMPLATES:
        assert template.title in page
    schema = client.get("/configs/schema.json")  # public: it describes a format
    assert schema.status_code == 200 and schema.is_json
    Draft202012Validator.check_schema(schema.json)
    Draft202012Validator(schema.json).validate(TRAIN_PY_EXAMPLE)


@pytest.mark.parametrize("template", [t.key for t in TEMPLATES])
def test_each_template_opens_valid_in_the_editor_and_saves(app, signed_in, default_model_id, template):
    """(The default model is registered, as `flask serve` does: Teacher Mode's teacher.)"""
    client, _ = signed_in()
    page = client.get(f"/configs/new?template={template}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'class="badge badge-valid"' in html and "Memory estimate" in html and "GiB" in html
    config_id = new_config(client, template, name=template)
    row = saved(app, config_id)
    assert row.validation_status == "valid" and row.template_type == template
    assert row.config == TEMPLATES_BY_KEY[template].build()


def test_live_lint_puts_each_finding_next_to_its_field(signed_in):
    client, _ = signed_in()
    data = form_data(TEMPLATES_BY_KEY["sft_toolbench"].build(), "x", client)
    data.update({"training__batch_size": "0", "training__learning_rate": "0.01", "data__train_split": "abc"})
    response = client.post("/configs/lint", data=data, headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="findings-training__batch_size" class="findings" hx-swap-oob="true"' in html
    batch = html.split('id="findings-training__batch_size"')[1].split("</div>")[0]
    assert "Batch size must be at least 1." in batch
    rate = html.split('id="findings-training__learning_rate"')[1].split("</div>")[0]
    assert 'class="warning"' in rate and "unstable" in rate
    split = html.split('id="findings-data__train_split"')[1].split("</div>")[0]
    assert "Expected a number" in split
    clean = html.split('id="findings-model__name"')[1].split("</div>")[0]
    assert "<small" not in clean


def test_errors_block_save_and_nothing_is_written(app, signed_in):
    client, _ = signed_in()
    data = form_data(TEMPLATES_BY_KEY["sft_toolbench"].build(), "broken", client)
    data["training__batch_size"] = "0"
    response = client.post("/configs/new?template=sft_toolbench", data=data)
    assert response.status_code == 422
    assert "Batch size must be at least 1." in response.get_data(as_text=True)
    assert config_count(app) == 0


def test_warnings_allow_save_and_show_on_the_card(app, signed_in):
    client, _ = signed_in()
    config_id = new_config(client, name="hot", training__learning_rate="0.005")
    assert saved(app, config_id).validation_status == "warnings"
    cards = client.get("/configs/").get_data(as_text=True)
    assert "badge-warnings" in cards and "1 warning" in cards


def test_edit_duplicate_delete(app, signed_in):
    client, _ = signed_in()
    config_id = new_config(client, name="base")
    data = form_data(saved(app, config_id).config, "base", client)
    data["training__lora_r"] = "32"
    assert client.post(f"/configs/{config_id}/edit", data=data).status_code == 302
    assert saved(app, config_id).config["training"]["lora_r"] == 32
    token = csrf_token(client, "/configs/")
    copy = client.post(f"/configs/{config_id}/duplicate", data={"csrf_token": token})
    assert copy.status_code == 302 and config_count(app) == 2
    copy_id = int(copy.headers["Location"].rstrip("/").split("/")[-2])
    assert saved(app, copy_id).name == "base (copy)"
    assert saved(app, copy_id).config == saved(app, config_id).config
    assert client.post(f"/configs/{copy_id}/delete", data={"csrf_token": token}).status_code == 302
    assert config_count(app) == 1


def test_duplicate_names_are_refused(app, signed_in):
    client, _ = signed_in()
    new_config(client, name="same")
    data = form_data(TEMPLATES_BY_KEY["dpo_basic"].build(), "same", client)
    response = client.post("/configs/new?template=dpo_basic", data=data)
    assert response.status_code == 422 and "already have a config named" in response.get_data(as_text=True)
    assert config_count(app) == 1


def test_copies_get_names_of_their_own_and_each_saves_unchanged(app, signed_in):
    client, _ = signed_in()
    config_id = new_config(client, name="X")
    token = csrf_token(client, "/configs/")
    copies = [client.post(f"/configs/{config_id}/duplicate", data={"csrf_token": token}) for _ in range(2)]
    ids = [int(copy.headers["Location"].rstrip("/").split("/")[-2]) for copy in copies]
    assert [saved(app, copy_id).name for copy_id in ids] == ["X (copy)", "X (copy) (2)"]
    for copy_id in ids:
        data = form_data(saved(app, copy_id).config, saved(app, copy_id).name, client)
        assert client.post(f"/configs/{copy_id}/edit", data=data).status_code == 302
    # A name longer than the column is saved cut, so it is checked cut: no silent twin.
    long_id = new_config(client, name="A" * 120)
    data = form_data(saved(app, long_id).config, "A" * 120 + "B", client)
    response = client.post("/configs/new?template=sft_toolbench", data=data)
    assert response.status_code == 422 and "already have a config named" in response.get_data(as_text=True)


def test_hostile_json_in_an_upload_or_the_tools_box_is_refused_not_stored_as_null(app, signed_in):
    client, _ = signed_in()
    surrogate = upload(client, b'{"model": {"name": "\\ud800"}}', "odd.json")
    assert surrogate.status_code in (302, 422)  # the linter's verdict, never a 500
    before = config_count(app)
    huge = json.dumps(TEMPLATES_BY_KEY["sft_toolbench"].build()).replace('"tools": []', '"tools": [1e999]')
    response = upload(client, huge.encode(), "huge.json")
    assert response.status_code == 422 and "too large for a JSON number" in response.get_data(as_text=True)
    data = form_data(TEMPLATES_BY_KEY["sft_toolbench"].build(), "inf tools", client)
    data["tools"] = '[{"type": "function", "function": {"name": "f", "parameters": {"maximum": 1e999}}}]'
    response = client.post("/configs/new?template=sft_toolbench", data=data)
    assert response.status_code == 422 and "Not valid JSON" in response.get_data(as_text=True)
    assert config_count(app) == before


def test_train_py_json_round_trips_for_an_admin(app, signed_in):
    client, user = signed_in("admin@example.com")  # the first account is the admin
    assert user.is_admin
    response = upload(client, json.dumps(TRAIN_PY_EXAMPLE).encode(), "qwen.json")
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    config_id = int(response.headers["Location"].rstrip("/").split("/")[-2])
    assert saved(app, config_id).name == "qwen"
    full = client.get(f"/configs/{config_id}/download")
    assert full.status_code == 200 and "attachment" in full.headers["Content-Disposition"]
    as_train_py = client.get(f"/configs/{config_id}/download?shape=train_py").json
    for section, values in TRAIN_PY_EXAMPLE.items():
        for key, value in values.items():
            assert full.json[section][key] == value
            assert as_train_py[section][key] == value
    assert "export" in full.json and "export" not in as_train_py
    again = upload(client, json.dumps(as_train_py).encode(), "again.json")
    assert again.status_code == 302
    again_id = int(again.headers["Location"].rstrip("/").split("/")[-2])
    assert saved(app, again_id).config == saved(app, config_id).config
    assert client.get(f"/configs/{again_id}/download").json == full.json


def test_a_non_admin_gets_the_trust_remote_code_error_and_nothing_is_saved(app, signed_in, make_user):
    make_user("admin@example.com")
    client, user = signed_in("bob@example.com")
    assert not user.is_admin
    response = upload(client, json.dumps(TRAIN_PY_EXAMPLE).encode())
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "model.trust_remote_code" in html and "Only an admin" in html
    assert config_count(app) == 0
    data = form_data(TEMPLATES_BY_KEY["sft_toolbench"].build(), "sneaky", client)
    data["model__trust_remote_code"] = "y"
    assert client.post("/configs/new?template=sft_toolbench", data=data).status_code == 422
    assert config_count(app) == 0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "Not valid JSON"),
        (b"\xff\xfe\x00bad", "not UTF-8"),
        (b"[1, 2]", "A config is a JSON object"),
        (b'{"training": {"learning_rate": NaN}}', "NaN is not a JSON value"),
        (b'{"training": {"batch_size": "four", "epochs": 2}}', "training.batch_size"),
        (b'{"training": {"batch_size": "four", "epochs": 2}}', "training.epochs"),
        (b"[" * 100_000, "Not valid JSON"),
        (b'{"model": {"name": "x"}, "pad": "' + b"a" * 300_000 + b'"}', "the limit is 256 KB"),
    ],
)
def test_bad_uploads_get_clear_errors_and_save_nothing(app, signed_in, body, expected):
    client, _ = signed_in()
    response = upload(client, body)
    assert response.status_code == 422
    assert expected in response.get_data(as_text=True)
    assert config_count(app) == 0


def test_another_users_config_is_a_404_everywhere(app, signed_in):
    alice, _ = signed_in("alice@example.com")
    config_id = new_config(alice, name="alice's")
    bob, _ = signed_in("bob@example.com")
    token = csrf_token(bob, "/configs/")
    assert bob.get(f"/configs/{config_id}/edit").status_code == 404
    assert bob.get(f"/configs/{config_id}/download").status_code == 404
    data = form_data(TEMPLATES_BY_KEY["sft_toolbench"].build(), "stolen", bob)
    assert bob.post(f"/configs/{config_id}/edit", data=data).status_code == 404
    assert bob.post(f"/configs/{config_id}/duplicate", data={"csrf_token": token}).status_code == 404
    assert bob.post(f"/configs/{config_id}/delete", data={"csrf_token": token}).status_code == 404
    assert "alice&#39;s" not in bob.get("/configs/").get_data(as_text=True)
    assert config_count(app) == 1 and saved(app, config_id).name == "alice's"


def test_datasets_are_per_user_in_the_linter(app, signed_in):
    alice, alice_user = signed_in("alice@example.com")
    bob, _ = signed_in("bob@example.com")
    with app.app_context():
        db.session.add(Dataset(owner_id=alice_user.id, name="alice-prefs", kind="dpo", sample_count=100))
        db.session.commit()
    config = TEMPLATES_BY_KEY["dpo_basic"].build()
    for client, status in ((alice, 302), (bob, 422)):
        data = form_data(config, "dpo", client)
        data["data__dataset"] = "alice-prefs"
        assert client.post("/configs/new?template=dpo_basic", data=data).status_code == status


def test_state_changing_requests_need_the_csrf_token(app, signed_in):
    client, _ = signed_in()
    config_id = new_config(client, name="kept")
    data = form_data(TEMPLATES_BY_KEY["sft_toolbench"].build(), "no-token", client)
    del data["csrf_token"]
    assert client.post("/configs/new?template=sft_toolbench", data=data).status_code == 400
    assert client.post(f"/configs/{config_id}/edit", data=data).status_code == 400
    assert client.post("/configs/lint", data=data).status_code == 400
    assert client.post(f"/configs/{config_id}/duplicate").status_code == 400
    assert client.post(f"/configs/{config_id}/delete").status_code == 400
    body = {"file": (io.BytesIO(json.dumps(TRAIN_PY_EXAMPLE).encode()), "c.json")}
    assert client.post("/configs/upload", data=body, content_type="multipart/form-data").status_code == 400
    assert config_count(app) == 1
