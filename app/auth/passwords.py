"""Password hashing with Argon2id at (at least) OWASP's recommended strength."""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

# Verifying against this when the account does not exist keeps sign-in timing the same either way.
_DUMMY_PASSWORD = "toolsmith-timing-equaliser"


def _hasher() -> PasswordHasher:
    config = current_app.config
    return PasswordHasher(
        time_cost=config["ARGON2_TIME_COST"],
        memory_cost=config["ARGON2_MEMORY_COST_KIB"],
        parallelism=config["ARGON2_PARALLELISM"],
        type=Type.ID,
    )


def hash_password(password: str) -> str:
    return _hasher().hash(password)


_dummy_hashes: dict[tuple[int, int, int], str] = {}


def _dummy_hash(hasher: PasswordHasher) -> str:
    key = (hasher.time_cost, hasher.memory_cost, hasher.parallelism)
    if key not in _dummy_hashes:
        _dummy_hashes[key] = hasher.hash(_DUMMY_PASSWORD)
    return _dummy_hashes[key]


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; a missing hash costs the same one verification (no user enumeration)."""
    hasher = _hasher()
    if password_hash is None:
        hasher.verify(_dummy_hash(hasher), _DUMMY_PASSWORD)
        return False
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the stored hash is weaker than the configured parameters (upgrade it on sign-in)."""
    return _hasher().check_needs_rehash(password_hash)
