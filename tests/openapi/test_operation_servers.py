"""OpenAPI 3 `servers` on a path item or an operation replace the document's for that operation: the
tool call's URL uses them, and a request sent to them is still matched and checked."""

from __future__ import annotations

import json

from app.openapi import CHECK_NAMES, check_request, load_document, normalise, tool_call_to_request
from app.openapi.normalise import NormalisedSpec

OK = {"200": {"description": "ok"}}
DOCUMENT = {
    "openapi": "3.1.0",
    "info": {"title": "Files", "version": "1"},
    "servers": [{"url": "https://api.example/v1"}],
    "paths": {
        "/files": {"get": {"operationId": "listFiles", "responses": OK}},
        "/uploads": {
            "servers": [
                {"url": "https://{region}.upload.example/u", "variables": {"region": {"default": "eu"}}}
            ],
            "post": {"operationId": "upload", "responses": OK},
            "get": {
                "operationId": "listUploads",
                "servers": [{"url": "https://read.example/r/"}, {"url": "https://mirror.example/r"}],
                "responses": OK,
            },
        },
    },
}


def files() -> NormalisedSpec:
    return normalise(load_document(json.dumps(DOCUMENT).encode(), "files.json"))


def test_a_path_items_or_operations_servers_replace_the_documents():
    spec = files()
    servers = {op.operation_id: op.servers for op in spec.operations}
    assert servers == {
        "listFiles": [],
        "upload": ["https://eu.upload.example/u"],
        "listUploads": ["https://read.example/r", "https://mirror.example/r"],
    }
    assert spec.base_urls == ["https://api.example/v1"]
    urls = {name: tool_call_to_request(spec, name, {}).url for name in servers}
    assert urls == {
        "listFiles": "https://api.example/v1/files",
        "upload": "https://eu.upload.example/u/uploads",
        "listUploads": "https://read.example/r/uploads",
    }


def test_a_request_to_an_operations_own_server_is_matched_and_checked():
    spec = files()
    for url in ("https://eu.upload.example/u/uploads", "https://mirror.example/r/uploads"):
        checks = check_request(spec, "GET" if "mirror" in url else "POST", url)
        assert [check.name for check in checks] == list(CHECK_NAMES)
        assert all(check.ok for check in checks), checks


def test_the_servers_survive_the_json_column_and_older_rows_read_without_them():
    spec = files()
    again = NormalisedSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    stored = spec.to_dict()
    for op in stored["operations"]:
        del op["servers"]  # a spec normalised before operations had servers
    assert [op.servers for op in NormalisedSpec.from_dict(stored).operations] == [[], [], []]


def test_swagger_and_malformed_servers_give_no_operation_servers():
    document = {**DOCUMENT, "paths": {"/files": {"servers": "https://x", "get": {
        "operationId": "listFiles", "servers": [{"url": 5}, "nope"], "responses": OK}}}}  # fmt: skip
    spec = normalise(load_document(json.dumps(document).encode(), "files.json"))
    assert spec.operations[0].servers == []
