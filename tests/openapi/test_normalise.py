from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from app.openapi import NormalisedSpec, SpecError, normalise
from tests.openapi.conftest import (
    PETSTORE_V2,
    PETSTORE_V3,
    PETSTORE_V31,
    UBER,
    USPTO,
    WEBHOOK,
    fixture_spec,
)

OPERATION_COUNTS = {PETSTORE_V2: 20, PETSTORE_V3: 19, PETSTORE_V31: 3, UBER: 5, USPTO: 3, WEBHOOK: 0}


@pytest.mark.parametrize(("name", "count"), OPERATION_COUNTS.items())
def test_operation_counts(name, count):
    spec = fixture_spec(name)
    assert len(spec.operations) == count
    ids = [op.operation_id for op in spec.operations]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("name", OPERATION_COUNTS)
def test_the_normalised_spec_survives_a_json_column(name):
    spec = fixture_spec(name)
    stored = json.loads(json.dumps(spec.to_dict()))
    assert NormalisedSpec.from_dict(stored) == spec


@pytest.mark.parametrize("name", OPERATION_COUNTS)
def test_every_schema_is_valid_json_schema(name):
    for op in fixture_spec(name).operations:
        for parameter in op.parameters:
            Draft202012Validator.check_schema(parameter.schema)
        if op.request_body:
            Draft202012Validator.check_schema(op.request_body.schema)


def test_webhooks_only_document_has_no_operations_and_says_why():
    spec = fixture_spec(WEBHOOK)
    assert spec.operations == []
    assert spec.message == (
        "This document defines no paths (it has 1 webhook); there are no operations to turn into tools."
    )
    assert fixture_spec(PETSTORE_V2).message is None


def test_summary_fields():
    v2 = fixture_spec(PETSTORE_V2)
    assert (v2.title, v2.version, v2.spec_format) == ("Swagger Petstore", "1.0.0", "swagger-2.0")
    assert v2.base_urls == ["https://petstore.swagger.io/v2", "http://petstore.swagger.io/v2"]
    assert fixture_spec(PETSTORE_V3).spec_format == "openapi-3.0"
    assert fixture_spec(PETSTORE_V31).spec_format == "openapi-3.1"
    assert fixture_spec(PETSTORE_V31).base_urls == ["/api/v31"]  # relative server URLs stay relative
    assert fixture_spec(USPTO).base_urls == ["https://developer.uspto.gov/ds-api"]  # {scheme} → default
    assert fixture_spec(UBER).base_urls == ["https://api.uber.com/v1"]


def test_swagger_body_and_form_parameters_become_request_bodies():
    spec = fixture_spec(PETSTORE_V2)
    add = spec.operation("addPet")
    assert add.parameters == []
    assert add.request_body.media_type == "application/json"
    assert add.request_body.required
    assert add.request_body.schema["required"] == ["name", "photoUrls"]
    assert add.request_body.schema["properties"]["category"]["properties"]["name"] == {"type": "string"}

    form = spec.operation("updatePetWithForm")
    assert [(p.name, p.location) for p in form.parameters] == [("petId", "path")]
    assert form.request_body.media_type == "application/x-www-form-urlencoded"
    assert set(form.request_body.schema["properties"]) == {"name", "status"}
    assert not form.request_body.required

    upload = spec.operation("uploadFile")
    assert upload.request_body.media_type == "multipart/form-data"
    assert upload.request_body.schema["properties"]["file"]["format"] == "binary"


def test_parameters_and_responses():
    spec = fixture_spec(PETSTORE_V2)
    delete = spec.operation("deletePet")
    assert [(p.name, p.location, p.required) for p in delete.parameters] == [
        ("api_key", "header", False),
        ("petId", "path", True),
    ]
    assert delete.responses == {"400": "Invalid ID supplied", "404": "Pet not found"}
    order = spec.operation("getOrderById").parameters[0]
    assert order.schema == {"type": "integer", "maximum": 10, "minimum": 1, "format": "int64"}
    status = spec.operation("findPetsByStatus").parameters[0]
    assert status.schema["items"]["enum"] == ["available", "pending", "sold"]
    assert status.explode  # collectionFormat: multi
    assert spec.operation("findPetsByTags").deprecated


def tiny(paths: dict, components: dict | None = None, version: str = "3.0.3") -> dict:
    doc = {"openapi": version, "info": {"title": "Tiny", "version": "1"}, "paths": paths}
    if components:
        doc["components"] = components
    return doc


OK = {"200": {"description": "ok"}}


def test_recursive_schemas_are_cut_instead_of_recursing_forever():
    node = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
        },
    }
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}}
    doc = tiny({"/tree": {"post": {"requestBody": body, "responses": OK}}}, {"schemas": {"Node": node}})
    schema = normalise(doc).operations[0].request_body.schema
    assert schema["properties"]["name"] == {"type": "string"}
    cut = schema["properties"]["children"]["items"]
    assert "recursive" in cut["description"]
    Draft202012Validator.check_schema(schema)
    json.dumps(schema)


def test_mutually_recursive_schemas_are_cut_too():
    schemas = {
        "A": {"type": "object", "properties": {"b": {"$ref": "#/components/schemas/B"}}},
        "B": {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/A"}}},
    }
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}}
    doc = tiny({"/x": {"post": {"requestBody": body, "responses": OK}}}, {"schemas": schemas})
    schema = normalise(doc).operations[0].request_body.schema
    assert schema["properties"]["b"]["properties"]["a"]["description"].startswith("A A ")


def test_shared_refs_that_explode_when_inlined_are_refused():
    schemas = {
        f"L{i}": {
            "type": "object",
            "properties": {f"p{j}": {"$ref": f"#/components/schemas/L{i + 1}"} for j in range(8)},
        }
        for i in range(12)
    }
    schemas["L12"] = {"type": "string"}
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/L0"}}}}
    doc = tiny({"/x": {"post": {"requestBody": body, "responses": OK}}}, {"schemas": schemas})
    with pytest.raises(SpecError, match="expand"):
        normalise(doc)


def test_cheap_nodes_referenced_many_times_still_count_against_the_budget():
    """A list of `true`s costs nothing per item yet is copied wherever it is referenced: 2,000 × 2,000."""
    schemas = {"X": {"allOf": [True] * 2000}}
    properties = {f"p{i}": {"$ref": "#/components/schemas/X"} for i in range(2000)}
    body = {"content": {"application/json": {"schema": {"type": "object", "properties": properties}}}}
    doc = tiny({"/x": {"post": {"requestBody": body, "responses": OK}}}, {"schemas": schemas}, "3.1.0")
    with pytest.raises(SpecError, match="expand"):
        normalise(doc)


def test_a_pointer_index_that_is_not_plain_ascii_digits_is_a_problem_not_a_crash():
    from app.openapi.validate import validate_document

    for index in ("²", "9" * 5000, "01"):
        doc = tiny({}) | {"tags": [{"name": "a"}], "x-a": {"$ref": f"#/tags/{index}"}}
        problems = validate_document(doc)  # was a ValueError out of int(): a 500 on upload
        assert any("tags" in problem.message for problem in problems), index


def test_path_level_parameters_merge_and_the_operation_wins():
    shared = [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "verbose", "in": "query", "schema": {"type": "boolean"}},
    ]
    own = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]
    doc = tiny({"/things/{id}": {"parameters": shared, "get": {"parameters": own, "responses": OK}}})
    (op,) = normalise(doc).operations
    assert [(p.name, p.schema["type"]) for p in op.parameters] == [("id", "integer"), ("verbose", "boolean")]


def test_parameter_refs_and_request_body_refs_are_resolved():
    components = {
        "parameters": {
            "Limit": {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 50}}
        },
        "requestBodies": {
            "Note": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["text"],
                            "properties": {"text": {"type": "string"}},
                        }
                    }
                },
            }
        },
        "responses": {"Done": {"description": "Done."}},
    }
    operation = {
        "parameters": [{"$ref": "#/components/parameters/Limit"}],
        "requestBody": {"$ref": "#/components/requestBodies/Note"},
        "responses": {"201": {"$ref": "#/components/responses/Done"}},
    }
    (op,) = normalise(tiny({"/notes": {"post": operation}}, components)).operations
    assert op.parameters[0].name == "limit" and op.parameters[0].schema["maximum"] == 50
    assert op.request_body.required and op.request_body.schema["required"] == ["text"]
    assert op.responses == {"201": "Done."}


def test_openapi_3_1_type_lists_stay_json_schema_and_3_0_nullable_becomes_one():
    nullable = {"type": "string", "nullable": True, "enum": ["a", "b"]}
    doc30 = tiny(
        {"/x": {"get": {"parameters": [{"name": "q", "in": "query", "schema": nullable}], "responses": OK}}}
    )
    assert normalise(doc30).operations[0].parameters[0].schema == {
        "type": ["string", "null"],
        "enum": ["a", "b", None],
    }
    listed = {"type": ["string", "null"], "maxLength": 3}
    doc31 = tiny(
        {"/x": {"get": {"parameters": [{"name": "q", "in": "query", "schema": listed}], "responses": OK}}},
        version="3.1.0",
    )
    assert normalise(doc31).operations[0].parameters[0].schema == listed


def test_missing_operation_ids_are_derived_and_all_ids_are_usable_tool_names():
    doc = tiny(
        {
            "/pets/{petId}": {
                "get": {"responses": OK},
                "delete": {"operationId": "remove pet!", "responses": OK},
            },
            "/": {"get": {"responses": OK}},
            "/a": {"get": {"operationId": "x" * 80, "responses": OK}},
            "/b": {"get": {"operationId": "x" * 80, "responses": OK}},
            "/c": {"get": {"operationId": "get_pets_petId", "responses": OK}},
        }
    )
    ids = [op.operation_id for op in normalise(doc).operations]
    assert ids[:3] == ["get_pets_petId", "remove_pet", "get_root"]
    assert ids[3] == "x" * 64 and ids[4] == "x" * 62 + "_2"
    assert ids[5] == "get_pets_petId_2"
    assert all(len(i) <= 64 for i in ids) and len(set(ids)) == len(ids)


def test_swagger_bodies_take_their_media_type_from_consumes_and_tsv_arrays_join_with_tabs():
    from app.openapi import tool_call_to_request

    doc = {
        "swagger": "2.0",
        "info": {"title": "XML", "version": "1"},
        "host": "api.example.com",
        "consumes": ["application/xml"],
        "paths": {
            "/notes": {
                "post": {
                    "operationId": "addNote",
                    "parameters": [
                        {"name": "body", "in": "body", "schema": {"type": "object"}},
                        {"name": "ids", "in": "query", "type": "array", "items": {"type": "string"},
                         "collectionFormat": "tsv"},
                    ],
                    "responses": {"200": {"description": "ok"}},
                },
                "put": {
                    "operationId": "putNote",
                    "consumes": ["text/xml", "application/json"],
                    "parameters": [{"name": "body", "in": "body", "schema": {"type": "object"}}],
                    "responses": {"200": {"description": "ok"}},
                },
            }
        },
    }  # fmt: skip
    spec = normalise(doc)
    post, put = (
        next(op for op in spec.operations if op.operation_id == name) for name in ("addNote", "putNote")
    )
    assert post.request_body.media_type == "application/xml"
    assert put.request_body.media_type == "application/json" and put.request_body.media_types[1] == "text/xml"
    request = tool_call_to_request(spec, "addNote", {"body": {}, "ids": ["x", "y"]})
    assert "ids=x%09y" in request.url
