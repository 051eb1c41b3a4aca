"""Dataset import: glaive ShareGPT, OpenAI chat JSONL, Toolsmith rows, DPO rows; problems with their lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.datasets.importers import MAX_PROBLEMS, ImportResult, import_dataset
from app.datasets.rows import (
    called_functions,
    row_has_call,
    row_kind,
    row_tools,
    validate_dpo_row,
    validate_row,
    validate_sft_row,
)

GLAIVE = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "fixtures"
    / "sft"
    / "glaive_toolcall_en_demo.json"
)
needs_glaive = pytest.mark.skipif(not GLAIVE.is_file(), reason="../shared/fixtures is not beside the repo")

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
    },
}


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


def sft_row(**extra: Any) -> dict[str, Any]:
    """A Toolsmith SFT row: a weather call, its result and the answer."""
    row = {
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": "", "tool_calls": [call("get_weather", city="Oslo")]},
            {"role": "tool", "name": "get_weather", "content": '{"temp": 3}'},
            {"role": "assistant", "content": "It is 3 degrees in Oslo."},
        ],
        "tools": [WEATHER],
    }
    row.update(extra)
    return row


def dpo_row(**extra: Any) -> dict[str, Any]:
    row = {
        "prompt": [{"role": "user", "content": "Weather in Oslo?"}],
        "chosen": [{"role": "assistant", "content": "", "tool_calls": [call("get_weather", city="Oslo")]}],
        "rejected": [{"role": "assistant", "content": "It is sunny."}],
        "tools": [WEATHER],
    }
    row.update(extra)
    return row


def jsonl(*records: Any) -> bytes:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode() + b"\n"


def imported(data: bytes, filename: str = "data.jsonl", **kwargs: Any) -> ImportResult:
    result = import_dataset(data, filename, **kwargs)
    assert result.problems == [], result.problems
    assert result.ok
    return result


def problem_lines(result: ImportResult) -> list[int | None]:
    return [p.line for p in result.problems]


def problem_text(result: ImportResult) -> str:
    return "\n".join(f"{p.line}: {p.message}" for p in result.problems)


# --- ShareGPT (glaive) -------------------------------------------------------------------------------


@needs_glaive
def test_glaive_sample_imports_as_300_conversations_153_with_a_call():
    result = imported(GLAIVE.read_bytes(), GLAIVE.name)
    assert (result.kind, result.format) == ("sft", "sharegpt")
    assert result.row_count == result.records == 300
    assert result.rows_with_call == 153
    assert "search_recipes" in result.tool_names and "search_recipes" in result.called_names
    for row in result.rows:
        assert validate_sft_row(row) == []
        for tool in row["tools"]:
            assert tool["type"] == "function" and set(tool["function"]) >= {"name", "parameters"}
        for message in row["messages"]:
            for tool_call in message.get("tool_calls", []):
                assert isinstance(tool_call["function"]["arguments"], dict)
            if message["role"] == "tool":
                assert message["name"] in called_functions(row)


@needs_glaive
def test_glaive_function_call_becomes_a_structured_call_and_observation_a_named_tool_result():
    first = imported(GLAIVE.read_bytes(), GLAIVE.name).rows[0]
    roles = [m["role"] for m in first["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "tool", "assistant", "user", "assistant"]
    assert first["messages"][3]["tool_calls"] == [
        call("search_recipes", ingredients=["chicken", "bell peppers", "rice"])
    ]
    assert first["messages"][4]["name"] == "search_recipes"
    assert json.loads(first["messages"][4]["content"])["recipes"]
    assert row_tools(first) == ["search_recipes"]


@needs_glaive
def test_glaive_as_jsonl_imports_the_same_rows():
    records = json.loads(GLAIVE.read_text())
    from_array = imported(GLAIVE.read_bytes(), GLAIVE.name).rows
    assert imported(jsonl(*records), "glaive.jsonl").rows == from_array


def test_sharegpt_role_content_turns_and_a_top_level_system_prompt():
    record = {
        "system": "Be brief.",
        "conversations": [
            {"from": "human", "value": "Time in Tokyo?"},
            {"from": "function_call", "value": {"name": "get_time", "arguments": '{"zone": "Asia/Tokyo"}'}},
            {"from": "observation", "value": {"time": "09:00"}},
            {"role": "assistant", "content": "It is 9 am."},
        ],
        "tools": json.dumps([TIME["function"]]),
    }
    (row,) = imported(jsonl(record)).rows
    assert row["messages"][0] == {"role": "system", "content": "Be brief."}
    assert row["messages"][2]["tool_calls"] == [call("get_time", zone="Asia/Tokyo")]
    assert row["messages"][3] == {"role": "tool", "name": "get_time", "content": '{"time": "09:00"}'}
    assert row["tools"] == [TIME]


def test_sharegpt_call_that_is_not_json_is_reported_on_its_line():
    good = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}
    bad = {
        "conversations": [
            {"from": "human", "value": "weather?"},
            {"from": "function_call", "value": '{"name": "get_weather", "arguments": {"city": '},
        ],
        "tools": json.dumps([WEATHER["function"]]),
    }
    result = import_dataset(json.dumps([good, bad]).encode(), "sharegpt.json")
    assert result.rows == [] and problem_lines(result)[1:] == [2]
    assert "conversations[1].value" in result.problems[1].message and "not valid JSON" in problem_text(result)


# --- OpenAI chat format --------------------------------------------------------------------------------


def openai_row(city: str = "Oslo") -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": f"Weather in {city} and the time?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": json.dumps({"city": city})},
                    },
                    {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_2", "content": "10:00"},
            {"role": "tool", "tool_call_id": "call_1", "content": "3 degrees"},
            {"role": "assistant", "content": [{"type": "text", "text": "3 degrees, 10 am."}]},
        ],
        "tools": [WEATHER, TIME],
    }


def to_openai(row: dict[str, Any]) -> dict[str, Any]:
    """A Toolsmith row written back in OpenAI's chat format (ids, arguments as JSON text)."""
    messages, ids = [], {}
    for message in row["messages"]:
        if message.get("tool_calls"):
            ids = {
                c["function"]["name"]: f"call_{len(messages)}_{i}"
                for i, c in enumerate(message["tool_calls"])
            }
            calls = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {
                        "name": c["function"]["name"],
                        "arguments": json.dumps(c["function"]["arguments"]),
                    },
                }
                for call_id, c in zip(ids.values(), message["tool_calls"], strict=True)
            ]
            messages.append({"role": "assistant", "content": message["content"] or None, "tool_calls": calls})
        elif message["role"] == "tool":
            messages.append(
                {"role": "tool", "tool_call_id": ids[message["name"]], "content": message["content"]}
            )
        else:
            messages.append(dict(message))
    return {"messages": messages, "tools": row["tools"]}


def test_openai_chat_jsonl_maps_tool_call_ids_to_names_and_parses_arguments():
    result = imported(jsonl(openai_row("Oslo"), openai_row("Lima")))
    assert (result.kind, result.format, result.row_count, result.rows_with_call) == ("sft", "openai", 2, 2)
    row = result.rows[0]
    assert row["messages"][1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [call("get_weather", city="Oslo"), call("get_time")],
    }
    assert row["messages"][2] == {"role": "tool", "name": "get_time", "content": "10:00"}
    assert row["messages"][3] == {"role": "tool", "name": "get_weather", "content": "3 degrees"}
    assert row["messages"][4] == {"role": "assistant", "content": "3 degrees, 10 am."}
    assert result.tool_names == ["get_time", "get_weather"]


def test_openai_round_trip_through_toolsmith_rows():
    rows = imported(jsonl(openai_row("Oslo"), openai_row("Lima"))).rows
    again = imported(jsonl(*rows))
    assert again.format == "toolsmith" and again.rows == rows
    back = imported(jsonl(*(to_openai(row) for row in rows)))
    assert back.format == "openai" and back.rows == rows


def test_openai_problems_unknown_tool_call_id_and_arguments_that_are_not_an_object():
    unknown_id = openai_row()
    unknown_id["messages"][2]["tool_call_id"] = "call_9"
    list_arguments = openai_row()
    list_arguments["messages"][1]["tool_calls"][0]["function"]["arguments"] = "[1, 2]"
    broken_arguments = openai_row()
    broken_arguments["messages"][1]["tool_calls"][0]["function"]["arguments"] = '{"city": '
    result = import_dataset(jsonl(openai_row(), unknown_id, list_arguments, broken_arguments), "chat.jsonl")
    assert result.rows == []
    assert result.problems[0].line is None and "3 of 4 rows have problems" in result.problems[0].message
    assert "Nothing was imported" in result.problems[0].message
    by_line: dict[int | None, str] = {}
    for problem in result.problems[1:]:
        by_line[problem.line] = by_line.get(problem.line, "") + problem.message
    assert set(by_line) == {2, 3, 4}
    assert "'call_9' matches no earlier tool call" in by_line[2]
    assert "must be a JSON object, got a list" in by_line[3]
    assert "not valid JSON" in by_line[4]


def test_hermes_tool_call_text_in_an_assistant_turn_becomes_a_structured_call():
    record = {
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "content": 'Checking.\n<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}'
                "</tool_call>",
            },
        ],
        "tools": [WEATHER],
    }
    (row,) = imported(jsonl(record)).rows
    assert row["messages"][1]["content"] == "Checking."
    assert row["messages"][1]["tool_calls"] == [call("get_weather", city="Oslo")]


# --- Toolsmith rows ------------------------------------------------------------------------------------


def test_toolsmith_jsonl_imports_unchanged_with_split_and_meta():
    rows = [
        sft_row(split="train", meta={"source": "hand"}),
        sft_row(split="eval"),
        {
            "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
            "tools": [],
        },
    ]
    result = imported(jsonl(*rows))
    assert (result.kind, result.format) == ("sft", "toolsmith")
    assert result.rows == rows
    assert result.rows_with_call == 2 and result.tool_names == ["get_weather"]


def test_split_aliases_become_eval_and_unknown_keys_are_dropped():
    result = imported(jsonl(sft_row(split="validation", id=7), sft_row(split="TEST")))
    assert [row["split"] for row in result.rows] == ["eval", "eval"]
    assert "id" not in result.rows[0]


def test_bare_tool_definitions_are_wrapped_as_openai_tools():
    (row,) = imported(jsonl(sft_row(tools=[WEATHER["function"]]))).rows
    assert row["tools"] == [WEATHER]


def test_a_call_to_a_function_not_in_tools_is_a_problem_on_its_line():
    stray = sft_row()
    stray["messages"][2]["tool_calls"] = [call("book_flight", to="Oslo")]
    stray["messages"][3]["name"] = "book_flight"
    result = import_dataset(jsonl(sft_row(), stray, sft_row()), "rows.jsonl")
    assert result.rows == [] and problem_lines(result) == [None, 2]
    assert "'book_flight', which is not in tools (offered: get_weather)" in result.problems[1].message


def test_pretty_printed_single_object_is_one_row():
    assert imported(json.dumps(sft_row(), indent=2).encode(), "one.json").row_count == 1


# --- DPO -----------------------------------------------------------------------------------------------


def test_dpo_rows_with_strings_become_user_and_assistant_messages():
    record = {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon.", "split": "train"}
    result = imported(jsonl(record, {"prompt": "2+2?", "chosen": "4", "rejected": "5"}))
    assert (result.kind, result.format) == ("dpo", "dpo")
    assert result.rows[0] == {
        "prompt": [{"role": "user", "content": "Capital of France?"}],
        "chosen": [{"role": "assistant", "content": "Paris."}],
        "rejected": [{"role": "assistant", "content": "Lyon."}],
        "tools": [],
        "split": "train",
    }
    assert all(validate_dpo_row(row) == [] for row in result.rows)


def test_dpo_rows_with_message_lists_and_tool_calls():
    result = imported(jsonl(dpo_row(), dpo_row(meta={"pair": 2})))
    assert (result.kind, result.format) == ("dpo", "toolsmith")
    assert result.rows == [dpo_row(), dpo_row(meta={"pair": 2})]
    assert result.rows_with_call == 2  # the chosen answer calls


def test_dpo_without_a_prompt_takes_the_shared_messages_as_the_prompt():
    user = {"role": "user", "content": "Weather in Oslo?"}
    record = {
        "chosen": [user, {"role": "assistant", "content": "It is 3 degrees."}],
        "rejected": [user, {"role": "assistant", "content": "No idea."}],
    }
    (row,) = imported(jsonl(record)).rows
    assert row["prompt"] == [user] and row["chosen"] == [{"role": "assistant", "content": "It is 3 degrees."}]


def test_dpo_problems_prompt_ending_with_an_assistant_and_two_chosen_messages():
    ends_with_assistant = dpo_row(
        prompt=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    )
    two_chosen = dpo_row(
        chosen=[{"role": "assistant", "content": "x"}, {"role": "assistant", "content": "y"}]
    )
    result = import_dataset(jsonl(ends_with_assistant, two_chosen), "pairs.jsonl")
    assert result.rows == [] and "None of the 2 rows" in result.problems[0].message
    text = problem_text(result)
    assert "1: prompt must end with a user message" in text
    assert "2: chosen must be a list holding exactly one assistant message" in text


def test_mixed_sft_and_dpo_rows_are_refused():
    result = import_dataset(jsonl(sft_row(), sft_row(), dpo_row()), "mixed.jsonl")
    assert result.rows == [] and result.kind == "sft" and problem_lines(result) == [None, 3]
    assert "a DPO row, but line 1 holds an SFT row" in result.problems[1].message


# --- files that cannot be read -------------------------------------------------------------------------


def test_truncated_json_on_line_3_is_a_problem_on_line_3():
    lines = jsonl(sft_row(), sft_row()) + json.dumps(sft_row()).encode()[:40] + b"\n" + jsonl(sft_row())
    result = import_dataset(lines, "rows.jsonl")
    assert result.rows == [] and result.records == 4 and problem_lines(result) == [None, 3]
    assert result.problems[1].message.startswith("Not valid JSON")
    assert "1 of 4 rows have problems" in result.problems[0].message


def test_blank_lines_do_not_shift_line_numbers():
    data = jsonl(sft_row()) + b"\n\r\n" + b'{"messages": [}\n'
    assert problem_lines(import_dataset(data, "rows.jsonl")) == [None, 4]


def test_json_array_problems_are_numbered_by_item():
    result = import_dataset(
        json.dumps([sft_row(), sft_row(), "oops", sft_row(tools="nope")]).encode(), "a.json"
    )
    assert problem_lines(result) == [None, 3, 4]
    assert "must be a JSON object, got a string" in result.problems[1].message


def test_a_json_array_that_does_not_parse_reports_the_text_line():
    data = b'[\n  {"messages": []},\n  {"messages": [}\n]'
    result = import_dataset(data, "broken.json")
    assert [(p.line, p.message.startswith("The file is not valid JSON")) for p in result.problems] == [
        (3, True)
    ]


@pytest.mark.parametrize(
    ("data", "filename", "expected"),
    [
        (b"", "empty.jsonl", "The file is empty."),
        (b" \n\t\r\n", "blank.jsonl", "The file is empty."),
        ("\ufeff".encode(), "bom.jsonl", "The file is empty."),
        (bytes(range(256)) * 20, "model.bin", "not UTF-8"),
        ("hello".encode("utf-16"), "utf16.jsonl", "not UTF-8"),
        (b'{"a": "caf\xe9"}', "latin1.jsonl", "not UTF-8"),
        (b"a,b\n1,2\n", "table.csv", "convert the .csv file"),
        (b"just some words", "notes.json", "not valid JSON"),
        (b"[]", "empty.json", "no rows"),
    ],
)
def test_unreadable_files_get_one_clear_problem(data, filename, expected):
    result = import_dataset(data, filename)
    assert result.rows == [] and len(result.problems) == 1
    assert expected in result.problems[0].message


def test_bad_utf8_names_its_line():
    result = import_dataset(jsonl(sft_row()) + b'{"a": "caf\xe9"}\n', "rows.jsonl")
    assert problem_lines(result) == [2]


def test_more_rows_than_allowed_is_refused():
    result = import_dataset(jsonl(*[sft_row()] * 11), "rows.jsonl", max_rows=10)
    assert result.rows == [] and "11 rows; at most 10" in result.problems[0].message
    assert imported(jsonl(*[sft_row()] * 10), max_rows=10).row_count == 10


def test_problems_stop_at_a_readable_number():
    result = import_dataset(b"{\n" * 500, "rows.jsonl")
    assert len(result.problems) <= 50
    assert result.problems[-1].message == f"... and {500 - MAX_PROBLEMS} more problems."
    assert "None of the 500 rows" in result.problems[0].message


def test_nan_and_unpaired_surrogates_are_refused():
    nan = import_dataset(b'{"messages": [], "meta": {"x": NaN}}', "nan.jsonl")
    assert "NaN is not a JSON value" in problem_text(nan)
    lone = sft_row()
    lone["messages"][1]["content"] = "\ud800"
    surrogate = import_dataset(json.dumps(lone).encode(), "lone.jsonl")
    assert surrogate.rows == [] and "surrogate" in problem_text(surrogate)


def test_deeply_nested_json_is_a_problem_not_a_crash():
    result = import_dataset(b"[" * 100_000 + b"]" * 100_000, "deep.json")
    assert result.rows == [] and "nested too deeply" in problem_text(result)


# --- row rules -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r["messages"].pop(), "must end with an assistant message"),
        (lambda r: r["messages"].pop(1), "at least one user message"),
        (lambda r: r["messages"].append({"role": "system", "content": "x"}), "may only come first"),
        (lambda r: r["messages"][3].pop("name"), "messages[3].name must name the function"),
        (lambda r: r["messages"][3].update(name="get_time"), "answers no call"),
        (lambda r: r["messages"].pop(2), "must follow an assistant message that calls a tool"),
        (
            lambda r: r["messages"][2]["tool_calls"][0]["function"].update(arguments='{"city": "Oslo"}'),
            "JSON object",
        ),
        (lambda r: r["messages"][1].update(content=["a"]), "messages[1].content must be a string"),
        (lambda r: r["messages"][1].update(role="human"), "messages[1].role must be one of"),
        (lambda r: r["messages"][4].update(content=""), "needs content or tool_calls"),
        (lambda r: r.update(tools=[WEATHER["function"]]), 'tools[0] must be {"type": "function"'),
        (lambda r: r.update(tools=[{"type": "function", "function": {"name": "bad name"}}]), "tools: tool 1"),
        (lambda r: r.update(split="holdout"), 'split must be "train" or "eval"'),
        (lambda r: r.update(meta=[]), "meta must be an object"),
    ],
)
def test_sft_row_rules(change, expected):
    row = sft_row()
    change(row)
    problems = validate_sft_row(row)
    assert any(expected in p for p in problems), problems


def test_row_helpers():
    assert row_kind(sft_row()) == "sft" and row_kind(dpo_row()) == "dpo"
    assert row_kind({"messages": [], "chosen": []}) is None and row_kind([]) is None
    assert row_has_call(sft_row()) and row_has_call(dpo_row())
    assert not row_has_call(dpo_row(chosen=[{"role": "assistant", "content": "no"}]))
    assert row_tools(sft_row(tools=[WEATHER, TIME["function"]])) == ["get_weather", "get_time"]
    assert validate_sft_row(sft_row()) == [] and validate_dpo_row(dpo_row()) == []
    assert validate_row({"a": 1}) == ["A row needs messages (SFT) or prompt/chosen/rejected (DPO)."]


# --- never raises --------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)
KEYS = ["messages", "conversations", "tools", "prompt", "chosen", "rejected", "completion", "system", "split"]
TURN_KEYS = ["role", "content", "from", "value", "tool_calls", "tool_call_id", "name", "function_call"]
TAGS = [
    "user",
    "assistant",
    "system",
    "tool",
    "human",
    "gpt",
    "function_call",
    "observation",
    "function",
    "x",
]
calls_like = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "id": st.sampled_from(["a", "b"]) | json_values,
            "type": st.just("function"),
            "function": st.fixed_dictionaries(
                {},
                optional={
                    "name": st.sampled_from(["get_weather", "get_time", ""]) | json_values,
                    "arguments": st.sampled_from(['{"city": "x"}', "{}", "[", "1"]) | json_values,
                },
            ),
        },
    ),
    max_size=3,
)
turns_like = st.lists(
    st.dictionaries(
        st.sampled_from(TURN_KEYS),
        st.sampled_from(TAGS)
        | st.sampled_from(['{"name": "get_time"}', "<tool_call>{}</tool_call>"])
        | calls_like,
        max_size=4,
    )
    | json_values,
    max_size=5,
)
rows_like = st.dictionaries(
    st.sampled_from(KEYS),
    turns_like
    | st.sampled_from([[WEATHER], [TIME["function"]], json.dumps([TIME["function"]])])
    | json_values,
    max_size=5,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.sampled_from(["d.jsonl", "d.json", "d", "d.csv"]))
def test_any_bytes_give_a_result_not_an_exception(data, filename):
    result = import_dataset(data, filename)
    assert result.problems or result.rows
    assert not (result.problems and result.rows)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rows_like | json_values, min_size=1, max_size=4), st.booleans())
def test_any_json_records_give_a_result_and_imported_rows_are_valid(records, as_array):
    data = json.dumps(records).encode() if as_array else jsonl(*records)
    result = import_dataset(data, "d.json" if as_array else "d.jsonl")
    assert bool(result.problems) != bool(result.rows)
    for row in result.rows:
        assert validate_row(row) == []
        assert row_kind(row) == result.kind


@settings(max_examples=300, deadline=None)
@given(json_values | rows_like)
def test_validators_never_raise(value):
    for validate in (validate_sft_row, validate_dpo_row, validate_row):
        assert isinstance(validate(value), list)
    row_has_call(value)
    row_tools(value)


# --- xLAM / APIGen -------------------------------------------------------------------------------------

# The example record on the Salesforce/xlam-function-calling-60k dataset card, as the Hub serves it.
XLAM_CARD = {
    "id": 1,
    "query": "Where can I find live giveaways for beta access and games?",
    "answers": '[{"name": "live_giveaways_by_type", "arguments": {"type": "beta"}}, '
    '{"name": "live_giveaways_by_type", "arguments": {"type": "game"}}]',
    "tools": '[{"name": "live_giveaways_by_type", "description": "Retrieve live giveaways from the '
    'GamerPower API based on the specified type.", "parameters": {"type": {"description": "The type of '
    'giveaways to retrieve (e.g., game, loot, beta).", "type": "str", "default": "game"}}}]',
}
GIVEAWAYS = {
    "type": "function",
    "function": {
        "name": "live_giveaways_by_type",
        "description": "Retrieve live giveaways from the GamerPower API based on the specified type.",
        "parameters": {
            "type": "object",
            "properties": {
                "type": {
                    "description": "The type of giveaways to retrieve (e.g., game, loot, beta).",
                    "type": "string",
                    "default": "game",
                }
            },
            "required": [],
        },
    },
}
XLAM_STATS = {
    "name": "summary_stats",
    "description": "Mean and spread of some numbers.",
    "parameters": {
        "numbers": {"description": "The numbers.", "type": "List[int]"},
        "precision": {"description": "Decimal places.", "type": "int, optional"},
        "label": {"description": "Echoed back as it is.", "type": "Any"},
    },
}


def xlam_record(
    query: str, answers: Any, tools: Any, *, as_text: bool = True, **extra: Any
) -> dict[str, Any]:
    """An xLAM record; `answers` and `tools` as JSON strings, the way the dataset stores them, unless not."""
    record = {
        "query": query,
        "answers": json.dumps(answers) if as_text else answers,
        "tools": json.dumps(tools) if as_text else tools,
    }
    record.update(extra)
    return record


def xlam_call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


def test_xlam_card_example_is_one_sft_row_with_two_calls_and_an_optional_typed_parameter():
    result = imported(jsonl(XLAM_CARD))
    assert (result.kind, result.format, result.records) == ("sft", "xlam", 1)
    assert (result.row_count, result.rows_with_call) == (1, 1)
    assert result.rows == [
        {
            "messages": [
                {"role": "user", "content": "Where can I find live giveaways for beta access and games?"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        call("live_giveaways_by_type", type="beta"),
                        call("live_giveaways_by_type", type="game"),
                    ],
                },
            ],
            "tools": [GIVEAWAYS],
        }
    ]
    assert result.called_names == result.tool_names == ["live_giveaways_by_type"]
    assert validate_sft_row(result.rows[0]) == []


def test_xlam_list_optional_and_any_parameters_become_json_schema():
    record = xlam_record("Stats of 1, 2, 3?", [xlam_call("summary_stats", numbers=[1, 2, 3])], [XLAM_STATS])
    (row,) = imported(jsonl(record)).rows
    assert row["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "summary_stats",
                "description": "Mean and spread of some numbers.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "numbers": {
                            "description": "The numbers.",
                            "type": "array",
                            "items": {"type": "integer"},
                        },
                        "precision": {"description": "Decimal places.", "type": "integer"},
                        "label": {"description": "Echoed back as it is."},
                    },
                    "required": ["numbers", "label"],
                },
            },
        }
    ]
    assert row["messages"][1]["tool_calls"] == [call("summary_stats", numbers=[1, 2, 3])]


@pytest.mark.parametrize(
    ("declared", "schema", "required"),
    [
        ("str", {"type": "string"}, True),
        ("int", {"type": "integer"}, True),
        ("float", {"type": "number"}, True),
        ("bool", {"type": "boolean"}, True),
        ("str, optional", {"type": "string"}, False),
        ("float, Optional", {"type": "number"}, False),
        ("List[str]", {"type": "array", "items": {"type": "string"}}, True),
        ("List", {"type": "array"}, True),
        ("list", {"type": "array"}, True),
        ("List[int], optional", {"type": "array", "items": {"type": "integer"}}, False),
        (
            "List[List[int]]",
            {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
            True,
        ),
        ("List[Dict[str, Any]]", {"type": "array", "items": {"type": "object"}}, True),
        ("List[Any]", {"type": "array"}, True),
        ("Tuple[int, int]", {"type": "array", "items": {"type": "integer"}}, True),
        ("Tuple[int, str]", {"type": "array"}, True),
        ("Set[str]", {"type": "array", "items": {"type": "string"}}, True),
        ("Dict[str, Any]", {"type": "object"}, True),
        ("dict", {"type": "object"}, True),
        ("Dict[str, int], optional", {"type": "object"}, False),
        ("Any", {}, True),
        ("Union[int, float]", {}, True),
        ("Callable", {}, True),
        ("Callable[[float], float]", {}, True),
        ("int or float", {}, True),
    ],
)
def test_xlam_parameter_type_strings(declared, schema, required):
    tool = {"name": "f", "parameters": {"x": {"description": "An x.", "type": declared}}}
    (row,) = imported(jsonl(xlam_record("Call f.", [xlam_call("f", x=1)], [tool]))).rows
    parameters = row["tools"][0]["function"]["parameters"]
    assert parameters == {
        "type": "object",
        "properties": {"x": {"description": "An x.", **schema}},
        "required": ["x"] if required else [],
    }


def test_xlam_a_default_makes_a_parameter_optional_and_is_kept():
    tool = {
        "name": "search",
        "parameters": {
            "q": {"description": "Words.", "type": "str", "default": ""},
            "limit": {"description": "How many.", "type": "int", "default": 10},
            "page": {"description": "Which page.", "type": "int, optional", "default": None},
            "lang": {"description": "Language.", "type": "str"},
        },
    }
    (row,) = imported(
        jsonl(xlam_record("Find cats", [xlam_call("search", q="cats", lang="en")], [tool]))
    ).rows
    assert row["tools"][0]["function"]["parameters"] == {
        "type": "object",
        "properties": {
            "q": {"description": "Words.", "type": "string", "default": ""},
            "limit": {"description": "How many.", "type": "integer", "default": 10},
            "page": {"description": "Which page.", "type": "integer", "default": None},
            "lang": {"description": "Language.", "type": "string"},
        },
        "required": ["lang"],
    }


def test_xlam_jsonl_and_json_array_files_import_the_same_rows():
    records = [
        XLAM_CARD,
        xlam_record(
            "Stats of 4 and 5?", [xlam_call("summary_stats", numbers=[4, 5], precision=2)], [XLAM_STATS]
        ),
        # Already-parsed answers and tools, and a tool in the OpenAI shape with JSON Schema parameters.
        xlam_record(
            "Weather in Oslo and in Lima?",
            [xlam_call("get_weather", city="Oslo"), xlam_call("get_weather", city="Lima", unit="c")],
            [WEATHER],
            as_text=False,
            id=3,
        ),
    ]
    from_jsonl = imported(jsonl(*records), "xlam.jsonl")
    from_array = imported(json.dumps(records).encode(), "xlam.json")
    for result in (from_jsonl, from_array):
        assert (result.kind, result.format, result.row_count, result.rows_with_call) == ("sft", "xlam", 3, 3)
        assert all(validate_sft_row(row) == [] for row in result.rows)
    assert from_array.rows == from_jsonl.rows
    assert from_jsonl.rows[1]["messages"][1]["tool_calls"] == [
        call("summary_stats", numbers=[4, 5], precision=2)
    ]
    assert from_jsonl.rows[2] == {
        "messages": [
            {"role": "user", "content": "Weather in Oslo and in Lima?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [call("get_weather", city="Oslo"), call("get_weather", city="Lima", unit="c")],
            },
        ],
        "tools": [WEATHER],
    }
    assert from_jsonl.tool_names == ["get_weather", "live_giveaways_by_type", "summary_stats"]


def test_xlam_malformed_records_are_problems_on_their_lines_and_nothing_is_imported():
    answers_not_json = dict(XLAM_CARD, answers='[{"name": "live_giveaways_by_type", "arguments": ')
    tools_not_a_list = dict(XLAM_CARD, tools=json.dumps({"name": "live_giveaways_by_type"}))
    nameless_call = dict(XLAM_CARD, answers=json.dumps([{"arguments": {"type": "beta"}}]))
    result = import_dataset(jsonl(XLAM_CARD, answers_not_json, tools_not_a_list, nameless_call), "xlam.jsonl")
    assert result.rows == [] and result.format == "xlam"
    assert [(p.line, p.message) for p in result.problems] == [
        (None, "3 of 4 rows have problems. Nothing was imported: fix the file and upload it again."),
        (2, "answers is text but not valid JSON (Expecting value: line 1 column 50 (char 49))."),
        (3, "tools must be a list of tool definitions, got an object."),
        (4, "answers[0]: the call needs a function name, got None."),
    ]


def test_xlam_more_problems_answers_not_a_list_bad_arguments_unknown_function():
    records = [
        dict(XLAM_CARD, answers=json.dumps({"name": "live_giveaways_by_type", "arguments": {}})),
        dict(
            XLAM_CARD,
            answers=json.dumps([xlam_call("live_giveaways_by_type"), {"name": "x", "arguments": [1]}]),
        ),
        dict(XLAM_CARD, answers=json.dumps([xlam_call("book_flight", to="Oslo")])),
        dict(XLAM_CARD, query=None),
        dict(XLAM_CARD, tools=json.dumps([{"name": "f", "parameters": {"x": "str", "y": {"type": 3}}}])),
    ]
    result = import_dataset(json.dumps(records).encode(), "xlam.json")
    assert result.rows == [] and "None of the 5 rows" in result.problems[0].message
    assert [(p.line, p.message) for p in result.problems[1:]] == [
        (1, "answers must be a list of calls, got an object."),
        (2, "answers[1]: the arguments of 'x' must be a JSON object, got a list."),
        (
            3,
            "messages[1].tool_calls[0]: calls 'book_flight', which is not in tools "
            "(offered: live_giveaways_by_type).",
        ),
        (4, "query must be text, got null."),
        (5, "tools: tool 1 (f): parameter 'x' must be an object (description, type), got a string."),
        (
            5,
            "tools: tool 1 (f): parameter 'y': type must be text such as "
            '"str" or "List[int]", got a number.',
        ),
    ]


def test_xlam_needs_both_query_and_answers():
    result = import_dataset(jsonl({"query": "hi", "tools": "[]"}), "xlam.jsonl")
    assert result.rows == [] and "or query/answers (keys: 'query', 'tools')" in result.problems[1].message


xlam_types = st.sampled_from(["str", "int, optional", "List[int]", "Dict[str, Any]", "Any", "Tuple[", "]]"])
xlam_like = st.fixed_dictionaries(
    {
        "query": st.text(max_size=8) | json_values,
        "answers": st.lists(
            st.fixed_dictionaries(
                {"name": st.sampled_from(["f", "g"]) | json_values},
                optional={
                    "arguments": st.dictionaries(st.text(max_size=3), json_values, max_size=2) | json_values
                },
            ),
            max_size=2,
        )
        | json_values,
    },
    optional={
        "tools": st.lists(
            st.fixed_dictionaries(
                {"name": st.sampled_from(["f", "g", ""]) | json_values},
                optional={
                    "parameters": st.dictionaries(
                        st.text(max_size=4),
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "type": xlam_types | json_values,
                                "description": json_values,
                                "default": json_values,
                            },
                        )
                        | json_values,
                        max_size=3,
                    )
                    | json_values
                },
            )
            | json_values,
            max_size=3,
        )
        | json_values,
        "split": st.sampled_from(["train", "test"]) | json_values,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(xlam_like, min_size=1, max_size=3), st.booleans())
def test_any_xlam_like_records_give_a_result_and_imported_rows_are_valid(records, as_text):
    if as_text:
        records = [
            {k: json.dumps(v) if k in ("answers", "tools") else v for k, v in r.items()} for r in records
        ]
    result = import_dataset(jsonl(*records), "d.jsonl")
    assert bool(result.problems) != bool(result.rows)
    for row in result.rows:
        assert validate_row(row) == []
        assert result.format == "xlam"


def test_xlam_irrelevance_records_answer_in_words():
    """An empty `answers` (xLAM's irrelevance records: no tool fits) trains a reply without a call."""
    result = import_dataset(jsonl(dict(XLAM_CARD, answers="[]")), "xlam-irrelevance.jsonl")
    assert result.problems == [] and result.format == "xlam"
    (row,) = result.rows
    assert row["messages"][1] == {"role": "assistant", "content": "None of the tools I have can do that."}


def test_openais_older_functions_format_keeps_its_function_list_as_tools():
    weather = {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    record = {
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
            },
            {"role": "function", "name": "get_weather", "content": "3 degrees"},
            {"role": "assistant", "content": "3 degrees."},
        ],
        "functions": [weather],
    }
    result = imported(jsonl(record))
    assert result.row_count == 1 and not result.problems, result.problems
    (row,) = result.rows
    assert [t["function"]["name"] for t in row["tools"]] == ["get_weather"]
    assert row["messages"][1]["tool_calls"] == [call("get_weather", city="Oslo")]
