"""OpenAPI fixtures: the shared example documents, loaded and normalised, and a guard that fails any test
in this package that tries to open a network connection (the validator must never fetch a `$ref`)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from app.openapi import NormalisedSpec, load_document, normalise

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "openapi"
PETSTORE_V2 = "petstore-v2.swagger2.0.yaml"
PETSTORE_V3 = "petstore-v3.openapi3.0.yaml"
PETSTORE_V31 = "petstore-v31-codefirst.openapi3.1.json"
UBER = "oai-example-uber.swagger2.0.json"
USPTO = "oai-example-uspto.openapi3.0.json"
WEBHOOK = "oai-example-webhook.openapi3.1.yaml"
ALL_FIXTURES = (PETSTORE_V2, PETSTORE_V3, PETSTORE_V31, UBER, USPTO, WEBHOOK)


def fixture_bytes(name: str) -> bytes:
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip(f"OpenAPI fixture {path} is missing (the shared fixtures live beside the repository)")
    return path.read_bytes()


def fixture_doc(name: str) -> dict:
    return load_document(fixture_bytes(name), name)


def fixture_spec(name: str) -> NormalisedSpec:
    return normalise(fixture_doc(name))


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Record and refuse every attempt to resolve a host or connect; the test fails if there was one."""
    attempts: list[tuple] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access is not allowed in the OpenAPI tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield attempts
    assert not attempts, f"network access was attempted: {attempts}"
