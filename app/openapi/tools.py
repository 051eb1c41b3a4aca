"""Operations → OpenAI-style function tools, and a model's tool call → the HTTP request it stands for.

Each path, query and header parameter becomes an argument named after it (cookie parameters are left out:
a browser sends those, not a model); the request body becomes one argument, `body` (or `request_body` when
a parameter is already called `body`). Two parameters with the same name in different places get the
place appended to the second one (`id_header`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from app.json_input import loads as loads_json
from app.openapi.errors import SpecError, UnknownOperation
from app.openapi.normalise import NormalisedSpec, Operation, Parameter
from app.openapi.path_styles import as_text, styled_text
from app.openapi.query_text import ARRAY_DELIMITERS, QueryText, encode_query

MAX_DESCRIPTION = 300
BODY = "body"


@dataclass
class HttpRequest:
    """One HTTP request: `url` is the base URL + `path` + query string; `path_params` as sent, in text,
    and `path_segments` as they appear in the URL (escaped).

    `extra_arguments` holds tool-call arguments that match no parameter; they are not sent.
    """

    method: str
    url: str
    path: str
    query: dict[str, str | list[str]]
    headers: dict[str, str]
    body: Any | None
    operation_id: str
    path_params: dict[str, str] = field(default_factory=dict)
    path_segments: dict[str, str] = field(default_factory=dict)
    extra_arguments: dict[str, Any] = field(default_factory=dict)
    # Which parameter wrote each value of a query key, in order: a key two parameters write (a property
    # of an exploded object named like another parameter) cannot be told apart from the URL alone.
    query_owners: dict[str, list[str]] = field(default_factory=dict)


def argument_names(op: Operation) -> list[tuple[str, Parameter | None]]:
    """The tool's argument names in order, each with its parameter (None for the request body)."""
    names: list[tuple[str, Parameter | None]] = []
    taken: set[str] = set()
    # Every parameter's own name is kept for it: a renamed one (`id_header`) must not take a later
    # parameter's literal name, nor two renamed ones the same name.
    literal = {parameter.name for parameter in op.parameters if parameter.location != "cookie"}
    for parameter in op.parameters:
        if parameter.location == "cookie":
            continue
        name = parameter.name
        if name in taken:
            base = name = f"{parameter.name}_{parameter.location}"
            counter = 2
            while name in taken or name in literal:
                name, counter = f"{base}_{counter}", counter + 1
        taken.add(name)
        names.append((name, parameter))
    if op.request_body is not None:
        name = BODY if BODY not in taken else "request_body"
        while name in taken:
            name += "_"
        names.append((name, None))
    return names


def operation_tool(op: Operation) -> dict[str, Any]:
    """The operation as `{"type": "function", "function": {name, description, parameters}}`."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, parameter in argument_names(op):
        if parameter is not None:
            schema, description, is_required = parameter.schema, parameter.description, parameter.required
        else:
            body = op.request_body
            assert body is not None
            schema, description, is_required = body.schema, body.description, body.required
        schema = dict(schema) if isinstance(schema, dict) else {}
        if description and "description" not in schema:
            schema["description"] = description
        properties[name] = schema
        if is_required:
            required.append(name)
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    return {
        "type": "function",
        "function": {"name": op.operation_id, "description": tool_description(op), "parameters": parameters},
    }


def spec_tools(spec: NormalisedSpec) -> list[dict[str, Any]]:
    """One tool per operation, in document order."""
    return [operation_tool(op) for op in spec.operations]


def tool_description(op: Operation) -> str:
    """Summary, else description, else `METHOD /path`; one line of at most ~300 characters."""
    text = re.sub(r"\s+", " ", op.summary or op.description).strip() or f"{op.method.upper()} {op.path}"
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1].rstrip() + "…"


def find_operation(spec: NormalisedSpec, name: str) -> Operation:
    """The operation a tool name stands for; `UnknownOperation` when there is none."""
    op = spec.operation(name) if isinstance(name, str) else None
    if op is None:
        known = ", ".join(op.operation_id for op in spec.operations[:20]) or "none"
        more = ", ..." if len(spec.operations) > 20 else ""
        raise UnknownOperation(f"The spec has no operation named {name!r} (known: {known}{more}).")
    return op


def tool_call_to_request(
    spec: NormalisedSpec, name: str, arguments: dict[str, Any] | str | None, base_url: str | None = None
) -> HttpRequest:
    """The HTTP request that calling tool `name` with `arguments` (a dict or JSON text) stands for.

    `base_url` defaults to the operation's first server, else the spec's. A missing path parameter
    stays as `{name}` in the URL.
    """
    op = find_operation(spec, name)
    if isinstance(arguments, str):
        try:
            arguments = loads_json(arguments) if arguments.strip() else {}
        except ValueError as exc:
            raise SpecError(f"The arguments of {name!r} are not valid JSON: {exc}.") from exc
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise SpecError(f"The arguments of {name!r} must be a JSON object, not {type(arguments).__name__}.")
    remaining = dict(arguments)
    path_params: dict[str, str] = {}
    in_url: dict[str, str] = {}  # the path values, escaped (a style's separators stay as they are)
    query: dict[str, str | list[str]] = {}
    owners: dict[str, list[str]] = {}
    headers: dict[str, str] = {}
    body = None
    for name_, parameter in argument_names(op):
        if name_ not in remaining:
            continue
        value = remaining.pop(name_)
        if parameter is None:
            body = value
            continue
        if value is None:
            continue
        if parameter.location == "path":
            path_params[parameter.name] = styled_text(parameter, value)
            in_url[parameter.name] = styled_text(parameter, value, _path_escape(parameter))
        elif parameter.location == "query":
            for key, texts in query_items(parameter, value).items():
                _add_query_values(query, owners, key, texts, parameter.name)
        elif parameter.location == "header":
            headers[parameter.name] = styled_text(parameter, value)
    if body is not None and op.request_body is not None:
        headers.setdefault("Content-Type", op.request_body.media_type)
    path = re.sub(
        r"\{([^}/]+)\}",
        lambda match: in_url.get(match[1], match[0]),
        op.path,
    )
    servers = op.servers or spec.base_urls
    base = (base_url if base_url is not None else (servers[0] if servers else "")).rstrip("/")
    encoded = encode_query(query)  # "" for an empty exploded array alone
    url = base + path + ("?" + encoded if encoded else "")
    return HttpRequest(
        method=op.method.upper(),
        url=url,
        path=path,
        query=query,
        headers=headers,
        body=body,
        operation_id=op.operation_id,
        query_owners=owners,
        path_params=path_params,
        path_segments=in_url,
        extra_arguments=remaining,
    )


def _path_escape(parameter: Parameter) -> Callable[[str], str]:
    """How each name and value of a path parameter is escaped: everything but unreserved characters,
    and `.` too in label style, where it separates the items (`.a.b`) and must not split `a.b`."""
    if parameter.style == "label":
        return lambda text: quote(text, safe="").replace(".", "%2E")
    return lambda text: quote(text, safe="")


def _add_query_values(
    query: dict[str, str | list[str]], owners: dict[str, list[str]], key: str, texts: Any, owner: str
) -> None:
    """Add a parameter's values under `key`, after any another parameter wrote there (not over them)."""
    new = texts if isinstance(texts, list) else [texts]
    if key in query:
        before = query[key]
        query[key] = [*(before if isinstance(before, list) else [before]), *new]
    else:
        query[key] = texts
    owners.setdefault(key, []).extend([owner] * len(new))


def query_items(parameter: Parameter, value: Any) -> dict[str, str | list[str]]:
    """A query parameter's value as query-string keys, as its OpenAPI style writes it: an array repeated
    (exploded) or joined; an object as `name[key]=value` (deepObject), as its own keys (form, exploded),
    as `name=key,value,...` (form) or as JSON text (a `content` parameter)."""
    name = parameter.name
    if parameter.style == "json":
        text = json.dumps(value, separators=(",", ":")) if isinstance(value, dict | list) else as_text(value)
        return {name: text}
    if isinstance(value, dict):
        if parameter.style == "deepObject":
            return {f"{name}[{key}]": _property_text(item) for key, item in value.items()}
        if parameter.explode:
            return {str(key): _property_text(item) for key, item in value.items()}
        pairs = [text for key, item in value.items() for text in (str(key), as_text(item, explode=False))]
        return {name: QueryText.joined(pairs)}
    if isinstance(value, list):
        if parameter.explode:
            return {name: [as_text(item) for item in value]}
        items = [as_text(item) for item in value]
        return {name: QueryText.joined(items, ARRAY_DELIMITERS.get(parameter.style, ","))}
    return {name: as_text(value, explode=False)}


def _property_text(value: Any) -> str:
    """A query object's property as one text; an array's items joined by commas (`q[tags]=1,2`)."""
    if isinstance(value, list):
        return QueryText.joined([as_text(item) for item in value])
    return as_text(value, explode=False)
