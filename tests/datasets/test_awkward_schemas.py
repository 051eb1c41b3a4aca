"""Specs the validator accepts but no value (or no short one) can meet: generation finishes quickly with a
shortfall instead of hanging or crashing, and the checks read string bodies and renamed arguments right."""

from __future__ import annotations

import json

import pytest

from app.datasets.generation import GenerationOptions, generate_dataset
from app.openapi import check_request, check_tool_call, load_document, normalise
from app.openapi.tools import argument_names


def spec_of(operations: dict) -> object:
    document = {
        "openapi": "3.0.3",
        "info": {"title": "Awkward", "version": "1"},
        "servers": [{"url": "https://awkward.example"}],
        "paths": operations,
    }
    return normalise(load_document(json.dumps(document).encode(), "awkward.json"))


def get_with_query(operation_id: str, schema: dict) -> dict:
    parameter = {"name": "value", "in": "query", "required": True, "schema": schema}
    return {
        "get": {
            "operationId": operation_id,
            "parameters": [parameter],
            "responses": {"200": {"description": "ok"}},
        }
    }


AWKWARD = {
    "hugeMinLength": {"type": "string", "minLength": 50_000_000},
    "hugeMinItems": {"type": "array", "minItems": 3_000_000, "items": {"type": "integer"}},
    "hugeRepeat": {"type": "string", "pattern": "^a{200000000}$"},
    "emptyRange": {"type": "integer", "minimum": 10, "maximum": 5},
    "emptyIntegerRange": {"type": "integer", "minimum": 0.5, "maximum": 0.9},
    "tinyStep": {"type": "number", "multipleOf": 1e-320},
    "surrogates": {"type": "string", "pattern": "^[\\ud800-\\udfff]$"},
    "fine": {"type": "integer", "minimum": 1, "maximum": 9},
}


@pytest.mark.timeout(120)  # these once ran for many minutes (minItems) or raised (the ranges)
def test_generation_survives_schemas_no_short_value_can_meet():
    spec = spec_of({f"/{name}": get_with_query(name, schema) for name, schema in AWKWARD.items()})
    result = generate_dataset(
        spec, GenerationOptions(samples_per_operation=3, seed=1, include_irrelevant=False)
    )
    made = {row["messages"][-1]["tool_calls"][0]["function"]["name"] for row in result.rows}
    assert "fine" in made
    assert {"hugeMinLength", "hugeMinItems", "hugeRepeat", "emptyRange", "emptyIntegerRange"} <= set(
        result.shortfalls
    )


def test_a_string_body_is_the_string_in_a_call_and_json_text_in_a_request():
    spec = spec_of({"/notes": {"post": {
        "operationId": "createNote",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "string"}}}},
        "responses": {"201": {"description": "made"}},
    }}})  # fmt: skip
    assert all(check.ok for check in check_tool_call(spec, "createNote", {"body": "buy milk"}))
    assert not all(check.ok for check in check_tool_call(spec, "createNote", {"body": 5}))
    json_header = {"Content-Type": "application/json"}
    url = "https://awkward.example/notes"
    assert all(check.ok for check in check_request(spec, "POST", url, json_header, '"buy milk"'))
    assert not all(check.ok for check in check_request(spec, "POST", url, json_header, "buy milk"))


def test_renamed_arguments_never_share_a_name():
    spec = spec_of({"/a/{id}": {"get": {
        "operationId": "getA",
        "parameters": [
            {"name": "id_header", "in": "query", "required": True, "schema": {"type": "integer"}},
            {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}},
            {"name": "id", "in": "header", "required": True, "schema": {"type": "string"}},
        ],
        "responses": {"200": {"description": "ok"}},
    }}})  # fmt: skip
    names = [name for name, _ in argument_names(spec.operations[0])]
    assert names == ["id_header", "id", "id_header_2"]
    call = {"id_header": 3, "id": 7, "id_header_2": "x"}
    assert all(check.ok for check in check_tool_call(spec, "getA", call))


def test_an_operation_no_value_satisfies_is_named_with_what_its_checks_refused():
    spec = spec_of(
        {
            "/onlyNull": get_with_query("onlyNull", {"type": "string", "enum": [None]}),
            "/fine": get_with_query("fine", {"type": "integer", "minimum": 1, "maximum": 9}),
        }
    )
    result = generate_dataset(
        spec, GenerationOptions(samples_per_operation=2, seed=1, include_irrelevant=False)
    )
    assert result.shortfalls == {"onlyNull": 2}
    assert "onlyNull never passed its checks: Missing: query parameter 'value'." in result.message
    assert "fine never passed" not in result.message
