"""Path and header parameters written as their OpenAPI `style` says (simple, label, matrix; exploded or
not; arrays and objects), read back the same way by the checks, and refused when a request drops the
style's prefix."""

from __future__ import annotations

import json

import pytest

from app.openapi import (
    CHECK_NAMES,
    NormalisedSpec,
    check_request,
    check_tool_call,
    load_document,
    normalise,
    tool_call_to_request,
)

IDS = {"type": "array", "items": {"type": "integer", "minimum": 1}}
PERSON = {
    "type": "object",
    "properties": {
        "role": {"type": "string", "enum": ["admin", "user"]},
        "age": {"type": "integer", "minimum": 0},
    },
}


def spec_with(style: str, explode: bool, schema: dict, location: str = "path") -> NormalisedSpec:
    parameter = {"name": "id", "in": location, "required": True, "schema": schema}
    if location == "path":
        parameter |= {"style": style, "explode": explode}
    else:
        parameter |= {"explode": explode}
    path = "/things/{id}" if location == "path" else "/things"
    document = {
        "openapi": "3.0.3",
        "info": {"title": "Things", "version": "1"},
        "servers": [{"url": "https://things.example/v1"}],
        "paths": {path: {"get": {"operationId": "getThing", "parameters": [parameter],
                                 "responses": {"200": {"description": "ok"}}}}},
    }  # fmt: skip
    return normalise(load_document(json.dumps(document).encode(), "things.json"))


def failing(checks) -> dict[str, str]:
    assert [check.name for check in checks] == list(CHECK_NAMES)
    return {check.name: check.detail for check in checks if not check.ok}


# (style, explode, schema, value, the path segment in the URL)
CASES = [
    ("simple", False, {"type": "integer"}, 5, "5"),
    ("simple", False, IDS, [3, 4, 5], "3,4,5"),
    ("simple", True, IDS, [3, 4, 5], "3,4,5"),
    ("simple", False, PERSON, {"role": "admin", "age": 7}, "role,admin,age,7"),
    ("simple", True, PERSON, {"role": "admin", "age": 7}, "role=admin,age=7"),
    ("label", False, {"type": "integer"}, 5, ".5"),
    ("label", False, IDS, [3, 4, 5], ".3,4,5"),
    ("label", True, IDS, [3, 4, 5], ".3.4.5"),
    ("label", False, PERSON, {"role": "admin", "age": 7}, ".role,admin,age,7"),
    ("label", True, PERSON, {"role": "admin", "age": 7}, ".role=admin.age=7"),
    ("matrix", False, {"type": "integer"}, 5, ";id=5"),
    ("matrix", True, {"type": "integer"}, 5, ";id=5"),
    ("matrix", False, IDS, [3, 4, 5], ";id=3,4,5"),
    ("matrix", True, IDS, [3, 4, 5], ";id=3;id=4;id=5"),
    ("matrix", False, PERSON, {"role": "admin", "age": 7}, ";id=role,admin,age,7"),
    ("matrix", True, PERSON, {"role": "admin", "age": 7}, ";role=admin;age=7"),
]


@pytest.mark.parametrize(("style", "explode", "schema", "value", "segment"), CASES)
def test_each_path_style_is_written_and_read_back_as_openapi_says(style, explode, schema, value, segment):
    spec = spec_with(style, explode, schema)
    request = tool_call_to_request(spec, "getThing", {"id": value})
    assert request.url == f"https://things.example/v1/things/{segment}"
    assert failing(check_tool_call(spec, "getThing", {"id": value})) == {}
    assert failing(check_request(spec, "GET", request.url)) == {}


@pytest.mark.parametrize(("style", "explode", "schema", "wrong"), [
    ("label", False, IDS, [3, 0]),
    ("matrix", True, IDS, [3, 0]),
    ("simple", True, PERSON, {"role": "root", "age": 7}),
    ("matrix", True, PERSON, {"role": "admin", "age": -1}),
])  # fmt: skip
def test_a_wrong_value_in_any_style_is_named(style, explode, schema, wrong):
    spec = spec_with(style, explode, schema)
    problems = failing(check_tool_call(spec, "getThing", {"id": wrong}))
    assert list(problems) == ["parameter_values"]
    assert problems["parameter_values"].startswith("path parameter 'id'")


@pytest.mark.parametrize(("style", "explode", "segment", "message"), [
    ("label", False, "3,4", "should start with '.' (label style)"),
    ("matrix", False, "3,4", "should start with ';' (matrix style)"),
    ("matrix", True, ";ids=3;ids=4", "should be written ';id=…' (matrix style)"),
])  # fmt: skip
def test_a_request_without_the_styles_prefix_is_refused_with_the_reason(style, explode, segment, message):
    spec = spec_with(style, explode, IDS)
    problems = failing(check_request(spec, "GET", f"https://things.example/v1/things/{segment}"))
    assert list(problems) == ["parameter_values"]
    assert message in problems["parameter_values"]


def test_values_are_escaped_but_the_styles_separators_are_not():
    spec = spec_with("matrix", True, {"type": "array", "items": {"type": "string"}})
    request = tool_call_to_request(spec, "getThing", {"id": ["a;b", "c/d", "e,f"]})
    assert request.url == "https://things.example/v1/things/;id=a%3Bb;id=c%2Fd;id=e%2Cf"
    assert request.path_params == {"id": ";id=a;b;id=c/d;id=e,f"}


def test_an_object_sent_as_json_text_in_the_path_is_still_read():
    # Calls written before styles were followed carried the object as JSON text.
    spec = spec_with("simple", False, PERSON)
    url = "https://things.example/v1/things/" + '{"role":"admin","age":7}'
    assert failing(check_request(spec, "GET", url)) == {}


@pytest.mark.parametrize(("explode", "value", "header"), [
    (False, [3, 4], "3,4"),
    (False, {"role": "admin", "age": 7}, "role,admin,age,7"),
    (True, {"role": "admin", "age": 7}, "role=admin,age=7"),
])  # fmt: skip
def test_header_parameters_are_written_in_simple_style(explode, value, header):
    spec = spec_with("simple", explode, IDS if isinstance(value, list) else PERSON, location="header")
    request = tool_call_to_request(spec, "getThing", {"id": value})
    assert request.headers == {"id": header}
    assert failing(check_request(spec, "GET", request.url, headers=request.headers)) == {}
    assert failing(check_tool_call(spec, "getThing", {"id": value})) == {}
