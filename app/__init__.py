"""Toolsmith web application factory."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from app.config import PROJECT_ROOT, Config, limiter_storage_uri, load_secret
from app.extensions import csrf, db, htmx, limiter, login_manager, migrate


def create_app(config_class: type = Config) -> Flask:
    """Build the Flask app: config, extensions, blueprints, error pages and CLI commands."""
    instance_path = Path(config_class.INSTANCE_PATH).resolve()
    instance_path.mkdir(parents=True, exist_ok=True)
    app = Flask(
        __name__,
        instance_path=str(instance_path),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.from_object(config_class)
    from app.ownership import RowIdConverter

    app.url_map.converters["int"] = RowIdConverter  # before any route is added
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = load_secret(instance_path, "secret_key")
    app.config.setdefault("RATELIMIT_STORAGE_URI", limiter_storage_uri(app.config["REDIS_URL"]))
    if app.config["TRUSTED_PROXY_HOPS"]:
        hops = app.config["TRUSTED_PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    _init_extensions(app)
    _register_blueprints(app)

    from app import cli, errors, security_headers

    errors.register(app)
    security_headers.register(app)
    cli.register(app)
    return app


def _init_extensions(app: Flask) -> None:
    from app import uploads

    uploads.register(app)  # first: its hook must run before CSRFProtect's reads the request body
    db.init_app(app)
    # Batch mode lets Alembic alter SQLite tables (it recreates them under the hood).
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    htmx.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    from app import models  # noqa: F401  (register the tables on the metadata)
    from app.auth.services import load_user_from_session

    login_manager.user_loader(load_user_from_session)


def _register_blueprints(app: Flask) -> None:
    from app.admin import bp as admin_bp
    from app.analytics import bp as analytics_bp
    from app.api import bp as api_bp
    from app.auth import bp as auth_bp
    from app.background import bp as background_bp
    from app.chat import bp as chat_bp
    from app.configs import bp as configs_bp
    from app.datasets import bp as datasets_bp
    from app.evaluations import bp as evaluations_bp
    from app.main import bp as main_bp
    from app.registry import bp as registry_bp
    from app.specs import bp as specs_bp
    from app.training import bp as training_bp

    app.register_blueprint(main_bp)
    app.register_blueprint(auth_bp, url_prefix="/auth")
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(background_bp, url_prefix="/jobs")
    app.register_blueprint(registry_bp, url_prefix="/models")
    app.register_blueprint(chat_bp, url_prefix="/chat")
    app.register_blueprint(analytics_bp, url_prefix="/analytics")
    app.register_blueprint(specs_bp, url_prefix="/specs")
    app.register_blueprint(configs_bp, url_prefix="/configs")
    app.register_blueprint(datasets_bp, url_prefix="/datasets")
    app.register_blueprint(training_bp, url_prefix="/runs")
    app.register_blueprint(evaluations_bp, url_prefix="/evaluations")
    # Bearer tokens only (the session cookie is ignored there), so no CSRF token is asked for.
    csrf.exempt(api_bp)
    app.register_blueprint(api_bp, url_prefix="/v1")


@event.listens_for(Engine, "connect")
def _configure_sqlite(dbapi_connection, connection_record) -> None:
    """SQLite is shared by the web server and workers: WAL lets readers and one writer work at once."""
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
