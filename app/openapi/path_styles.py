"""Path and header parameter values as their OpenAPI `style` writes them, and read back.

OpenAPI takes these from RFC 6570: `simple` (`3,4,5`; an object `role,admin,age,7`, exploded
`role=admin,age=7`), `label` (`.3,4,5`, exploded `.3.4.5`) and `matrix` (`;id=3,4,5`, exploded
`;id=3;id=4;id=5`; an exploded object `;role=admin;age=7`). Headers are always `simple`. A `content`
parameter (style "json") travels as JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from app.openapi.normalise import Parameter
from app.openapi.query_text import ARRAY_DELIMITERS
from app.openapi.values import from_text, scalar_from_text, value_types

PATH_STYLES = ("simple", "label", "matrix")


def _as_is(text: str) -> str:
    return text


def styled_text(parameter: Parameter, value: Any, encode: Callable[[str], str] = _as_is) -> str:
    """`value` as the parameter's style writes it; `encode` escapes each name and value (not the
    separators), so the same call gives the URL's text and the plain text."""
    if parameter.style == "json":
        return encode(as_text(value))
    style = parameter.style if parameter.style in PATH_STYLES and parameter.location == "path" else "simple"
    explode = parameter.explode
    if isinstance(value, dict):
        pairs = [(encode(str(key)), encode(as_text(item))) for key, item in value.items()]
        items = [f"{key}={item}" if explode else f"{key},{item}" for key, item in pairs]
    elif isinstance(value, list):
        items = [encode(as_text(item)) for item in value]
        if style == "simple" and parameter.style in ARRAY_DELIMITERS:
            return _array_separator(parameter, escaped=encode is not _as_is).join(items)
    else:
        items = [encode(as_text(value))]
    if style == "label":
        return "." + ("." if explode else ",").join(items)
    if style == "matrix":
        name = encode(parameter.name)
        if explode and isinstance(value, dict | list) and not items:
            return f";{name}"  # RFC 6570's empty list: the name alone
        if explode and isinstance(value, dict):
            return "".join(f";{item}" for item in items)
        if explode and isinstance(value, list):
            return "".join(f";{name}={item}" for item in items)
        return f";{name}=" + ",".join(items)
    return ",".join(items)


def read_styled(
    parameter: Parameter, text: str, unescape: Callable[[str], str] | None = None
) -> tuple[Any, str | None]:
    """A path or header text → the value its schema describes, or a problem when the text is not
    written in the parameter's style (a label value without its leading dot, say). `unescape` undoes
    the URL's escaping of each piece once the style's separators have split it."""
    unescape = unescape or _as_is
    if parameter.style == "json":
        return scalar_from_text(unescape(text), parameter.schema), None
    style = parameter.style if parameter.style in PATH_STYLES and parameter.location == "path" else "simple"
    if style == "matrix":
        parts, problem = _matrix_parts(parameter, text)
        if problem:
            return unescape(text), problem
    elif style == "label" and not text.startswith("."):
        return unescape(text), f"should start with '.' (label style), as in '.{unescape(text)}'"
    else:
        body = text[1:] if style == "label" else text
        separator = "." if style == "label" and parameter.explode else ","
        swagger_array = parameter.style in ARRAY_DELIMITERS and "array" in value_types(parameter.schema)
        if style == "simple" and swagger_array:
            separator = _array_separator(parameter, escaped=unescape is not _as_is)
        parts = body.split(separator) if body else []
    if "array" in value_types(parameter.schema):
        return from_text([unescape(part) for part in parts], parameter.schema), None
    if is_object(parameter):
        whole = unescape(text)
        if whole.lstrip().startswith("{"):  # JSON text, as calls were written before styles were
            return scalar_from_text(whole, parameter.schema), None
        return _object(parts, parameter.schema, parameter.explode, unescape), None
    return scalar_from_text(",".join(unescape(part) for part in parts), parameter.schema), None


def _array_separator(parameter: Parameter, escaped: bool) -> str:
    """The separator of a Swagger 2.0 path or header array (`collectionFormat` pipes, ssv or tsv): a pipe
    travels bare (an item's own is escaped), a space or tab escaped in a URL, like an item's own (so
    those stay ambiguous, as in the query)."""
    delimiter = ARRAY_DELIMITERS[parameter.style]
    if not escaped or delimiter == "|":
        return delimiter
    return "%20" if delimiter == " " else "%09"


def _matrix_parts(parameter: Parameter, text: str) -> tuple[list[str], str | None]:
    """`;id=3,4,5` → ["3", "4", "5"]; exploded `;id=3;id=4` → ["3", "4"], `;role=admin` → ["role=admin"]."""
    name = parameter.name
    if not text.startswith(";"):
        return [], f"should start with ';' (matrix style), as in ';{name}=…'"
    if unquote(text) == f";{name}" and parameter.explode:
        return [], None  # an empty list or object
    if parameter.explode and is_object(parameter):
        return text[1:].split(";"), None
    parts: list[str] = []
    for piece in text[1:].split(";") if parameter.explode else [text[1:]]:
        key, _, rest = piece.partition("=")
        if unquote(key) != name:
            return [], f"should be written ';{name}=…' (matrix style), not {unquote(text)!r}"
        if parameter.explode:
            parts.append(rest)
        else:
            parts.extend(rest.split(",") if rest else [])
    return parts, None


def _object(parts: list[str], schema: dict[str, Any], explode: bool, unescape: Callable[[str], str]) -> Any:
    """["role=admin", "age=7"] (exploded) or ["role", "admin", "age", "7"] → the object; the text
    itself when it is no such list (the schema check names the problem)."""
    if explode and all("=" in part for part in parts):
        pairs = [part.partition("=")[::2] for part in parts]
    elif not explode and len(parts) % 2 == 0:
        pairs = list(zip(parts[::2], parts[1::2], strict=True))
    else:
        return ",".join(unescape(part) for part in parts)
    return {
        unescape(key): scalar_from_text(unescape(value), property_schema(schema, unescape(key)))
        for key, value in pairs
    }


def property_schema(schema: dict[str, Any], key: str) -> Any:
    """The schema of an object's property `key`: declared, else `additionalProperties`, else any."""
    declared = schema.get("properties")
    if isinstance(declared, dict) and key in declared:
        return declared[key]
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, dict) else {}


def is_object(parameter: Parameter) -> bool:
    """Whether the parameter holds an object (not one sent as JSON text)."""
    types = value_types(parameter.schema)
    return "object" in types and "array" not in types and parameter.style != "json"


def as_text(value: Any, explode: bool = True) -> str:
    """A JSON value as it travels in a URL or header: booleans `true`/`false`, lists comma-separated."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, list) and not explode:
        return ",".join(as_text(item) for item in value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
