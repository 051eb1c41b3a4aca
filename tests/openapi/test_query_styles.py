"""Object and array query parameters written as their OpenAPI `style` says (deepObject, exploded and
unexploded form, pipe- and space-delimited, JSON `content`), and read back the same way by the checks."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from app.openapi import (
    CHECK_NAMES,
    NormalisedSpec,
    check_request,
    check_tool_call,
    load_document,
    normalise,
    tool_call_to_request,
)

SIZE = {"type": "integer", "minimum": 1}
DOCUMENT = {
    "openapi": "3.0.3",
    "info": {"title": "Shop", "version": "1"},
    "servers": [{"url": "https://shop.example/api"}],
    "paths": {
        "/items": {
            "get": {
                "operationId": "listItems",
                "parameters": [
                    {"name": "filter", "in": "query", "style": "deepObject", "explode": True,
                     "schema": {"type": "object", "properties": {
                         "color": {"type": "string", "enum": ["red", "blue"]}, "size": SIZE}}},
                    {"name": "page", "in": "query",
                     "schema": {"type": "object", "properties": {"number": SIZE, "limit": SIZE}}},
                    {"name": "range", "in": "query", "style": "form", "explode": False,
                     "schema": {"type": "object", "properties": {"min": SIZE, "max": SIZE}}},
                    {"name": "tags", "in": "query", "style": "pipeDelimited", "explode": False,
                     "schema": {"type": "array", "items": {"type": "string"}}},
                    {"name": "where", "in": "query",
                     "content": {"application/json": {"schema": {"type": "object"}}}},
                ],
                "responses": {"200": {"description": "ok"}},
            }
        }
    },
}  # fmt: skip
ARGUMENTS = {
    "filter": {"color": "red", "size": 3},
    "page": {"number": 2, "limit": 10},
    "range": {"min": 1, "max": 5},
    "tags": ["new", "sale"],
    "where": {"brand": "Acme", "stock": [1, 2]},
}


def shop() -> NormalisedSpec:
    return normalise(load_document(json.dumps(DOCUMENT).encode(), "shop.json"))


def failing(checks) -> dict[str, str]:
    assert [check.name for check in checks] == list(CHECK_NAMES)
    return {check.name: check.detail for check in checks if not check.ok}


def test_each_style_is_written_as_openapi_says():
    request = tool_call_to_request(shop(), "listItems", ARGUMENTS)
    assert parse_qs(urlsplit(request.url).query) == {
        "filter[color]": ["red"],
        "filter[size]": ["3"],
        "number": ["2"],
        "limit": ["10"],
        "range": ["min,1,max,5"],
        "tags": ["new|sale"],
        "where": ['{"brand":"Acme","stock":[1,2]}'],
    }


def test_a_right_call_and_the_request_it_stands_for_pass_every_check():
    spec = shop()
    assert failing(check_tool_call(spec, "listItems", ARGUMENTS)) == {}
    url = tool_call_to_request(spec, "listItems", ARGUMENTS).url
    assert failing(check_request(spec, "GET", url)) == {}


def test_wrong_values_inside_objects_and_arrays_are_named():
    spec = shop()
    wrong = {**ARGUMENTS, "filter": {"color": "green", "size": 0}, "range": {"min": "low", "max": 5}}
    problems = failing(check_tool_call(spec, "listItems", wrong))
    assert set(problems) == {"parameter_values"}
    assert "filter" in problems["parameter_values"] and "range" in problems["parameter_values"]
    assert "'green'" in problems["parameter_values"]


def test_keys_no_parameter_accounts_for_are_unknown():
    spec = shop()
    url = "https://shop.example/api/items?filter[color]=red&number=1&colour=red&tags=a|b"
    assert set(failing(check_request(spec, "GET", url))) == {"no_unknown_parameters"}
    assert "colour" in failing(check_request(spec, "GET", url))["no_unknown_parameters"]


def test_specs_stored_before_styles_were_kept_still_load():
    stored = shop().to_dict()
    for op in stored["operations"]:
        for parameter in op["parameters"]:
            del parameter["style"]
    reloaded = NormalisedSpec.from_dict(stored)
    assert {p.style for p in reloaded.operations[0].parameters} == {"form"}
