"""A tool call the offered tool's schema accepts becomes a request that the checks accept too, and reads
back as the same values: schemas without a top-level `type` (3.1's nullable `anyOf`, `oneOf`, a `$ref`
with a description as `allOf`), label values holding dots, empty exploded matrix values, JSON `content`
query parameters holding arrays, arrays inside query objects, and items holding their delimiter."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from app.openapi import (
    CHECK_NAMES,
    check_request,
    check_tool_call,
    load_document,
    normalise,
    operation_tool,
    tool_call_to_request,
)


def spec_with(parameters: list[dict], path: str = "/h", version: str = "3.1.0"):
    document = {
        "openapi": version,
        "info": {"title": "Round trips", "version": "1"},
        "servers": [{"url": "https://rt.example"}],
        "components": {"schemas": {"Id": {"type": "integer", "minimum": 1}}},
        "paths": {path: {"get": {"operationId": "op", "parameters": parameters,
                                 "responses": {"200": {"description": "ok"}}}}},
    }  # fmt: skip
    return normalise(load_document(json.dumps(document).encode(), "rt.json"))


def failing(checks) -> dict[str, str]:
    assert [check.name for check in checks] == list(CHECK_NAMES)
    return {check.name: check.detail for check in checks if not check.ok}


def round_trip(spec, arguments: dict) -> tuple[dict, dict]:
    """(what the call's checks say, what the request's checks say), after the tool's own schema took it."""
    tool = operation_tool(spec.operations[0])
    assert not list(Draft202012Validator(tool["function"]["parameters"]).iter_errors(arguments))
    request = tool_call_to_request(spec, "op", arguments)
    return failing(check_tool_call(spec, "op", arguments)), failing(
        check_request(spec, "GET", request.url, headers=request.headers)
    )


def query(name: str, schema: dict, **more) -> dict:
    return {"name": name, "in": "query", "required": True, "schema": schema, **more}


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, 5),
        ({"oneOf": [{"type": "integer"}, {"type": "string", "enum": ["all"]}]}, 5),
        ({"oneOf": [{"type": "integer"}, {"type": "string", "enum": ["all"]}]}, "all"),
        ({"allOf": [{"$ref": "#/components/schemas/Id"}], "description": "an id"}, 7),
        ({"anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}]}, [1, 2]),
    ],
)
def test_schemas_without_a_top_level_type_read_text_by_their_branches(schema, value):
    assert round_trip(spec_with([query("x", schema)]), {"x": value}) == ({}, {})


def test_a_path_id_behind_an_all_of_ref_is_read_as_its_integer():
    parameter = {"name": "id", "in": "path", "required": True,
                 "schema": {"allOf": [{"$ref": "#/components/schemas/Id"}], "description": "id"}}  # fmt: skip
    assert round_trip(spec_with([parameter], "/items/{id}", "3.0.3"), {"id": 42}) == ({}, {})


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"type": "array", "items": {"type": "string"}, "maxItems": 2}, ["a.b", "c"]),
        ({"type": "object", "properties": {"v": {"type": "string"}}}, {"v": "a.b"}),
    ],
)
def test_label_values_holding_dots_are_not_split(schema, value):
    parameter = {
        "name": "id",
        "in": "path",
        "required": True,
        "style": "label",
        "explode": True,
        "schema": schema,
    }
    spec = spec_with([parameter], "/items/{id}")
    assert round_trip(spec, {"id": value}) == ({}, {})
    assert "%2E" in tool_call_to_request(spec, "op", {"id": value}).url


@pytest.mark.parametrize(("schema", "value"), [({"type": "array", "items": {"type": "string"}}, []),
                                               ({"type": "object"}, {})])  # fmt: skip
def test_an_empty_exploded_matrix_value_is_the_name_alone(schema, value):
    parameter = {
        "name": "id",
        "in": "path",
        "required": True,
        "style": "matrix",
        "explode": True,
        "schema": schema,
    }
    spec = spec_with([parameter], "/items/{id}")
    assert tool_call_to_request(spec, "op", {"id": value}).url.endswith("/items/;id")
    assert round_trip(spec, {"id": value}) == ({}, {})


def test_a_json_content_query_parameter_holding_an_array_is_one_json_text():
    integers = {"type": "array", "items": {"type": "integer"}}
    parameter = {
        "name": "q",
        "in": "query",
        "required": True,
        "content": {"application/json": {"schema": integers}},
    }
    assert round_trip(spec_with([parameter]), {"q": [1, 2]}) == ({}, {})


@pytest.mark.parametrize("style", ["form", "deepObject"])
def test_an_array_inside_a_query_object_reads_back_as_its_items(style):
    schema = {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "integer"}}}}
    spec = spec_with([query("q", schema, style=style, explode=True)])
    assert round_trip(spec, {"q": {"tags": [1, 2]}}) == ({}, {})


def test_an_empty_exploded_query_array_leaves_no_dangling_question_mark():
    spec = spec_with([query("q", {"type": "array", "items": {"type": "string"}}, explode=True)])
    assert tool_call_to_request(spec, "op", {"q": []}).url == "https://rt.example/h"


def test_an_exploded_object_with_only_additional_properties_takes_the_keys_no_parameter_names():
    schema = {"type": "object", "additionalProperties": {"type": "string"}}
    spec = spec_with([query("q", schema, explode=True), query("limit", {"type": "integer"})])
    assert round_trip(spec, {"q": {"foo": "x", "bar": "y"}, "limit": 3}) == ({}, {})
    request = tool_call_to_request(spec, "op", {"q": {"foo": "x"}, "limit": 3})
    assert request.url == "https://rt.example/h?foo=x&limit=3"
    strict = spec_with(
        [query("q", {"type": "object", "properties": {"a": {"type": "string"}}}, explode=True)]
    )
    unknown = failing(check_request(strict, "GET", "https://rt.example/h?a=1&zzz=2"))
    assert unknown == {"no_unknown_parameters": "Not in the spec: query parameter 'zzz'."}


@pytest.mark.parametrize("value", ["", [""], []])
def test_an_empty_simple_path_value_is_refused_as_the_url_cannot_carry_it(value):
    schema = {"type": "array", "items": {"type": "string"}} if isinstance(value, list) else {"type": "string"}
    parameter = {"name": "id", "in": "path", "required": True, "schema": schema}
    spec = spec_with([parameter], "/items/{id}")
    problems = failing(check_tool_call(spec, "op", {"id": value}))
    assert problems == {"parameter_values": "path parameter 'id' is empty, and a path segment cannot be."}
    url = tool_call_to_request(spec, "op", {"id": value}).url
    assert "operation_exists" in failing(check_request(spec, "GET", url))  # the request agrees: no match


TWO_TEXTS = {"type": "array", "items": {"type": "string"}, "maxItems": 2}


@pytest.mark.parametrize(
    ("parameter", "value", "written"),
    [
        (query("names", TWO_TEXTS, explode=False), ["Smith, J", "Doe"], "names=Smith%2C%20J,Doe"),
        (query("names", TWO_TEXTS, style="pipeDelimited"), ["a|b", "c"], "names=a%7Cb|c"),
        (
            query("who", {"type": "object", "properties": {"name": {"type": "string"}}}, explode=False),
            {"name": "Smith, J"},
            "who=name,Smith%2C%20J",
        ),
        (
            query("q", {"type": "object", "properties": {"tags": TWO_TEXTS}}, style="deepObject"),
            {"tags": ["a,b", "c"]},
            "q%5Btags%5D=a%2Cb,c",
        ),
    ],
)
def test_an_item_holding_its_delimiter_stays_one_item(parameter, value, written):
    """The delimiter travels bare and each item escaped, so the raw query tells them apart."""
    spec = spec_with([parameter])
    arguments = {parameter["name"]: value}
    assert tool_call_to_request(spec, "op", arguments).url == f"https://rt.example/h?{written}"
    assert round_trip(spec, arguments) == ({}, {})


def test_a_lone_item_holding_a_comma_is_one_item_in_the_call():
    """`names=Smith%2C%20J` could also be two items from a client that escapes its commas: a URL
    cannot tell, but the call can."""
    spec = spec_with([query("names", {**TWO_TEXTS, "maxItems": 1}, explode=False)])
    assert tool_call_to_request(spec, "op", {"names": ["Smith, J"]}).url.endswith("?names=Smith%2C%20J")
    assert failing(check_tool_call(spec, "op", {"names": ["Smith, J"]})) == {}


def test_a_client_that_escapes_the_delimiter_too_is_still_read_item_by_item():
    spec = spec_with([query("ids", {"type": "array", "items": {"type": "integer"}}, explode=False)])
    assert failing(check_request(spec, "GET", "https://rt.example/h?ids=1%2C2")) == {}
    wrong = failing(check_request(spec, "GET", "https://rt.example/h?ids=1%2Cx"))
    assert list(wrong) == ["parameter_values"] and "'x' is not of type 'integer'" in wrong["parameter_values"]


@pytest.mark.parametrize(
    ("collection_format", "location", "value", "written"),
    [
        ("pipes", "path", ["a|b", "c d"], "/h/a%7Cb|c%20d"),
        ("ssv", "path", ["a", "b"], "/h/a%20b"),
        ("pipes", "header", ["a,b", "c"], "a,b|c"),
        ("ssv", "header", ["a,b", "c"], "a,b c"),
        ("tsv", "header", ["a", "b"], "a\tb"),
    ],
)
def test_swagger_path_and_header_arrays_keep_their_collection_format(
    collection_format, location, value, written
):
    parameter = {"name": "ids", "in": location, "required": True, "type": "array", "maxItems": 2,
                 "items": {"type": "string"}, "collectionFormat": collection_format}  # fmt: skip
    document = {
        "swagger": "2.0",
        "info": {"title": "Round trips", "version": "1"},
        "host": "rt.example",
        "schemes": ["https"],
        "paths": {"/h/{ids}" if location == "path" else "/h": {"get": {
            "operationId": "op", "parameters": [parameter], "responses": {"200": {"description": "ok"}}}}},
    }  # fmt: skip
    spec = normalise(load_document(json.dumps(document).encode(), "rt.json"))
    request = tool_call_to_request(spec, "op", {"ids": value})
    assert (request.url if location == "path" else request.headers["ids"]).endswith(written)
    assert round_trip(spec, {"ids": value}) == ({}, {})
