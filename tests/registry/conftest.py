"""Fixtures for the Models pages: the default model registered, and a helper to add remote models."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import LLMModel
from tests.conftest import csrf_token


@pytest.fixture
def default_model_id(app) -> int:
    from app.serving.default_model import ensure_default_model_registered

    with app.app_context():
        ensure_default_model_registered()
        return db.session.execute(db.select(LLMModel.id)).scalar_one()


def add_model(client, data: dict, **kwargs):
    """POST the add form like the browser: CSRF token from the page, provider template fields."""
    payload = {"csrf_token": csrf_token(client, "/models/new"), "max_tokens": "256", "enabled": "y"}
    payload.update(data)
    return client.post("/models/new", data=payload, **kwargs)


def model_rows(app) -> list[LLMModel]:
    with app.app_context():
        rows = list(db.session.execute(db.select(LLMModel).order_by(LLMModel.id)).scalars())
        db.session.expunge_all()
        return rows
