"""Tool definitions a user pastes, and the calls a model makes against them, checked with JSON Schema.

`validate_tool_definitions` turns pasted JSON (OpenAI `{"type": "function", "function": {...}}` or bare
`{name, description, parameters}`) into OpenAI-shape tools plus messages that say where each problem is.
`check_tool_call` says what is wrong with one call (`CallIssue` kinds below), for the playground and for
evaluation. Both take any JSON value and never raise: a bad paste or a tiny model's odd call is an answer
to show, not a server error. Pure functions, no Flask.

An argument the schema does not declare counts as unexpected unless the schema allows extras
(`additionalProperties` true or a schema, or `patternProperties`): tool schemas rarely say
`additionalProperties: false`, yet a model that invents arguments has made a mistake.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal, get_args

from jsonschema import Draft202012Validator

from app.json_input import nesting_depth
from app.schema_check import PatternTimeout, SchemaValidator, pattern_search

MAX_TOOLS = 128
MAX_TOOLS_JSON_BYTES = 256 * 1024
# Real tool schemas stay within a dozen levels; the grammar builder and the schema checker recurse.
MAX_SCHEMA_DEPTH = 64
MAX_SCHEMA_ERRORS_PER_TOOL = 5
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
JSON_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")

IssueKind = Literal[
    "unknown_function",
    "missing_required",
    "wrong_type",
    "bad_enum",
    "bad_format",
    "unexpected_argument",
    "out_of_range",
    "invalid",
]
ISSUE_KINDS: tuple[IssueKind, ...] = get_args(IssueKind)

# jsonschema's `error.validator` (the keyword that failed) → what a user would call the mistake.
_KIND_BY_KEYWORD: dict[str, IssueKind] = {
    "required": "missing_required",
    "type": "wrong_type",
    "enum": "bad_enum",
    "const": "bad_enum",
    "format": "bad_format",
    "additionalProperties": "unexpected_argument",
    "unevaluatedProperties": "unexpected_argument",
    "minimum": "out_of_range",
    "maximum": "out_of_range",
    "exclusiveMinimum": "out_of_range",
    "exclusiveMaximum": "out_of_range",
    "multipleOf": "out_of_range",
    "minLength": "out_of_range",
    "maxLength": "out_of_range",
    "pattern": "out_of_range",
    "minItems": "out_of_range",
    "maxItems": "out_of_range",
}
# Keywords that combine or redirect subschemas: under them, properties may be declared elsewhere.
_OPEN_KEYWORDS = (
    "patternProperties",
    "unevaluatedProperties",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "$ref",
    "dependentSchemas",
    "if",
)
# Checks `parameters` against JSON Schema 2020-12 itself (with formats, so a bad `pattern` is caught).
_METASCHEMA = Draft202012Validator(
    Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
)


@dataclass(frozen=True)
class CallIssue:
    """One thing wrong with a call: `kind` (see `IssueKind`), the argument's dotted `path`, a sentence."""

    kind: IssueKind
    path: str
    message: str


HALF_A_PAIR = "Tool definitions hold half of a UTF-16 surrogate pair (a \\ud800-style escape), not text."


def validate_tool_definitions(data: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """Pasted tool definitions (parsed JSON) → (valid tools in the OpenAI shape, error messages)."""
    try:
        size = len(json.dumps(data, ensure_ascii=False).encode())
    except UnicodeEncodeError:
        return [], [HALF_A_PAIR]
    except (TypeError, ValueError, RecursionError):
        return [], ["Tool definitions must be plain JSON."]
    if size > MAX_TOOLS_JSON_BYTES:
        limit = MAX_TOOLS_JSON_BYTES // 1024
        return [], [f"Tool definitions are {size // 1024} KB; the limit is {limit} KB."]
    depth = nesting_depth(data)
    if depth > MAX_SCHEMA_DEPTH:
        return [], [f"Tool definitions are nested {depth} levels deep; the limit is {MAX_SCHEMA_DEPTH}."]
    items = [data] if isinstance(data, dict) else data
    if not isinstance(items, list):
        return [], ["Expected a list of tool definitions (or one definition), got " + json_kind(data) + "."]
    if not items:
        return [], ["The list of tool definitions is empty."]
    if len(items) > MAX_TOOLS:
        return [], [f"At most {MAX_TOOLS} tools can be offered at once (got {len(items)})."]

    tools: list[dict[str, Any]] = []
    errors: list[str] = []
    first_seen: dict[str, int] = {}
    for position, item in enumerate(items, start=1):
        tool, problems = _normalise_tool(item)
        name = tool["function"]["name"] if tool else _name_of(item)
        label = f"tool {position}" + (f" ({name})" if name else "")
        if tool and name in first_seen:
            problems.append(f"duplicate name (also tool {first_seen[name]})")
        elif name:
            first_seen[name] = position
        errors.extend(f"{label}: {problem}" for problem in problems)
        if tool and not problems:
            tools.append(tool)
    return tools, errors


def check_tool_call(tools: list[dict[str, Any]], name: Any, arguments: Any) -> list[CallIssue]:
    """What is wrong with calling `name(arguments)` against `tools` (either shape); empty when valid."""
    functions = _functions_by_name(tools)
    function = functions.get(name) if isinstance(name, str) else None
    if function is None:
        offered = ", ".join(sorted(functions)) or "none"
        return [CallIssue("unknown_function", "", f"No tool named {name!r} (offered: {offered}).")]
    if not isinstance(arguments, dict):
        return [CallIssue("wrong_type", "", f"Arguments must be an object, got {json_kind(arguments)}.")]
    parameters = function.get("parameters")
    schema = close_object_schemas(parameters if isinstance(parameters, dict) else {"type": "object"})
    issues: dict[tuple[str, str], CallIssue] = {}
    try:
        validator = SchemaValidator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        for error in validator.iter_errors(arguments):
            for issue in _issues_from(error):
                issues.setdefault((issue.kind, issue.path), issue)
    except Exception as exc:  # an unresolvable $ref, a bad regex, absurd nesting: in the tool, not the call
        return [CallIssue("invalid", "", f"The tool's schema cannot be checked: {exc}")]
    return sorted(issues.values(), key=lambda issue: (issue.path, issue.kind))


def call_problem_texts(tools: list[dict[str, Any]], name: Any, arguments: Any) -> list[str]:
    """`check_tool_call`'s issues as sentences that name the function and field: "get_weather unit: …"."""
    return [
        f"{name}{' ' + issue.path if issue.path else ''}: {issue.message}"
        for issue in check_tool_call(tools, name, arguments)
    ]


def call_is_valid(tools: list[dict[str, Any]], name: Any, arguments: Any) -> bool:
    """True when `check_tool_call` finds nothing wrong."""
    return not check_tool_call(tools, name, arguments)


def close_object_schemas(schema: dict[str, Any], _leave_open: bool = False) -> dict[str, Any]:
    """A copy of `schema` where object schemas that do not say otherwise reject undeclared properties.

    Left open: schemas that set `additionalProperties` themselves, and those whose properties may be
    declared elsewhere (`allOf`, `anyOf`, `oneOf`, `$ref`, `patternProperties`, ...), and the branches of
    an `anyOf` / `oneOf` beside `properties` (each branch sees only its own share of the object's
    properties). Used for checking calls and for grammars.
    """
    if not isinstance(schema, dict):
        return schema
    closed = dict(schema)
    properties = closed.get("properties")
    if isinstance(properties, dict):
        closed["properties"] = {key: close_object_schemas(value) for key, value in properties.items()}
        opened_by = {k for k in _OPEN_KEYWORDS if k in closed}
        if not _leave_open and "additionalProperties" not in closed:
            if not opened_by:
                closed["additionalProperties"] = False
            elif opened_by <= {"anyOf", "oneOf"}:
                # The branches declare the rest: 2020-12 counts what they evaluated as declared.
                closed["unevaluatedProperties"] = False
    for key in ("items", "additionalProperties"):
        if isinstance(closed.get(key), dict):
            closed[key] = close_object_schemas(closed[key])
    shares_properties = isinstance(properties, dict)
    for key in ("prefixItems", "anyOf", "oneOf"):
        if isinstance(closed.get(key), list):
            leave_open = shares_properties and key != "prefixItems"
            closed[key] = [close_object_schemas(item, leave_open) for item in closed[key]]
    return closed


def function_of(tool: Any) -> dict[str, Any] | None:
    """The function part of a tool in either shape (`{"type": "function", "function": f}` or bare `f`)."""
    if not isinstance(tool, dict):
        return None
    function = tool["function"] if "function" in tool else tool
    return function if isinstance(function, dict) else None


def _functions_by_name(tools: Any) -> dict[str, dict[str, Any]]:
    functions: dict[str, dict[str, Any]] = {}
    for tool in tools if isinstance(tools, list) else []:
        function = function_of(tool)
        if function is not None and isinstance(function.get("name"), str):
            functions.setdefault(function["name"], function)
    return functions


def _name_of(item: Any) -> str | None:
    function = function_of(item)
    name = function.get("name") if function is not None else None
    return name if isinstance(name, str) and TOOL_NAME.match(name) else None


def _normalise_tool(item: Any) -> tuple[dict[str, Any] | None, list[str]]:
    if not isinstance(item, dict):
        return None, [f"expected an object, got {json_kind(item)}"]
    if "type" in item and item["type"] != "function":
        return None, [f'type must be "function", got {_short(item["type"])}']
    function = function_of(item)
    if function is None:
        return None, [f"function must be an object, got {json_kind(item['function'])}"]

    problems: list[str] = []
    name = function.get("name")
    if name is None:
        problems.append("name is required")
    elif not isinstance(name, str) or not TOOL_NAME.match(name):
        problems.append(f"name {_short(name)} must be 1-64 letters, digits, '_' or '-'")
    description = function.get("description")
    if description is not None and not isinstance(description, str):
        problems.append(f"description must be a string, got {json_kind(description)}")
    parameters = function.get("parameters", {"type": "object", "properties": {}})
    problems.extend(_parameter_problems(parameters))
    if problems:
        return None, problems

    normalised: dict[str, Any] = {"name": name}
    if description is not None:
        normalised["description"] = description
    normalised["parameters"] = parameters
    if isinstance(function.get("strict"), bool):
        normalised["strict"] = function["strict"]
    return {"type": "function", "function": normalised}, []


def _parameter_problems(parameters: Any) -> list[str]:
    if not isinstance(parameters, dict):
        return [f"parameters must be a JSON Schema object, got {json_kind(parameters)}"]
    if parameters.get("type") != "object":
        return [f'parameters.type must be "object", got {_short(parameters.get("type"))}']
    try:
        schema_errors = sorted(
            _METASCHEMA.iter_errors(parameters), key=lambda e: [str(p) for p in e.absolute_path]
        )
        problems = [_schema_problem(error) for error in schema_errors[:MAX_SCHEMA_ERRORS_PER_TOOL]]
        if len(schema_errors) > MAX_SCHEMA_ERRORS_PER_TOOL:
            problems.append(f"... and {len(schema_errors) - MAX_SCHEMA_ERRORS_PER_TOOL} more schema errors")
        if not problems:
            problems = _undeclared_required(parameters, "parameters")
    except RecursionError:
        problems = ["parameters are nested too deeply"]
    return problems


def _schema_problem(error: Any) -> str:
    path = _dotted(["parameters", *error.absolute_path])
    if error.absolute_path and error.absolute_path[-1] == "type" and error.validator == "anyOf":
        return f"{path}: {_short(error.instance)} is not a JSON Schema type ({', '.join(JSON_TYPES)})"
    return f"{path}: {error.message}"


def _undeclared_required(schema: Any, path: str) -> list[str]:
    """`required` names that no `properties` entry declares, in this object schema and those nested in it."""
    if not isinstance(schema, dict):
        return []
    problems: list[str] = []
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    extras_allowed = schema.get("additionalProperties", False) is not False or any(
        k in schema for k in (*_OPEN_KEYWORDS, "anyOf", "oneOf")
    )
    required = schema.get("required")
    if isinstance(required, list) and not extras_allowed:
        problems.extend(
            f"{path}.required: {entry!r} is not in properties"
            for entry in required
            if isinstance(entry, str) and entry not in properties
        )
    for key, value in properties.items():
        problems.extend(_undeclared_required(value, f"{path}.properties.{key}"))
    if isinstance(schema.get("items"), dict):
        problems.extend(_undeclared_required(schema["items"], f"{path}.items"))
    return problems


def _issues_from(error: Any) -> list[CallIssue]:
    kind = _KIND_BY_KEYWORD.get(error.validator, "invalid")
    path = list(error.absolute_path)
    if kind == "missing_required" and isinstance(error.instance, dict):
        missing = [n for n in error.validator_value if isinstance(n, str) and n not in error.instance]
        return [CallIssue(kind, _dotted([*path, n]), f"Missing required argument {n!r}.") for n in missing]
    if kind == "unexpected_argument" and isinstance(error.instance, dict):
        declared = dict(error.schema.get("properties") or {})
        if error.validator == "unevaluatedProperties":  # what the branches declare counts too
            for key in ("anyOf", "oneOf"):
                for branch in error.schema.get(key) or []:
                    if isinstance(branch, dict) and isinstance(branch.get("properties"), dict):
                        declared.update(branch["properties"])
        patterns = list((error.schema.get("patternProperties") or {}).keys())
        extras = [k for k in error.instance if k not in declared and not _matches_any(patterns, k)]
        return [CallIssue(kind, _dotted([*path, k]), f"Unexpected argument {k!r}.") for k in extras]
    return [CallIssue(kind, _dotted(path), error.message)]


def _matches_any(patterns: list[str], key: str) -> bool:
    try:
        return any(pattern_search(pattern, key) for pattern in patterns)
    except (PatternTimeout, re.error):
        return False


def _dotted(parts: list[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def json_kind(value: Any) -> str:
    """A JSON value's kind as a user would say it ("a string", "a list", "null")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
