"""A query key two parameters write: an exploded form object's property named like another parameter.
A call writes both values (not one over the other), and each parameter is checked on its own value: the
call's, or, from a URL alone, one value each in the parameters' order."""

from __future__ import annotations

import pytest

from app.openapi import check_request, check_tool_call, tool_call_to_request
from tests.openapi.test_round_trips import failing, spec_with

STATUS = {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["open", "closed"]}}
FILTER = {
    "name": "filter",
    "in": "query",
    "style": "form",
    "explode": True,
    "schema": {"type": "object", "properties": {"status": {"type": "integer"}, "tag": {"type": "string"}}},
}
SPEC = spec_with([STATUS, FILTER])


@pytest.mark.parametrize(
    "arguments, url",
    [
        (
            {"status": "open", "filter": {"status": 3, "tag": "x"}},
            "https://rt.example/h?status=open&status=3&tag=x",
        ),
        ({"filter": {"status": 3}}, "https://rt.example/h?status=3"),
        ({"status": "closed"}, "https://rt.example/h?status=closed"),
    ],
)
def test_a_call_writes_both_values_and_each_parameter_checks_its_own(arguments, url):
    assert tool_call_to_request(SPEC, "op", arguments).url == url
    assert failing(check_tool_call(SPEC, "op", arguments)) == {}


def test_a_wrong_value_is_still_found_and_named_for_its_parameter():
    problems = failing(check_tool_call(SPEC, "op", {"status": "bogus", "filter": {"status": 3}}))
    assert (
        list(problems) == ["parameter_values"]
        and "'status': 'bogus' is not one of" in problems["parameter_values"]
    )
    problems = failing(check_tool_call(SPEC, "op", {"status": "open", "filter": {"status": "three"}}))
    assert list(problems) == ["parameter_values"] and "filter" in problems["parameter_values"]


def test_a_url_gives_one_value_each_in_the_parameters_order():
    assert failing(check_request(SPEC, "GET", "https://rt.example/h?status=open&status=3&tag=x")) == {}
    swapped = failing(check_request(SPEC, "GET", "https://rt.example/h?status=3&status=open"))
    assert list(swapped) == ["parameter_values"]  # the first is the plain parameter's: 3 is no status


def test_an_exploded_array_sharing_a_key_keeps_all_its_values():
    tags = {
        "name": "tags",
        "in": "query",
        "schema": {"type": "array", "items": {"type": "string"}, "minItems": 2},
    }
    filter_ = {**FILTER, "schema": {"type": "object", "properties": {"tags": {"type": "string"}}}}
    spec = spec_with([tags, filter_])
    call = {"tags": ["a", "b"]}
    assert failing(check_tool_call(spec, "op", call)) == {}
    # From the URL: two values, two claimants, but the array may write both: not one each.
    assert "'tags': ['a'] is too short" not in str(
        failing(check_request(spec, "GET", "https://rt.example/h?tags=a&tags=b"))
    )


def test_a_call_splits_on_who_wrote_a_key_even_past_the_declared_properties():
    limit = {"name": "limit", "in": "query", "schema": {"type": "integer"}}
    extra = {
        "name": "extra",
        "in": "query",
        "style": "form",
        "explode": True,
        "schema": {"type": "object", "additionalProperties": {"type": "string"}},
    }
    spec = spec_with([limit, extra])
    problems = failing(check_tool_call(spec, "op", {"limit": 10, "extra": {"limit": "x"}}))
    assert "given 2 times" not in str(problems)
