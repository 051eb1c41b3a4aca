"""The built-in default model is registered once, as a global model every user can see."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import LLMModel
from app.serving.default_model import default_gguf_path, ensure_default_model_registered
from app.serving.gguf_info import GGUFError, read_gguf_info


def test_default_model_is_registered_once_with_header_metadata(app, runner):
    with app.app_context():
        assert ensure_default_model_registered() is True
        assert ensure_default_model_registered() is False
    assert "already registered" in runner.invoke(args=["seed"]).output
    with app.app_context():
        model = db.session.execute(sa.select(LLMModel)).scalar_one()
    assert model.owner_id is None and model.enabled and model.provider == "local_gguf"
    assert model.architecture == "llama" and model.quantization == "Q4_1"
    assert 130_000_000 < model.parameter_count < 140_000_000
    assert model.context_length == 8192 and model.has_chat_template


def test_gguf_info_refuses_non_gguf_and_truncated_files(tmp_path):
    text = tmp_path / "notes.gguf"
    text.write_text("just text pretending to be a model")
    with pytest.raises(GGUFError, match="not a GGUF file"):
        read_gguf_info(text)
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(default_gguf_path().read_bytes()[:4096])
    with pytest.raises(GGUFError, match="damaged or truncated"):
        read_gguf_info(truncated)


def test_global_model_is_visible_to_every_user_but_private_models_are_not(app, make_user):
    from flask_login import login_user
    from werkzeug.exceptions import NotFound

    from app.models import User
    from app.ownership import get_visible_or_404

    alice = make_user("alice@example.com")
    bob = make_user("bob@example.com")
    with app.app_context():
        ensure_default_model_registered()
        private = LLMModel(owner_id=alice.id, name="alice's", provider="local_gguf", gguf_path="/x.gguf")
        db.session.add(private)
        db.session.commit()
        private_id = private.id
        default_id = db.session.execute(
            sa.select(LLMModel.id).where(LLMModel.owner_id.is_(None))
        ).scalar_one()
    with app.test_request_context():
        login_user(db.session.get(User, bob.id))
        assert get_visible_or_404(LLMModel, default_id).name == "SmolLM2-135M-Instruct"
        with pytest.raises(NotFound):
            get_visible_or_404(LLMModel, private_id)


def _write_gguf(path, architecture: str, tensor_rows: int) -> None:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_context_length(256)
    writer.add_tensor("token_embd.weight", np.zeros((tensor_rows, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_gguf_info_is_remembered_until_the_file_changes(tmp_path):
    from app.serving.gguf_info import _read_unchanged

    path = tmp_path / "model.gguf"
    _write_gguf(path, "llama", 4)
    first = read_gguf_info(path)
    hits = _read_unchanged.cache_info().hits
    assert read_gguf_info(path) == first and _read_unchanged.cache_info().hits == hits + 1
    assert first.architecture == "llama" and first.parameter_count == 32 and first.context_length == 256
    _write_gguf(path, "qwen2", 6)  # rewritten in place: read again
    changed = read_gguf_info(path)
    assert changed.architecture == "qwen2" and changed.parameter_count == 48
    path.unlink()
    with pytest.raises(GGUFError, match="cannot be read"):
        read_gguf_info(path)
