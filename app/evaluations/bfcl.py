"""BFCL, the Berkeley Function Calling Leaderboard (V4): its non-live AST categories as cases, and a checker.

Each BFCL row is one user question with the functions on offer, written in BFCL's own schema dialect
(`dict`, `float`, `tuple`, `any`; names with dots such as `math.factorial`); its answer lists, for every
argument, all the values accepted (`""` among them: the argument may be left out). `load_cases` turns a
category's rows into OpenAI-style messages and tools (standard JSON Schema, names a chat API accepts).
`check_calls` judges a model's calls the way BFCL's `eval_checker/ast_eval/ast_checker.py` does, as
summarised in `fixtures/SOURCES.md`: as many calls as expected, the right names, required and expected
arguments present and no others, exact types, values among the accepted ones (strings normalised), any
order in the parallel categories, and no call at all for irrelevance.

Where BFCL is looser or stricter by accident we are a little kinder, never harsher: an int is accepted
for a float inside a list too (BFCL only at the top level), an `any` argument takes any JSON value (BFCL:
a string), and strings are normalised at every depth of a list or dict (BFCL: one level).

Pure Python, no Flask. The data in `bfcl_data/` is evaluation data: never train on it.
"""

from __future__ import annotations

import copy
import json
import re
import reprlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).with_name("bfcl_data")

CATEGORIES: dict[str, str] = {
    "simple_python": "Simple",
    "multiple": "Multiple",
    "parallel": "Parallel",
    "parallel_multiple": "Parallel multiple",
    "irrelevance": "Irrelevance",
}
PARALLEL_CATEGORIES = frozenset({"parallel", "parallel_multiple"})
NO_CALL_CATEGORIES = frozenset({"irrelevance"})

PUBLISHED_SOURCE = "BFCL V4 leaderboard, non-live AST, 2025-12-16 (full category sets)"
# Accuracy in percent, one per category, in the order of CATEGORIES.
PUBLISHED_SCORES: dict[str, dict[str, float]] = {
    label: dict(zip(CATEGORIES, scores, strict=True))
    for label, scores in {
        "Qwen3-0.6B (FC)": (86.5, 86.0, 67.5, 69.5, 82.5),
        "Granite-4.0-350m (FC)": (83.0, 84.5, 70.0, 55.5, 76.7),
        "Hammer2.1-0.5b (FC)": (83.25, 81.0, 69.0, 51.5, 85.0),
        "Llama-3.2-1B-Instruct (FC)": (75.0, 50.5, 44.0, 15.0, 35.8),
    }.items()
}

# BFCL's type names -> JSON Schema's; `any` (and anything unknown) gets no `type` at all.
_JSON_TYPES = {
    "dict": "object",
    "float": "number",
    "tuple": "array",
    "array": "array",
    "integer": "integer",
    "string": "string",
    "boolean": "boolean",
}
# Standard JSON Schema keywords BFCL uses; everything else (`optional`, ...) is BFCL's own and dropped.
_KEPT_KEYWORDS = ("description", "enum", "default", "format", "minimum", "maximum", "minItems", "maxItems")
# The Python types a JSON value of each type may have. Exact types: a bool is not an integer here.
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "number": (int, float),
    "string": (str,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}
_TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "a boolean",
    "array": "a list",
    "object": "an object",
}
_IGNORED_IN_STRINGS = re.compile(r"[ ,./\-_*^]")
_NOT_ALLOWED_IN_NAMES = re.compile(r"[^a-zA-Z0-9_-]")
_MAX_NAME_LENGTH = 64

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlevel = 3


@dataclass(frozen=True)
class BfclCase:
    id: str
    category: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    ground_truth: list[dict[str, Any]] | None  # None: the right answer is no call
    names: dict[str, str]  # name as offered to the model -> BFCL's original function name


@dataclass(frozen=True)
class CallVerdict:
    correct: bool
    reason: str  # "" when correct


# --- the data ------------------------------------------------------------------------------------


@cache
def _read_rows(relative_path: str) -> tuple[dict[str, Any], ...]:
    """A data file's rows (JSON Lines despite the `.json`); cached, so callers must not change them."""
    text = (DATA_DIR / relative_path).read_text(encoding="utf-8")
    return tuple(json.loads(line) for line in text.splitlines() if line.strip())


def _questions(category: str) -> tuple[dict[str, Any], ...]:
    if category not in CATEGORIES:
        raise ValueError(f"Unknown BFCL category {category!r}; known: {', '.join(CATEGORIES)}.")
    return _read_rows(f"BFCL_v4_{category}.json")


@cache
def _answers(category: str) -> dict[str, list[dict[str, Any]]]:
    if category in NO_CALL_CATEGORIES:
        return {}
    return {row["id"]: row["ground_truth"] for row in _read_rows(f"possible_answer/BFCL_v4_{category}.json")}


def category_size(category: str) -> int:
    """How many rows the category's file holds."""
    return len(_questions(category))


def load_cases(category: str, limit: int | None = None) -> list[BfclCase]:
    """The category's cases; with a `limit`, that many spread evenly across the file (rows come in topics)."""
    rows = _questions(category)
    answers = _answers(category)
    return [_case(category, rows[index], answers) for index in _spread_indexes(len(rows), limit)]


def _spread_indexes(size: int, limit: int | None) -> list[int]:
    if limit is None or limit >= size:
        return list(range(size))
    if limit <= 0:
        return []
    return [round(position * size / limit) for position in range(limit)]


def _case(category: str, row: dict[str, Any], answers: dict[str, list[dict[str, Any]]]) -> BfclCase:
    row = copy.deepcopy(row)  # the parsed file is cached: hand out copies
    functions = row["function"]
    offered = offered_names([function["name"] for function in functions])
    return BfclCase(
        id=row["id"],
        category=category,
        messages=[{"role": message["role"], "content": message["content"]} for message in row["question"][0]],
        tools=[_tool(name, function) for name, function in zip(offered, functions, strict=True)],
        ground_truth=None if category in NO_CALL_CATEGORIES else copy.deepcopy(answers[row["id"]]),
        names={name: function["name"] for name, function in zip(offered, functions, strict=True)},
    )


# --- BFCL's functions as OpenAI tools ------------------------------------------------------------


def offered_names(originals: list[str]) -> list[str]:
    """Names OpenAI-compatible APIs accept (`^[a-zA-Z0-9_-]{1,64}$`), unique within the list, in order."""
    taken: set[str] = set()
    offered = []
    for original in originals:
        base = _NOT_ALLOWED_IN_NAMES.sub("_", original)[:_MAX_NAME_LENGTH] or "function"
        name, number = base, 2
        while name in taken:
            suffix = f"_{number}"
            name, number = base[: _MAX_NAME_LENGTH - len(suffix)] + suffix, number + 1
        taken.add(name)
        offered.append(name)
    return offered


def _tool(name: str, function: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": function.get("description", ""),
            "parameters": _parameters(function.get("parameters") or {}),
        },
    }


def _parameters(schema: dict[str, Any]) -> dict[str, Any]:
    converted = json_schema(schema)
    return {
        "type": "object",
        "properties": converted.get("properties", {}),
        "required": converted.get("required", []),
    }


def json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """BFCL's schema dialect as standard JSON Schema, recursively: `dict` -> `object`, `float` -> `number`."""
    converted: dict[str, Any] = {}
    if schema.get("type") in _JSON_TYPES:
        converted["type"] = _JSON_TYPES[schema["type"]]
    for keyword in _KEPT_KEYWORDS:
        if keyword in schema:
            converted[keyword] = schema[keyword]
    if isinstance(schema.get("items"), dict):
        converted["items"] = json_schema(schema["items"])
    if isinstance(schema.get("properties"), dict):
        converted["properties"] = {name: json_schema(sub) for name, sub in schema["properties"].items()}
    if isinstance(schema.get("required"), list):
        converted["required"] = list(schema["required"])
    return converted


# --- the checker ---------------------------------------------------------------------------------


def check_calls(case: BfclCase, calls: list[tuple[str, object]]) -> CallVerdict:
    """Judge a model's calls (name, parsed arguments) against the case, as BFCL's AST checker does."""
    if not isinstance(calls, list | tuple):
        return CallVerdict(False, "The calls are not a list.")
    if case.ground_truth is None:
        if calls:
            return CallVerdict(False, f"Irrelevant request: expected no call, got {len(calls)}.")
        return CallVerdict(True, "")
    expected = case.ground_truth
    if len(calls) != len(expected):
        return CallVerdict(False, f"Expected {_calls(len(expected))}, got {len(calls)}.")
    schemas = {
        case.names.get(tool["function"]["name"], tool["function"]["name"]): tool["function"]["parameters"]
        for tool in case.tools
    }
    if case.category in PARALLEL_CATEGORIES:
        reason = _match_any_order(list(calls), expected, schemas, case.names)
    else:
        reason = _match_in_order(list(calls), expected, schemas, case.names)
    return CallVerdict(not reason, reason)


def _calls(count: int) -> str:
    return "1 call" if count == 1 else f"{count} calls"


def _match_in_order(calls: list[Any], expected: list[dict[str, Any]], schemas: dict, names: dict) -> str:
    for position, (call, expected_call) in enumerate(zip(calls, expected, strict=True), start=1):
        reason = _check_call(call, expected_call, schemas, names)
        if reason:
            return reason if len(expected) == 1 else f"Call {position}: {reason}"
    return ""


def _match_any_order(calls: list[Any], expected: list[dict[str, Any]], schemas: dict, names: dict) -> str:
    """BFCL's greedy matching: each expected call takes the first unused call that passes."""
    unused = list(range(len(calls)))
    for expected_call in expected:
        match = next((i for i in unused if not _check_call(calls[i], expected_call, schemas, names)), None)
        if match is None:
            return _no_match(expected_call, [calls[i] for i in unused], schemas, names)
        unused.remove(match)
    return ""


def _no_match(expected_call: dict[str, Any], candidates: list[Any], schemas: dict, names: dict) -> str:
    name = next(iter(expected_call))
    same_name = [call for call in candidates if _called_name(call, names) == name]
    if not same_name:
        return f"No call to {name}."
    return f"No call to {name} matches: {_check_call(same_name[0], expected_call, schemas, names)}"


def _called_name(call: Any, names: dict[str, str]) -> str | None:
    """BFCL's name for the function a call names (offered or original spelling); None if it names none."""
    if not (isinstance(call, list | tuple) and len(call) == 2 and isinstance(call[0], str)):
        return None
    return names.get(call[0], call[0])


def _check_call(call: Any, expected_call: dict[str, Any], schemas: dict, names: dict) -> str:
    """Why one call does not match one expected call ("" when it does)."""
    if not (isinstance(call, list | tuple) and len(call) == 2):
        return "A call is not a (name, arguments) pair."
    name, arguments = call
    if not isinstance(name, str):
        return "The function name is not a string."
    ((expected_name, accepted),) = expected_call.items()
    if names.get(name, name) != expected_name:
        return f"Called {_clip(name)}, expected {expected_name}."
    if not isinstance(arguments, dict):
        return "The arguments are not an object."
    return _check_arguments(arguments, schemas.get(expected_name) or {}, accepted)


def _check_arguments(arguments: dict[Any, Any], parameters: dict[str, Any], accepted: dict[str, list]) -> str:
    properties = parameters.get("properties") or {}
    for param in parameters.get("required") or []:
        if param not in arguments:
            return f"Missing required argument {param!r}."
    for param, value in arguments.items():
        # BFCL also refuses an argument the schema offers when the answer does not list it.
        if param not in properties or param not in accepted:
            return f"Unexpected argument {_short(param)}."
        reason = _check_value(param, value, properties[param], accepted[param])
        if reason:
            return reason
    for param, values in accepted.items():
        if param not in arguments and "" not in values:
            return f"Missing argument {param!r}."
    return ""


def _check_value(param: str, value: Any, schema: dict[str, Any], accepted: list[Any]) -> str:
    json_type = schema.get("type")
    allowed = _PYTHON_TYPES.get(json_type)
    answer_type = next((type(answer) for answer in accepted if answer != ""), None)
    if allowed is not None and type(value) not in allowed and type(value) is not answer_type:
        return f"Argument {param!r}: {_short(value)} is not {_TYPE_WORDS[json_type]}."
    if allowed is not None and answer_type is not None and answer_type not in allowed:
        # The answer is written in another type than the schema's (BFCL's "variable" case, e.g. the string
        # "data['sales']" for an array): BFCL then only compares values.
        return _check_accepted(param, value, accepted)
    if json_type == "array":
        items = schema.get("items") or {}
        return _check_items(param, value, items, accepted) or _check_list(param, value, items, accepted)
    if json_type == "object":
        if any(isinstance(answer, dict) and _dict_matches(value, answer) for answer in accepted):
            return ""
        return _not_accepted(param, value)
    return _check_accepted(param, value, accepted)


def _check_items(param: str, value: list[Any], items: dict[str, Any], accepted: list[Any]) -> str:
    """Items are type-checked one level deep, as BFCL does; the answer's own item types pass too."""
    allowed = _PYTHON_TYPES.get(items.get("type"))
    if allowed is None:
        return ""
    answer_types = {type(item) for answer in accepted if isinstance(answer, list) for item in answer}
    for item in value:
        if type(item) not in allowed and type(item) not in answer_types:
            return f"Argument {param!r}: item {_short(item)} is not {_TYPE_WORDS[items['type']]}."
    return ""


def _check_list(param: str, value: list[Any], items: dict[str, Any], accepted: list[Any]) -> str:
    if items.get("type") != "object":
        return _check_accepted(param, value, accepted)
    # A list of objects: each accepted list holds, per object, the accepted values of each key.
    for answer in accepted:
        if isinstance(answer, list) and len(answer) == len(value):
            if all(isinstance(a, dict) and _dict_matches(v, a) for v, a in zip(value, answer, strict=True)):
                return ""
    return _not_accepted(param, value)


def _dict_matches(value: Any, answer: dict[str, Any]) -> bool:
    """BFCL's dict check: only the answer's keys, all of them unless `""` is accepted, each value accepted."""
    if not isinstance(value, dict) or any(key not in answer for key in value):
        return False
    if any(key not in value and "" not in values for key, values in answer.items()):
        return False
    return all(_is_accepted(item, answer[key]) for key, item in value.items())


def _check_accepted(param: str, value: Any, accepted: list[Any]) -> str:
    return "" if _is_accepted(value, accepted) else _not_accepted(param, value)


def _not_accepted(param: str, value: Any) -> str:
    return f"Argument {param!r}: {_short(value)} is not an accepted value."


def _is_accepted(value: Any, accepted: Any) -> bool:
    return isinstance(accepted, list) and any(_same(value, answer) for answer in accepted)


def _same(value: Any, answer: Any) -> bool:
    """Equal as BFCL compares: strings normalised, and (unlike Python) True is not 1. Recursion follows the
    answer, so it is as shallow as the data, however deep the model's value."""
    if isinstance(answer, str):
        return isinstance(value, str) and normalise_string(value) == normalise_string(answer)
    if isinstance(answer, bool) or isinstance(value, bool):
        return type(value) is type(answer) and value == answer
    if isinstance(answer, int | float):
        return type(value) in (int, float) and value == answer
    if isinstance(answer, list):
        return isinstance(value, list) and len(value) == len(answer) and all(map(_same, value, answer))
    if isinstance(answer, dict):
        return (
            isinstance(value, dict)
            and value.keys() == answer.keys()
            and all(_same(value[key], answer[key]) for key in answer)
        )
    return value is None and answer is None


def normalise_string(text: str) -> str:
    """BFCL's string normalisation: no spaces or `,./-_*^`, lower case, single quotes as double quotes."""
    return _IGNORED_IN_STRINGS.sub("", text).lower().replace("'", '"')


def _short(value: Any) -> str:
    try:
        return _REPR.repr(value)
    except ValueError:  # an int too long for str() (Python refuses beyond 4300 digits)
        return "a very long number"


def _clip(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."
