"""Schema checks whose regular expressions cannot hold a thread: a catastrophic `pattern` (in a spec, a
pasted tool or an API request's tools) gives a failed check naming the pattern instead of minutes of
backtracking, and a pattern with huge counts neither exhausts memory nor loses its meaning."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from app.openapi import check_request, load_document, normalise
from app.openapi.values import schema_errors
from app.schema_check import PatternTimeout, SchemaValidator, pattern_search
from app.serving.tool_schema import check_tool_call

# Python's `re` took 15 s on 28 characters of this here, and doubles with each one more.
CATASTROPHIC = r"^(a|a)*$"
HOSTILE_VALUE = "a" * 40 + "!"
pytestmark = pytest.mark.timeout(60)  # without the guard each of these would run for hours


def test_a_catastrophic_pattern_gives_up_and_says_so():
    with pytest.raises(PatternTimeout):
        pattern_search(CATASTROPHIC, HOSTILE_VALUE)
    (problem,) = schema_errors(HOSTILE_VALUE, {"type": "string", "pattern": CATASTROPHIC}, "city")
    assert problem.startswith("city: 'aaaa")
    assert "backtracks too much" in problem and CATASTROPHIC in problem


def test_a_pasted_tools_catastrophic_pattern_fails_the_call_not_the_server():
    tools = [{"type": "function", "function": {"name": "find", "parameters": {
        "type": "object",
        "properties": {"q": {"type": "string", "pattern": CATASTROPHIC}},
        "patternProperties": {CATASTROPHIC: {"type": "integer"}},
    }}}]  # fmt: skip
    issues = check_tool_call(tools, "find", {"q": HOSTILE_VALUE})
    assert [issue.kind for issue in issues] == ["out_of_range"]
    assert "backtracks too much" in issues[0].message
    issues = check_tool_call(tools, "find", {HOSTILE_VALUE: 1})
    assert issues and all("backtracks too much" in issue.message for issue in issues)


def test_a_spec_with_a_catastrophic_pattern_still_checks_a_request():
    document = {
        "openapi": "3.0.3",
        "info": {"title": "Search", "version": "1"},
        "paths": {"/search": {"get": {"operationId": "search", "parameters": [
            {"name": "q", "in": "query", "required": True,
             "schema": {"type": "string", "pattern": r"^(\w+\s?)*$"}}],
            "responses": {"200": {"description": "ok"}}}}},
    }  # fmt: skip
    spec = normalise(load_document(json.dumps(document).encode(), "search.json"))
    checks = {check.name: check for check in check_request(spec, "GET", "/search?q=" + "a" * 29 + "!")}
    assert not checks["parameter_values"].ok
    checks = {check.name: check for check in check_request(spec, "GET", "/search?q=red+shoes")}
    assert checks["parameter_values"].ok


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        (r"^a{200000000}$", "aaa", False),  # `regex` would take gigabytes to compile this
        (r"^.{0,100000}$", "any short text", True),
        (r"^[a-z]{2,100000}$", "ab", True),
    ],
)
def test_huge_counts_run_through_re_when_nothing_in_them_can_backtrack(pattern, value, matches):
    assert pattern_search(pattern, value) is matches


def test_huge_counts_over_an_alternation_are_refused_rather_than_run():
    with pytest.raises(PatternTimeout):
        pattern_search(r"^(a|ab){100000}$", "ab")


SCHEMAS = [
    {"type": "string", "pattern": "^[A-Z]{3}$"},
    {"type": "object", "patternProperties": {"^x-": {"type": "integer"}}, "additionalProperties": False},
    {"type": "object", "properties": {"a": {}}, "additionalProperties": False},
    {"type": "object", "properties": {"a": {}}, "additionalProperties": {"type": "string"}},
    {"type": "object", "patternProperties": {"^n": {"minimum": 3}}, "additionalProperties": {"type": "null"}},
]
VALUES = ["ABC", "abc", 5, {"a": 1}, {"x-1": 2}, {"x-1": "no"}, {"b": 1, "c": "s"}, {"n": 1, "z": None}, {}]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_ordinary_patterns_give_the_same_errors_as_jsonschema_itself(schema):
    for value in VALUES:
        ours = [(error.message, list(error.path)) for error in SchemaValidator(schema).iter_errors(value)]
        theirs = [
            (error.message, list(error.path)) for error in Draft202012Validator(schema).iter_errors(value)
        ]
        assert sorted(ours) == sorted(theirs), value


@pytest.mark.parametrize(
    "pattern, value, matches",
    [
        (r"^\w+$", "cafe_2", True),
        (r"^\w+$", "café", False),  # ECMA-262's \w is ASCII, as a JavaScript server and the grammar read it
        (r"^\w+$", "cafe\u0301", False),  # decomposed: `regex` and `re` read Unicode \w differently
        (r"^\d+$", "123", True),
        (r"^\d+$", "١٢٣", False),  # Arabic-Indic digits
        (r"^x\d$", "x²", False),
        (r"^\p{L}+$", "café", True),  # a Unicode class asked for by name still reads Unicode
        (r"^\pL+$", "café", True),
        (r"(?u)^\w+$", "café", True),  # so does a pattern with the Unicode flag (ASCII would refuse it)
    ],
)
def test_pattern_classes_are_ascii_as_in_json_schema(pattern, value, matches):
    assert pattern_search(pattern, value) is matches
    assert SchemaValidator({"type": "string", "pattern": pattern}).is_valid(value) is matches
