"""Parameter values as they travel (text in a URL, a header or a form) → typed JSON values, and checking them.

Text is converted by the schema's type (`"42"` → 42 for an integer, `"true"` → True for a boolean); text
that does not convert is left as it is, so JSON Schema reports the wrong type in its own words. Formats are
asserted, OpenAPI's own ones included: int32/int64 ranges, uri, email, uuid, date, date-time, byte.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import urlsplit

from jsonschema import FormatChecker
from jsonschema.exceptions import ValidationError, relevance

from app.json_input import loads as loads_json
from app.openapi.query_text import split_items
from app.schema_check import SchemaValidator

FORMATS = FormatChecker()
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*")


@FORMATS.checks("int32")
def _is_int32(value: object) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or -(2**31) <= value < 2**31


@FORMATS.checks("int64")
def _is_int64(value: object) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or -(2**63) <= value < 2**63


@FORMATS.checks("email")
def _is_email(value: object) -> bool:
    return not isinstance(value, str) or bool(_EMAIL.fullmatch(value))


@FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if any(character.isspace() for character in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return bool(_SCHEME.fullmatch(parts.scheme)) and bool(parts.netloc or parts.path)


@FORMATS.checks("byte")
def _is_base64(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def types_of(schema: Any) -> list[str]:
    """The JSON types a schema allows, as a list (`"integer"` → `["integer"]`, none → `[]`)."""
    kind = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(kind, str):
        return [kind]
    return [item for item in kind if isinstance(item, str)] if isinstance(kind, list) else []


_BRANCHES = ("allOf", "anyOf", "oneOf")


def value_types(schema: Any) -> list[str]:
    """`types_of`, or, for a schema without `type`, the types its `allOf` / `anyOf` / `oneOf` branches
    allow: OpenAPI 3.1 writes a nullable integer as `anyOf: [{type: integer}, {type: null}]`, and a
    `$ref` with a description beside it becomes `allOf: [{...}]`."""
    types = types_of(schema)
    if types or not isinstance(schema, dict):
        return types
    for key in _BRANCHES:
        branches = schema.get(key)
        for branch in branches if isinstance(branches, list) else []:
            types.extend(kind for kind in value_types(branch) if kind not in types)
    return types


def _array_items(schema: dict[str, Any]) -> Any:
    """The `items` schema of an array schema, or of the first array branch of one without `type`."""
    if isinstance(schema.get("items"), dict):
        return schema["items"]
    for key in _BRANCHES:
        branches = schema.get(key)
        for branch in branches if isinstance(branches, list) else []:
            if isinstance(branch, dict) and "array" in value_types(branch):
                return _array_items(branch)
    return {}


def from_text(value: str | list[str], schema: Any, explode: bool = True, delimiter: str = ",") -> Any:
    """A parameter's text (a list when repeated in the query string) → the value its schema describes.
    An array not exploded is one text, its items joined by `delimiter`."""
    types = value_types(schema)
    if "array" in types:
        items = _array_items(schema)
        texts = list(value) if isinstance(value, list) else [value]
        if not explode:
            texts = [part for text in texts for part in split_items(text, delimiter)]
        return [scalar_from_text(text, items) for text in texts]
    if isinstance(value, list):
        return scalar_from_text(value[0], schema) if len(value) == 1 else value
    return scalar_from_text(value, schema)


def scalar_from_text(text: Any, schema: Any) -> Any:
    """One text value → integer, number, boolean, null or object when the schema wants one of those."""
    if not isinstance(text, str):
        return text
    types = value_types(schema)
    if not types:
        return text
    if "string" not in types:
        return _converted(text, types)
    if types == ["string"] or not isinstance(schema, dict) or "type" in schema:
        return text
    # Branches of several types, text among them (`oneOf: [integer, {string, enum: [all]}]`): the text
    # as it is when the schema takes it, else the other types' reading of it.
    converted = _converted(text, [kind for kind in types if kind != "string"])
    try:
        text_fits = converted is text or SchemaValidator(schema, format_checker=FORMATS).is_valid(text)
    except Exception:  # a schema that cannot be checked: the check of the value says so
        return text
    return text if text_fits else converted


def _converted(text: str, types: list[str]) -> Any:
    try:  # int() refuses more than 4,300 digits (a tiny model's runaway "1111…"): then it stays text
        if "integer" in types and _INTEGER.fullmatch(text):
            return int(text)
        if "number" in types and _NUMBER.fullmatch(text):
            number = float(text)
            return int(number) if number.is_integer() and _INTEGER.fullmatch(text) else number
    except ValueError:
        return text
    if "boolean" in types and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if "null" in types and text in ("", "null"):
        return None
    if ("object" in types or "array" in types) and text.strip()[:1] in ("{", "["):
        try:
            return loads_json(text)
        except ValueError:
            return text
    return text


def schema_errors(value: Any, schema: Any, label: str = "value", limit: int = 3) -> list[str]:
    """What is wrong with `value` (called `label`) under `schema`, JSON Schema 2020-12 with formats.

    Most relevant first, each as "label.field[0]: message".
    """
    if not isinstance(schema, dict | bool):
        return []
    try:
        errors = sorted(SchemaValidator(schema, format_checker=FORMATS).iter_errors(value), key=relevance)
    except Exception as exc:  # a bad regex or an odd keyword: the spec's fault, said plainly
        return [f"{label}: the spec's schema cannot be used to check it ({type(exc).__name__}: {exc})"]
    return [_describe(error, label) for error in errors[:limit]]


def _describe(error: ValidationError, label: str) -> str:
    message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
    if error.validator == "format":
        message = f"{_short(error.instance)} is not a valid {error.validator_value}"
    return f"{label}{error.json_path[1:]}: {message}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
