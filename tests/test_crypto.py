"""API keys are encrypted at rest and can be rotated."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from app.crypto import decrypt_secret, encrypt_secret
from app.extensions import db
from app.models import LLMModel, Provider

SECRET = "sk-test-0123456789abcdef-never-show-me"


def _remote_model(owner_id: int | None = None) -> LLMModel:
    model = LLMModel(
        owner_id=owner_id,
        name="remote",
        provider=Provider.OPENAI_COMPATIBLE,
        base_url="https://api.example.com/v1",
        model_id="gpt-x",
    )
    model.set_api_key(SECRET)
    return model


def test_round_trip_and_ciphertext_hides_the_key(app):
    with app.app_context():
        token = encrypt_secret(SECRET)
        assert SECRET not in token
        assert decrypt_secret(token) == SECRET
        assert encrypt_secret(SECRET) != token  # Fernet tokens are randomised


def test_key_is_stored_encrypted_and_never_in_repr(app, caplog):
    with app.app_context():
        model = _remote_model()
        db.session.add(model)
        db.session.commit()
        raw = db.session.execute(sa.text("SELECT api_key_encrypted FROM llm_models")).scalar_one()
        assert SECRET not in raw
        assert model.api_key() == SECRET and model.has_api_key
        with caplog.at_level(logging.DEBUG):
            logging.getLogger("test").info("model %r", model)
        assert SECRET not in repr(model) and SECRET not in caplog.text


def test_rotate_keys_reencrypts_with_a_new_key(app, runner, make_user):
    from app.crypto import load_keys
    from app.models import User

    hub_user = make_user("hub@example.com")
    with app.app_context():
        db.session.add(_remote_model())
        db.session.get(User, hub_user.id).set_hub_token("hf_rotate_me_0123456789")
        db.session.commit()
        before = db.session.execute(sa.select(LLMModel.api_key_encrypted)).scalar_one()
        old_keys = load_keys()

    result = runner.invoke(args=["rotate-keys"])
    assert "Re-encrypted 2 secret(s): 1 endpoint API key(s), 1 Hub token(s)." in result.output, result.output

    with app.app_context():
        after_row = db.session.execute(sa.select(LLMModel)).scalar_one()
        keys = load_keys()
        assert len(keys) == len(old_keys) + 1 and keys[1:] == old_keys
        assert after_row.api_key_encrypted != before
        assert after_row.api_key() == SECRET
        # Only the newest key is needed now: the old ones can be retired (the Hub token too).
        app.config["ENCRYPTION_KEYS"] = keys[0]
        assert after_row.api_key() == SECRET
        assert db.session.get(User, hub_user.id).hub_token() == "hf_rotate_me_0123456789"


def test_a_key_the_server_can_no_longer_decrypt_is_a_clear_failure_not_a_500(app, signed_in):
    from cryptography.fernet import Fernet

    from tests.conftest import post_form

    admin, _ = signed_in("admin@example.com")
    with app.app_context():
        model = _remote_model()
        db.session.add(model)
        db.session.commit()
        model_id = model.id
    app.config["ENCRYPTION_KEYS"] = Fernet.generate_key().decode()  # the old key dropped, not rotated
    test = post_form(admin, f"/models/{model_id}/test", follow_redirects=True).get_data(as_text=True)
    assert "cannot be decrypted" in test and "enter the key again" in test
    tried = post_form(admin, f"/models/{model_id}/try", {"prompt": "hi"})
    assert tried.status_code == 502 and "cannot be decrypted" in tried.get_data(as_text=True)


def test_configured_keys_take_precedence(app):
    from cryptography.fernet import Fernet

    app.config["ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    with app.app_context():
        assert decrypt_secret(encrypt_secret("x")) == "x"
