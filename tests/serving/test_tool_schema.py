"""Pasted tool definitions and the calls a model makes against them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.serving.tool_schema import (
    ISSUE_KINDS,
    MAX_TOOLS,
    CallIssue,
    call_is_valid,
    check_tool_call,
    validate_tool_definitions,
)

WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 1},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
        "date": {"type": "string", "format": "date"},
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "place": {
            "type": "object",
            "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
            "required": ["lat", "lon"],
        },
    },
    "required": ["city"],
}
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather in a city", "parameters": WEATHER_PARAMETERS},
}
TOOLS = [WEATHER]


def test_a_good_call_has_no_issues():
    arguments = {
        "city": "Oslo",
        "unit": "celsius",
        "days": 3,
        "date": "2025-01-31",
        "place": {"lat": 1, "lon": 2},
    }
    assert check_tool_call(TOOLS, "get_weather", arguments) == []
    assert call_is_valid(TOOLS, "get_weather", {"city": "Oslo"})


@pytest.mark.parametrize(
    ("name", "arguments", "kind", "path"),
    [
        ("get_wether", {"city": "Oslo"}, "unknown_function", ""),
        ("get_weather", {}, "missing_required", "city"),
        ("get_weather", {"city": 5}, "wrong_type", "city"),
        ("get_weather", {"city": "Oslo", "unit": "kelvin"}, "bad_enum", "unit"),
        ("get_weather", {"city": "Oslo", "date": "tomorrow"}, "bad_format", "date"),
        ("get_weather", {"city": "Oslo", "country": "NO"}, "unexpected_argument", "country"),
        ("get_weather", {"city": "Oslo", "days": 30}, "out_of_range", "days"),
        ("get_weather", {"city": ""}, "out_of_range", "city"),
        ("get_weather", {"city": "Oslo", "tags": ["a", "a"]}, "invalid", "tags"),
        ("get_weather", {"city": "Oslo", "place": {"lat": 1}}, "missing_required", "place.lon"),
        ("get_weather", {"city": "Oslo", "tags": ["a", 2]}, "wrong_type", "tags[1]"),
        (
            "get_weather",
            {"city": "Oslo", "place": {"lat": 1, "lon": 2, "alt": 3}},
            "unexpected_argument",
            "place.alt",
        ),
    ],
)
def test_each_kind_of_mistake_is_named_with_its_argument(name, arguments, kind, path):
    issues = check_tool_call(TOOLS, name, arguments)
    assert [(issue.kind, issue.path) for issue in issues] == [(kind, path)]
    assert issues[0].message
    assert not call_is_valid(TOOLS, name, arguments)


def test_several_mistakes_are_all_reported():
    issues = check_tool_call(TOOLS, "get_weather", {"unit": "kelvin", "days": "3", "extra": 1})
    assert {(i.kind, i.path) for i in issues} == {
        ("missing_required", "city"),
        ("bad_enum", "unit"),
        ("wrong_type", "days"),
        ("unexpected_argument", "extra"),
    }


def test_extra_arguments_are_fine_when_the_schema_allows_them():
    tools = [
        {"name": "log", "parameters": {"type": "object", "properties": {}, "additionalProperties": True}}
    ]
    assert check_tool_call(tools, "log", {"anything": 1}) == []


def test_arguments_that_are_not_an_object_are_a_wrong_type():
    assert check_tool_call(TOOLS, "get_weather", ["Oslo"]) == [
        CallIssue("wrong_type", "", "Arguments must be an object, got a list.")
    ]


def test_a_tool_whose_schema_cannot_be_resolved_gives_an_issue_not_an_error():
    tools = [
        {"name": "f", "parameters": {"type": "object", "properties": {"x": {"$ref": "#/$defs/missing"}}}}
    ]
    assert [issue.kind for issue in check_tool_call(tools, "f", {"x": 1})] == ["invalid"]


def test_definitions_in_either_shape_come_back_in_the_openai_shape():
    bare = WEATHER["function"]
    for pasted in ([WEATHER], [bare], WEATHER, bare):
        tools, errors = validate_tool_definitions(pasted)
        assert errors == []
        assert tools == [WEATHER]


def test_half_a_surrogate_pair_in_a_definition_is_named():
    tools, errors = validate_tool_definitions({"name": "get_\ud800"})
    assert tools == [] and errors == [
        "Tool definitions hold half of a UTF-16 surrogate pair (a \\ud800-style escape), not text."
    ]


def test_parameters_may_be_left_out_for_a_function_without_arguments():
    tools, errors = validate_tool_definitions({"name": "now"})
    assert errors == []
    assert tools[0]["function"]["parameters"] == {"type": "object", "properties": {}}


@pytest.mark.parametrize(
    ("pasted", "expected"),
    [
        (
            [
                WEATHER,
                {
                    "name": "get_time",
                    "parameters": {"type": "object", "properties": {"tz": {"type": "strin"}}},
                },
            ],
            "tool 2 (get_time): parameters.properties.tz.type: 'strin' is not a JSON Schema type",
        ),
        ([{"description": "no name"}], "tool 1: name is required"),
        ([{"name": "get weather"}], "tool 1: name 'get weather' must be 1-64 letters"),
        ([{"name": "x" * 65}], "must be 1-64 letters"),
        ([WEATHER, WEATHER], "tool 2 (get_weather): duplicate name (also tool 1)"),
        (
            [
                {
                    "name": "f",
                    "parameters": {"type": "object", "properties": {"a": {}}, "required": ["a", "b"]},
                }
            ],
            "tool 1 (f): parameters.required: 'b' is not in properties",
        ),
        ([{"name": "f", "parameters": {"type": "array"}}], 'tool 1 (f): parameters.type must be "object"'),
        ([{"name": "f", "parameters": "city"}], "tool 1 (f): parameters must be a JSON Schema object"),
        (
            [
                {
                    "name": "f",
                    "parameters": {"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}},
                }
            ],
            "tool 1 (f): parameters.properties.a.pattern: '(' is not a 'regex'",
        ),
        ([{"type": "retrieval"}], 'tool 1: type must be "function"'),
        ([{"type": "function", "function": "get_weather"}], "tool 1: function must be an object"),
        ([42], "tool 1: expected an object, got a number"),
        ("get_weather", "Expected a list of tool definitions"),
        ([], "empty"),
        ([{"name": f"f{i}"} for i in range(MAX_TOOLS + 1)], f"At most {MAX_TOOLS} tools"),
        ([{"name": "f", "description": "x" * 300_000}], "the limit is 256 KB"),
    ],
)
def test_bad_definitions_say_which_tool_and_where(pasted, expected):
    tools, errors = validate_tool_definitions(pasted)
    assert any(expected in error for error in errors), errors


def test_good_tools_are_kept_beside_bad_ones_but_errors_are_reported():
    tools, errors = validate_tool_definitions([WEATHER, {"name": "bad name"}])
    assert [t["function"]["name"] for t in tools] == ["get_weather"]
    assert len(errors) == 1


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=40,
)
SCHEMA_KEYS = st.sampled_from(
    [
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "pattern",
        "$ref",
        "anyOf",
        "format",
    ]
)
SCHEMAISH = st.recursive(
    JSON_VALUES,
    lambda children: st.dictionaries(SCHEMA_KEYS | st.text(max_size=5), children, max_size=5),
    max_leaves=30,
)
TOOLISH = st.fixed_dictionaries(
    {"name": st.sampled_from(["f", "g", "bad name", ""]) | JSON_VALUES},
    optional={"type": st.just("function") | JSON_VALUES, "description": JSON_VALUES, "parameters": SCHEMAISH},
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES | st.lists(TOOLISH, max_size=4) | TOOLISH)
def test_validating_any_json_never_raises(data):
    tools, errors = validate_tool_definitions(data)
    assert isinstance(tools, list) and all(isinstance(e, str) for e in errors)
    assert tools or errors


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=12), JSON_VALUES), JSON_VALUES)
def test_checking_any_call_never_raises(name, arguments):
    for issue in check_tool_call(TOOLS, name, arguments):
        assert issue.kind in ISSUE_KINDS


@settings(max_examples=200, deadline=None)
@given(SCHEMAISH, JSON_VALUES)
def test_checking_against_any_pasted_schema_never_raises(parameters, arguments):
    for issue in check_tool_call([{"name": "f", "parameters": parameters}], "f", arguments):
        assert issue.kind in ISSUE_KINDS


def test_one_of_beside_properties_counts_each_branchs_properties_as_declared():
    parameters = {
        "type": "object",
        "properties": {"amount": {"type": "number"}},
        "required": ["amount"],
        "oneOf": [
            {"properties": {"iban": {"type": "string"}}, "required": ["iban"]},
            {"properties": {"card": {"type": "string"}}, "required": ["card"]},
        ],
    }
    tools = [{"type": "function", "function": {"name": "pay", "parameters": parameters}}]
    assert check_tool_call(tools, "pay", {"amount": 5, "iban": "DE00"}) == []
    assert check_tool_call(tools, "pay", {"amount": 5, "card": "4111"}) == []
    extra = check_tool_call(tools, "pay", {"amount": 5, "iban": "DE00", "tip": 1})
    assert [(i.kind, i.path) for i in extra] == [("unexpected_argument", "tip")]
    assert check_tool_call(tools, "pay", {"amount": 5})  # neither branch
    from app.serving.grammar import tool_grammar_text

    assert "iban" in tool_grammar_text(tools)  # the grammar can still spell a valid call
