"""Half a UTF-16 surrogate pair (a `\\ud800` escape without its partner) parses as JSON but is no text:
every form that stores typed JSON refuses it with the reason, so no page that shows it later fails."""

from __future__ import annotations

import pytest

from app.chat.services import parse_pasted_tools
from app.extensions import db
from app.json_input import loads
from app.models import LLMModel
from tests.conftest import csrf_token

HALF_PAIR = '{"accuracy\\ud800": 1}'


def test_text_only_parsing_names_the_half_pair_as_its_escape():
    assert loads(HALF_PAIR) == {"accuracy\ud800": 1}  # still readable where it is only checked
    with pytest.raises(ValueError, match=r'"accuracy\\ud800" holds half a UTF-16 surrogate pair'):
        loads(HALF_PAIR, text_only=True)
    assert loads('{"ok": "\\ud83d\\ude00"}', text_only=True) == {"ok": "😀"}  # a whole pair is text


def test_a_models_evaluation_metrics_with_a_half_pair_are_refused_and_the_list_still_shows(app, signed_in):
    client, _ = signed_in()
    data = {
        "csrf_token": csrf_token(client, "/models/"),
        "provider": "hf_inference",
        "name": "m",
        "model_id": "owner/model",
        "max_tokens": "256",
        "enabled": "y",
        "evaluation_metrics": HALF_PAIR,
    }
    response = client.post("/models/new", data=data)
    assert response.status_code == 422
    assert "half a UTF-16 surrogate pair" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(LLMModel).filter_by(name="m").count() == 0
    assert client.get("/models/").status_code == 200


def test_pasted_tools_with_a_half_pair_are_refused():
    tools, errors = parse_pasted_tools('[{"name": "f\\udc00", "parameters": {"type": "object"}}]')
    assert tools == [] and "half a UTF-16 surrogate pair" in errors[0]


def test_an_uploaded_config_with_a_half_pair_is_refused_with_the_reason(app, signed_in):
    from tests.configs.test_pages import upload

    client, _ = signed_in()
    response = upload(client, b'{"name": "x\\ud800", "method": "sft"}', "c.json")
    assert response.status_code == 422
    assert "half a UTF-16 surrogate pair" in response.get_data(as_text=True)
