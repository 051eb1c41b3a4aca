"""Shared fixtures: a real Redis, a real database (SQLite file, or PostgreSQL via TEST_DATABASE_URL),
the app built by the real factory, and helpers to register and sign in users.

- TEST_DATABASE_URL: run against that PostgreSQL database (its tables are emptied between tests).
- TEST_REDIS_URL: use that Redis instead of an embedded one (its current db is FLUSHED between tests).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from app import create_app
from app.config import (
    PROJECT_ROOT,
    TestConfig,
    embedded_redis_socket,
    limiter_storage_uri,
    normalise_database_url,
)
from app.embedded_redis import EmbeddedRedis
from app.extensions import db
from app.models import User
from tests.app_reuse import TEMPLATES, share_compiled_url_builders

TEST_PASSWORD = "correct horse battery"


share_compiled_url_builders()


def pytest_collection_modifyitems(items):
    """Every test that builds the app touches the database: mark it so CI can re-run those on PostgreSQL."""
    for item in items:
        if "app" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.database)


@pytest.fixture
def no_ambient_hub_settings(monkeypatch):
    """No Hugging Face token or offline switch from this machine: a test's Hub is its own."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield url
        return
    data_dir = tmp_path_factory.mktemp("redis")
    server = EmbeddedRedis(embedded_redis_socket(data_dir), data_dir)
    server.start()
    yield server.url
    server.stop()


def _migrate(database_uri: str, instance: Path) -> None:
    from flask_migrate import upgrade

    class MigrateConfig(TestConfig):
        INSTANCE_PATH = str(instance)
        SQLALCHEMY_DATABASE_URI = database_uri

    app = create_app(MigrateConfig)
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def database_template(tmp_path_factory):
    """Migrate once per session; each test gets a copy (SQLite) or emptied tables (PostgreSQL)."""
    instance = tmp_path_factory.mktemp("migrate-instance")
    pg_url = os.environ.get("TEST_DATABASE_URL")
    if pg_url:
        uri = normalise_database_url(pg_url)
        engine = sa.create_engine(uri)
        with engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA public CASCADE"))
            connection.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
        _migrate(uri, instance)
        return {"kind": "postgresql", "uri": uri}
    path = tmp_path_factory.mktemp("db-template") / "template.db"
    _migrate(f"sqlite:///{path}", instance)
    return {"kind": "sqlite", "path": path}


def _fresh_database_uri(template: dict, tmp_path: Path) -> str:
    if template["kind"] == "sqlite":
        target = tmp_path / "toolsmith.db"
        shutil.copyfile(template["path"], target)
        return f"sqlite:///{target}"
    engine = sa.create_engine(template["uri"])
    with engine.begin() as connection:
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        connection.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return template["uri"]


@pytest.fixture
def app(database_template, redis_url, tmp_path):
    uri = _fresh_database_uri(database_template, tmp_path)
    redis.Redis.from_url(redis_url).flushdb()

    class PerTestConfig(TestConfig):
        INSTANCE_PATH = str(tmp_path / "instance")
        SQLALCHEMY_DATABASE_URI = uri
        REDIS_URL = redis_url
        EMBEDDED_REDIS = False
        RATELIMIT_STORAGE_URI = limiter_storage_uri(redis_url)
        MODEL_STORE = str(tmp_path / "models")
        DATASET_STORE = str(tmp_path / "datasets")

    application = create_app(PerTestConfig)
    application.jinja_env.bytecode_cache = TEMPLATES
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def csrf_token(client, path: str = "/auth/login") -> str:
    """The session's CSRF token, read from the page's meta tag as the browser's htmx would."""
    page = client.get(path, follow_redirects=True)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def post_form(client, path: str, data: dict | None = None, **kwargs):
    """POST a form with the session's CSRF token, like a browser would."""
    payload = dict(data or {})
    payload.setdefault("csrf_token", csrf_token(client, "/auth/login"))
    return client.post(path, data=payload, **kwargs)


def register(client, email: str, password: str = TEST_PASSWORD):
    return post_form(client, "/auth/register", {"email": email, "password": password, "confirm": password})


def login(client, email: str, password: str = TEST_PASSWORD, **kwargs):
    return post_form(client, "/auth/login", {"email": email, "password": password}, **kwargs)


@pytest.fixture
def make_user(app):
    """Create an account directly through the service layer (the first one becomes admin)."""
    from app.auth.services import create_account

    def factory(email: str, password: str = TEST_PASSWORD, **fields) -> User:
        with app.app_context():
            user = create_account(email, password)
            for name, value in fields.items():
                setattr(user, name, value)
            db.session.commit()
            db.session.refresh(user)
            db.session.expunge(user)
            return user

    return factory


@pytest.fixture
def signed_in(app, make_user):
    """A client signed in as a new user; returns (client, user)."""

    def factory(email: str = "alice@example.com", **fields):
        user = make_user(email, **fields)
        client = app.test_client()
        response = login(client, email)
        assert response.status_code == 302, response.get_data(as_text=True)
        return client, user

    return factory


def worker_environment(app) -> dict[str, str]:
    """Environment for a real `flask worker` subprocess that shares this test's database and Redis."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        REDIS_URL=app.config["REDIS_URL"],
        INSTANCE_PATH=app.instance_path,
        MODEL_STORE=app.config["MODEL_STORE"],
        DATASET_STORE=app.config["DATASET_STORE"],
        SECRET_KEY=app.config["SECRET_KEY"],
        JOB_HEARTBEAT_SECONDS=str(app.config["JOB_HEARTBEAT_SECONDS"]),
        JOB_STALE_SECONDS=str(app.config["JOB_STALE_SECONDS"]),
        JOB_RECONCILE_SECONDS=str(app.config["JOB_RECONCILE_SECONDS"]),
        PYTHONUNBUFFERED="1",
    )
    return env


def flask_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "wsgi", *args]


def start_worker(app, *args: str, log_path: Path | None = None) -> subprocess.Popen:
    """Start a real `flask worker` process in its own session (so a test can kill the whole group)."""
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    return subprocess.Popen(
        flask_command("worker", *args),
        cwd=PROJECT_ROOT,
        env=worker_environment(app),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


LLAMA_SERVER_ALIAS = "smollm2"


@pytest.fixture
def dead_port():
    """A loopback port that refuses connections for the whole test (no server can take it meanwhile)."""
    from tests.llama_server import refused_port

    with refused_port() as port:
        yield port


@pytest.fixture(scope="session")
def llama_server_url():
    """Base URL (ending in /v1) of a real `python -m llama_cpp.server` serving the default SmolLM2 GGUF."""
    from app.serving.default_model import default_gguf_path
    from tests.llama_server import llama_server

    with llama_server(default_gguf_path(), LLAMA_SERVER_ALIAS) as base_url:
        yield base_url


@pytest.fixture
def default_model_id(app) -> int:
    """The offline default model registered (as the app does at start-up); its id."""
    from app.models import LLMModel
    from app.serving.default_model import ensure_default_model_registered

    with app.app_context():
        ensure_default_model_registered()
        return db.session.execute(db.select(LLMModel.id).where(LLMModel.owner_id.is_(None))).scalar_one()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random Llama (2 layers, hidden 64) with SmolLM2's real tokenizer, read from the shipped GGUF:
    real transformers / peft / trl code paths in seconds."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from app.serving.default_model import default_gguf_path

    gguf = default_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny")
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
