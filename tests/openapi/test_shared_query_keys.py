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
