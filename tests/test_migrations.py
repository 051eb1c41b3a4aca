"""The migrations build exactly the schema the models describe, and run both ways."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from app.extensions import db


def test_migrations_match_the_models(app):
    with app.app_context():
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
    assert differences == [], f"models and migrations disagree; run `flask db migrate`: {differences}"


def test_upgrade_and_downgrade_on_a_fresh_sqlite_file(tmp_path):
    import logging

    from app import create_app
    from app.config import TestConfig

    earlier = logging.getLogger("transformers.trainer")  # made before migrating, as a worker's are

    class FreshConfig(TestConfig):
        INSTANCE_PATH = str(tmp_path / "instance")
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'fresh.db'}"

    app = create_app(FreshConfig)
    with app.app_context():
        upgrade()
        assert {"users", "background_jobs"} <= set(db.inspect(db.engine).get_table_names())
        downgrade(revision="base")
        assert "users" not in db.inspect(db.engine).get_table_names()
        upgrade()
        db.engine.dispose()
    assert not earlier.disabled, "migrating must not silence loggers made before it"


def test_a_model_whose_run_was_deleted_before_the_foreign_key_loses_the_dangling_id(tmp_path):
    import sqlalchemy as sa

    from app import create_app
    from app.config import TestConfig
    from app.models import LLMModel, TrainingRun

    class FreshConfig(TestConfig):
        INSTANCE_PATH = str(tmp_path / "instance")
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'fresh.db'}"

    app = create_app(FreshConfig)
    with app.app_context():
        upgrade(revision="c5e7a9b1d3f6")  # the schema before the key
        with db.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO llm_models (name, description, provider, supports_streaming, supports_tools,"
                    " max_tokens, enabled, training_run_id, created_at, updated_at) VALUES ('orphan', '',"
                    " 'local_gguf', 1, 1, 512, 1, 999, '2026-01-01', '2026-01-01')"
                )
            )
        upgrade()
        orphan = db.session.execute(db.select(LLMModel).filter_by(name="orphan")).scalar_one()
        assert orphan.training_run_id is None
        # From now on the database keeps the link honest itself.
        db.session.add(LLMModel(name="linked", provider="local_gguf", training_run_id=12345))
        with pytest.raises(sa.exc.IntegrityError):
            db.session.commit()
        db.session.rollback()
        assert TrainingRun.__table__.c.id in {
            key.column for key in LLMModel.__table__.c.training_run_id.foreign_keys
        }
        db.engine.dispose()
