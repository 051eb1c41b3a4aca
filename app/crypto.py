"""Secrets at rest (API keys): Fernet tokens under a MultiFernet key ring.

Keys come from `ENCRYPTION_KEYS` (comma-separated Fernet keys, newest first) or, when unset, from
`instance/encryption_keys` (generated on first use, mode 0600). Rotation puts a new key first; every
key stays able to decrypt until `flask rotate-keys` has re-encrypted all stored secrets with the newest.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app

from app.config import load_or_create_secret

KEY_FILE = "encryption_keys"


class SecretDecryptionError(RuntimeError):
    """A stored secret could not be decrypted with any configured key."""


def _key_file() -> Path:
    return Path(current_app.instance_path) / KEY_FILE


def load_keys() -> list[str]:
    """The key ring, newest first; generates the instance key file when no keys are configured."""
    configured = current_app.config.get("ENCRYPTION_KEYS")
    if configured:
        return [key.strip() for key in configured.split(",") if key.strip()]
    ring = load_or_create_secret(_key_file(), generate=lambda: Fernet.generate_key().decode())
    return [line.strip() for line in ring.splitlines() if line.strip()]


def _write_keys(path: Path, keys: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(keys) + "\n")
    os.replace(temporary, path)  # atomic: a crash never leaves a half-written key ring


def _ring() -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in load_keys()])


def encrypt_secret(plaintext: str) -> str:
    return _ring().encrypt(plaintext.encode()).decode()


def decrypt_secret(token: str) -> str:
    try:
        return _ring().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretDecryptionError(
            "A stored secret cannot be decrypted with the configured keys (was ENCRYPTION_KEYS changed?)"
        ) from exc


def add_new_key() -> bool:
    """Put a fresh key first in the instance key file; False when keys come from ENCRYPTION_KEYS."""
    if current_app.config.get("ENCRYPTION_KEYS"):
        return False
    keys = load_keys()
    _write_keys(_key_file(), [Fernet.generate_key().decode(), *keys])
    return True


def reencrypt(token: str) -> str:
    """The same secret under the newest key."""
    try:
        return _ring().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretDecryptionError("A stored secret cannot be decrypted with the configured keys") from exc
