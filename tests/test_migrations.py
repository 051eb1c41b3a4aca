"""The migrations build exactly the schema the models describe, and run both ways."""

from __future__ import annotations

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
