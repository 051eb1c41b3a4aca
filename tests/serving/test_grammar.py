"""Grammar-constrained tool calls: the grammar itself, its cache, and the real default model under it."""

from __future__ import annotations

import copy

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from llama_cpp import LlamaGrammar

from app.serving.default_model import default_gguf_path
from app.serving.grammar import GrammarError, grammar_for, tool_call_schema, tool_grammar_text
from app.serving.local import LocalModelHolder
from app.serving.tool_calls import parse_tool_calls, tools_system_prompt
from app.serving.tool_schema import check_tool_call, validate_tool_definitions
from app.serving.types import SamplingParams

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Oslo"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
PETS = {
    "name": "findPetsByStatus",  # the bare shape works too
    "parameters": {
        "type": "object",
        "properties": {"status": {"type": "string", "enum": ["available", "pending", "sold"]}},
        "required": ["status"],
    },
}
PET = {
    "name": "getPetById",
    "parameters": {"type": "object", "properties": {"petId": {"type": "integer"}}, "required": ["petId"]},
}


def test_one_tool_gives_one_call_schema_that_rejects_extra_arguments():
    schema = tool_call_schema([WEATHER])
    validator = Draft202012Validator(schema)
    assert "anyOf" not in schema
    assert validator.is_valid({"name": "get_weather", "arguments": {"city": "Oslo"}})
    assert not validator.is_valid({"name": "get_weather", "arguments": {"city": "Oslo", "country": "NO"}})
    assert not validator.is_valid({"name": "get_time", "arguments": {"city": "Oslo"}})


def test_several_tools_give_one_alternative_each():
    schema = tool_call_schema([WEATHER, PETS, PET])
    assert len(schema["anyOf"]) == 3
    assert Draft202012Validator(schema).is_valid({"name": "getPetById", "arguments": {"petId": 7}})


@pytest.mark.parametrize("tools", [[WEATHER], [WEATHER, PETS, PET]])
def test_required_grammar_is_one_tagged_call_to_an_offered_tool(tools):
    text = tool_grammar_text(tools, "required")
    assert "root ::= call-block\n" in text + "\n"
    assert '"<tool_call>" call "</tool_call>"' in text
    for tool in tools:
        name = tool.get("function", tool)["name"]
        assert f'"\\"{name}\\""' in text
        for argument in tool.get("function", tool)["parameters"]["properties"]:
            assert f'"\\"{argument}\\""' in text  # each tool's own schema, not a fallback


def test_auto_grammar_also_allows_plain_text():
    text = tool_grammar_text([WEATHER, PETS], "auto")
    assert "root ::= call-block | text" in text
    assert isinstance(grammar_for([WEATHER, PETS], "auto"), LlamaGrammar)


def test_a_schema_llama_cpp_cannot_convert_still_constrains_the_call_format():
    remote = {
        "name": "remote",
        "parameters": {"type": "object", "properties": {"x": {"$ref": "https://x.test/s"}}},
    }
    text = tool_grammar_text([WEATHER, remote])
    assert '"\\"remote\\""' in text and '"\\"get_weather\\""' in text


def test_bad_requests_are_grammar_errors():
    with pytest.raises(GrammarError):
        tool_grammar_text([])
    with pytest.raises(GrammarError, match="Unknown grammar mode"):
        grammar_for([WEATHER], "sometimes")


def test_bounds_too_big_to_spell_out_are_left_to_the_checker():
    from app.serving.grammar import MAX_GRAMMAR_REPEAT, within_grammar_limits

    big = MAX_GRAMMAR_REPEAT + 1
    schema = {
        "type": "object",
        "properties": {
            "note": {"type": "string", "maxLength": 65535},
            "ids": {"type": "array", "items": {"type": "integer"}, "minItems": 3_000_000, "maxItems": 5},
            "code": {"type": "string", "pattern": f"^a{{{big}}}$"},
            "maxLength": {"type": "string", "minLength": 2},  # a property named like a keyword
            "default": {"type": "string", "maxLength": big},
        },
        "default": {"note": "x", "maxLength": big},  # data: kept as written
    }
    bounded = within_grammar_limits(schema)
    props = bounded["properties"]
    assert (
        props["note"] == {"type": "string"}
        and props["ids"]["maxItems"] == 5
        and "minItems" not in props["ids"]
    )
    assert props["code"] == {"type": "string"} and props["maxLength"] == {"type": "string", "minLength": 2}
    assert props["default"] == {"type": "string"} and bounded["default"] == schema["default"]
    tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    assert "<tool_call>" in tool_grammar_text([tool])
    # The checker still holds replies to the bounds the grammar left out.
    assert check_tool_call([tool], "f", {"note": "x" * 70000})


def test_huge_bounds_neither_crash_nor_balloon_the_process():
    """Before the bounds were capped, `maxLength: 65535` crashed llama.cpp's grammar parser (SIGSEGV)
    and `minItems: 3000000` took half a gigabyte: run where a crash fails one test, not the run."""
    import subprocess
    import sys

    script = (
        "from app.serving.grammar import json_grammar, tool_grammar_text\n"
        "p = {'type': 'object', 'properties': {'s': {'type': 'string', 'maxLength': 65535},"
        " 'a': {'type': 'array', 'items': {'type': 'integer'}, 'minItems': 3000000}}}\n"
        "tool_grammar_text([{'type': 'function', 'function': {'name': 'f', 'parameters': p}}])\n"
        "json_grammar(p)\n"
        # This process's own peak (ru_maxrss would carry the forking test runner's over).
        "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) < 400_000  # KiB: the interpreter and llama.cpp, no grammar blow-up


def test_grammars_are_cached_per_tool_set_and_mode():
    grammar = grammar_for([WEATHER, PETS])
    assert grammar_for(copy.deepcopy([WEATHER, PETS])) is grammar
    assert tool_grammar_text([WEATHER, PETS]) is tool_grammar_text(copy.deepcopy([WEATHER, PETS]))
    assert grammar_for([WEATHER, PETS], "auto") is not grammar
    assert grammar_for([PETS, WEATHER]) is not grammar


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
LEAF_SCHEMAS = st.one_of(
    st.sampled_from(
        [{"type": t} for t in ("string", "integer", "number", "boolean", "null", "object", "array")]
    ),
    st.builds(
        lambda p: {"type": "string", "pattern": p},
        st.sampled_from(["^[a-z]+$", "^\\d{3}-\\d{4}$", "(", "a|b"]),
    ),
    st.builds(lambda values: {"enum": values}, st.lists(JSON_SCALARS, min_size=1, max_size=4)),
    st.builds(lambda value: {"const": value}, st.text(max_size=8)),
    st.builds(lambda n: {"type": "string", "minLength": n, "maxLength": n + 3}, st.integers(0, 4)),
)
SCHEMAS = st.recursive(
    LEAF_SCHEMAS,
    lambda children: st.one_of(
        st.builds(lambda items: {"type": "array", "items": items}, children),
        st.builds(
            lambda props: {"type": "object", "properties": props},
            st.dictionaries(st.text(max_size=6), children, max_size=3),
        ),
        st.builds(lambda alts: {"anyOf": alts}, st.lists(children, min_size=1, max_size=3)),
    ),
    max_leaves=8,
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=8), SCHEMAS, max_size=4), min_size=1, max_size=3))
def test_any_valid_tool_set_gets_a_grammar(property_sets):
    pasted = [
        {
            "name": f"tool_{i}",
            "parameters": {"type": "object", "properties": props, "required": list(props)[:1]},
        }
        for i, props in enumerate(property_sets)
    ]
    tools, errors = validate_tool_definitions(pasted)
    assume(not errors)
    for mode in ("required", "auto"):
        text = tool_grammar_text(tools, mode)
        assert all(f'"\\"tool_{i}\\""' in text for i in range(len(tools)))


@pytest.fixture(scope="module")
def holder():
    models = LocalModelHolder(max_loaded=1, n_threads=2, n_ctx=2048)
    yield models
    models.close()


def test_default_model_under_the_grammar_calls_get_weather_for_oslo(holder):
    """The untrained 135M model rambles when free; constrained, it makes the call (twice: one grammar
    object serves many generations, each starting from a fresh parse state)."""
    tools = [WEATHER]
    messages = [
        {"role": "system", "content": tools_system_prompt(tools)},
        {"role": "user", "content": "What's the weather in Oslo?"},
    ]
    grammar = grammar_for(tools, "required")
    replies = [
        holder.chat(
            default_gguf_path(), messages, SamplingParams(temperature=0.0, max_tokens=64), grammar=grammar
        )
        for _ in range(2)
    ]
    assert replies[0].text == replies[1].text
    calls = parse_tool_calls(replies[0].text)
    assert len(calls) == 1
    assert calls[0].name == "get_weather" and "Oslo" in calls[0].arguments["city"]
    assert check_tool_call(tools, calls[0].name, calls[0].arguments) == []
    assert replies[0].finish_reason == "stop"


# (a pattern as specs write it, strings it must and must not accept)
PATTERNS = [
    (r"^\d{3}-\d{4}$", ["555-1234"], ["55-1234", "abc-defg", "555-12345"]),
    (r"^\d+\.\d+$", ["1.25", "10.0"], ["1x25", "1.", ".5"]),
    (r"^[\w.-]+@[\w-]+\.[a-z]{2,}$", ["ann.lee@mail-x.org"], ["ann@mail", "a b@x.org"]),
    (r"^\S+$", ["token"], ["two words", ""]),
    (r"^[^\s]+$", ["token"], ["a\tb"]),
    (r"^a\/b\-c$", ["a/b-c"], ["a\\/b-c"]),
    (r"^[\^x\-]+$", ["^x-"], ["y"]),
    (r"^[]a]+$", ["]a]"], ["b"]),
]


@pytest.mark.parametrize(("pattern", "good", "bad"), PATTERNS)
def test_shorthand_classes_and_escaped_marks_are_spelled_so_the_grammar_keeps_the_pattern(pattern, good, bad):
    import re

    from app.serving.grammar import grammar_pattern, json_grammar

    spelled = grammar_pattern(pattern)
    assert spelled is not None and "\\d" not in spelled and "\\." not in spelled
    for text in good:
        assert re.fullmatch(pattern, text) and re.fullmatch(spelled, text), text
    for text in bad:
        assert not re.fullmatch(pattern, text) and not re.fullmatch(spelled, text), text
    json_grammar({"type": "string", "pattern": pattern})  # llama.cpp accepts the grammar
    tool = {
        "name": "f",
        "parameters": {"type": "object", "properties": {"x": {"type": "string", "pattern": pattern}}},
    }
    assert "[0-9]" in tool_grammar_text([tool], "required") or "\\d" not in pattern


@pytest.mark.parametrize("pattern", [r"\bword\b", r"^(a)\1$", r"^[\S]$", r"^\p{L}+$"])
def test_what_a_grammar_cannot_say_leaves_the_pattern_to_the_checker(pattern):
    from app.serving.grammar import grammar_pattern, json_grammar

    assert grammar_pattern(pattern) is None
    json_grammar({"type": "string", "pattern": pattern})  # still a grammar, without the pattern


def test_the_default_model_under_a_digit_pattern_writes_a_value_that_matches_it(holder):
    tools = [{"type": "function", "function": {"name": "call_phone", "parameters": {
        "type": "object",
        "properties": {"number": {"type": "string", "pattern": r"^\d{3}-\d{4}$"}},
        "required": ["number"],
    }}}]  # fmt: skip
    messages = [
        {"role": "system", "content": tools_system_prompt(tools)},
        {"role": "user", "content": "Call 555-1234 please."},
    ]
    reply = holder.chat(
        default_gguf_path(), messages, SamplingParams(temperature=0.0, max_tokens=48),
        grammar=grammar_for(tools, "required"),
    )  # fmt: skip
    (call,) = parse_tool_calls(reply.text)
    assert check_tool_call(tools, call.name, call.arguments) == [], reply.text


@pytest.mark.timeout(60)  # llama-cpp-python's converter looped for ever on these (a thread at 100% CPU)
@pytest.mark.parametrize(
    ("pattern", "literal"),
    [
        (r"^a]$", "a]"),
        (r"^a}$", "a}"),
        (r"^x]]$", "x]]"),
        (r"^a\^b]$", "a^b]"),
        (r"^a{$", "a{"),
        (r"^[\{]$", "{"),
    ],
)
def test_stray_brackets_and_braces_are_literals_not_a_hang(pattern, literal):
    import re

    from app.serving.grammar import grammar_pattern, json_grammar

    spelled = grammar_pattern(pattern)
    json_grammar({"type": "string", "pattern": pattern})
    assert spelled is not None and re.fullmatch(spelled, literal) and re.fullmatch(pattern, literal)


@pytest.mark.parametrize(
    ("pattern", "outside"),
    [
        (r"^\S+$", ["a\x0bb", "a\xa0b", "a\u2003b", "a\x1cb"]),  # what \s matches beyond " \t\n\r"
        (r"^[^\s]+$", ["a\x0bb", "a\u3000b"]),
        (r"^\^[0-9]+$", ["x12", "]12"]),  # `\^` outside a class once became `[^]`: any character
    ],
)
def test_negations_leave_out_everything_the_pattern_leaves_out(pattern, outside):
    import re

    from app.serving.grammar import grammar_pattern, json_grammar

    spelled = grammar_pattern(pattern)
    json_grammar({"type": "string", "pattern": pattern})
    for text in outside:
        assert not re.fullmatch(pattern, text) and not re.fullmatch(spelled, text), repr(text)


@pytest.mark.parametrize("pattern", [r"^\D+$", r"^\W$", r"^[^\d]$", r"^[^\w]+$", r"^a*+$"])
def test_negated_digits_words_and_possessive_repeats_are_left_to_the_checker(pattern):
    from app.serving.grammar import grammar_pattern

    assert grammar_pattern(pattern) is None


# A nested model as pydantic (openai.pydantic_function_tool) and zod write it: `$defs` and a local `$ref`.
SAVE_PERSON = {
    "name": "save_person",
    "parameters": {
        "$defs": {
            "Address": {
                "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
                "required": ["street", "city"],
            }
        },
        "type": "object",
        "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/Address"}},
        "required": ["name", "address"],
    },
}
# A recursive one: a node's children are nodes (`#` is the parameters' own root).
TREE = {
    "name": "save_tree",
    "parameters": {
        "type": "object",
        "properties": {"label": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#"}}},
        "required": ["label"],
    },
}


@pytest.mark.parametrize("tools", [[SAVE_PERSON], [WEATHER, SAVE_PERSON, TREE]])
def test_local_refs_keep_their_tools_grammar(tools):
    """Nested under the call's `arguments`, `#/$defs/...` used to point at nothing: the converter failed
    and the tool fell back to "any JSON object" (arguments like {"type": "json"} under `required`)."""
    text = tool_grammar_text(tools)
    assert '"\\"street\\""' in text and '"\\"city\\""' in text  # the nested model's own properties
    schema = tool_call_schema(tools)
    validator = Draft202012Validator(schema)
    good = {"name": "Ann", "address": {"street": "Main St 1", "city": "Oslo"}}
    assert validator.is_valid({"name": "save_person", "arguments": good})
    assert not validator.is_valid({"name": "save_person", "arguments": {"name": "Ann", "address": {}}})
    assert not validator.is_valid({"name": "save_person", "arguments": {"type": "json"}})
    if TREE in tools:
        assert '"\\"children\\""' in text
        tree = {"label": "a", "children": [{"label": "b", "children": [{"label": "c"}]}]}
        assert validator.is_valid({"name": "save_tree", "arguments": tree})
        assert not validator.is_valid({"name": "save_tree", "arguments": {"label": "a", "children": [{}]}})


def test_default_model_under_a_nested_models_grammar_writes_arguments_that_match_it(holder):
    tools = [SAVE_PERSON]
    messages = [
        {"role": "system", "content": tools_system_prompt(tools)},
        {"role": "user", "content": "Save Ann Lee, who lives at 5 Main Street in Oslo."},
    ]
    params = SamplingParams(temperature=0.0, max_tokens=96)
    reply = holder.chat(default_gguf_path(), messages, params, grammar=grammar_for(tools, "required"))
    [call] = parse_tool_calls(reply.text)
    assert call.name == "save_person" and check_tool_call(tools, call.name, call.arguments) == []
    assert set(call.arguments["address"]) == {"street", "city"}, call.arguments


def test_a_property_named_like_a_keyword_keeps_its_ref():
    """`default`, `enum`, `example` name data in a schema, but are plain names in `properties`."""
    tool = {
        "name": "ship",
        "parameters": {
            "$defs": SAVE_PERSON["parameters"]["$defs"],
            "type": "object",
            "properties": {"default": {"$ref": "#/$defs/Address"}, "enum": {"type": "string"}},
            "required": ["default"],
        },
    }
    text = tool_grammar_text([tool])
    assert '"\\"street\\""' in text and '"\\"default\\""' in text
