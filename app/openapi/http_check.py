"""Check an HTTP request (or a model's tool call) against a normalised spec, as a fixed checklist.

The six checks always come in the same order, each exactly once, so a UI can show them as a list:
`operation_exists`, `method_matches`, `required_parameters`, `parameter_values`, `body_schema`,
`no_unknown_parameters`. When there is no operation to check against, the later checks are reported as
not ok and `skipped`, with a detail that starts with "skipped:". A missing required body is reported by
`required_parameters` alone; `body_schema` then has nothing to check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from app.json_input import loads as loads_json
from app.openapi.errors import SpecError, UnknownOperation
from app.openapi.normalise import NormalisedSpec, Operation, Parameter
from app.openapi.path_styles import is_object, property_schema, read_styled
from app.openapi.query_text import ARRAY_DELIMITERS, parse_query, split_items
from app.openapi.tools import find_operation, tool_call_to_request
from app.openapi.values import from_text, scalar_from_text, schema_errors, value_types

CHECK_NAMES = (
    "operation_exists",
    "method_matches",
    "required_parameters",
    "parameter_values",
    "body_schema",
    "no_unknown_parameters",
)
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True)
class Check:
    """One line of the checklist; `skipped` when it could not run because an earlier check failed."""

    name: str
    ok: bool
    detail: str
    skipped: bool = False


def check_request(
    spec: NormalisedSpec,
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    body: Any = None,
    base_url: str | None = None,
) -> list[Check]:
    """Check one HTTP request. `url` may be absolute or a path; a base URL's path prefix is stripped."""
    parts = urlsplit(url)
    path = parts.path or "/"
    query = parse_query(parts.query)
    match = match_path(spec, path, base_url)
    if match is None:
        templates = sorted({op.path for op in spec.operations})
        shown = ", ".join(templates[:12]) + (", ..." if len(templates) > 12 else "")
        missing = Check("operation_exists", False, f"No path of the spec matches {path!r} (paths: {shown}).")
        return _skipping([missing], "skipped: no matching operation")
    template, path_values = match
    exists = Check("operation_exists", True, f"{path} matches {template}")
    candidates = [op for op in spec.operations if op.path == template]
    op = next((op for op in candidates if op.method == method.lower()), None)
    if op is None:
        allowed = ", ".join(op.method.upper() for op in candidates)
        wrong = Check(
            "method_matches", False, f"{method.upper()} is not allowed on {template}; allowed: {allowed}."
        )
        return _skipping([exists, wrong], "skipped: no operation for this method")
    matches = Check("method_matches", True, f"{method.upper()} {template} is {op.operation_id}")
    return [exists, matches, *_operation_checks(op, path_values, query, headers or {}, body)]


def check_tool_call(
    spec: NormalisedSpec, name: str, arguments: dict[str, Any] | str | None, base_url: str | None = None
) -> list[Check]:
    """Check a model's tool call: the request it stands for (`tool_call_to_request`) against the spec."""
    try:
        op = find_operation(spec, name)
    except UnknownOperation as exc:
        return _skipping([Check("operation_exists", False, exc.message)], "skipped: no matching operation")
    exists = Check("operation_exists", True, f"{name} is {op.method.upper()} {op.path}")
    method = Check("method_matches", True, f"{op.method.upper()} is the method of {name}")
    try:
        request = tool_call_to_request(spec, name, arguments, base_url)
    except SpecError as exc:
        arguments_wrong = Check("required_parameters", False, exc.message)
        return _skipping([exists, method, arguments_wrong], "skipped: the arguments are not a JSON object")
    query = {key: value if isinstance(value, list) else [value] for key, value in request.query.items()}
    extra = {f"argument {key!r}" for key in request.extra_arguments}
    return [
        exists,
        method,
        # The call's body is already a JSON value: a string is the string, not JSON text to parse.
        *_operation_checks(
            op,
            request.path_segments,
            query,
            request.headers,
            request.body,
            extra,
            parsed=True,
            owners=request.query_owners,
        ),
    ]


def match_path(
    spec: NormalisedSpec, path: str, base_url: str | None = None
) -> tuple[str, dict[str, str]] | None:
    """The spec's path template that `path` matches (literal segments beat `{params}`) and the values."""
    servers = [base_url or "", *spec.base_urls, *(url for op in spec.operations for url in op.servers)]
    prefixes = {urlsplit(base).path.rstrip("/") for base in servers} - {""}
    candidates = [
        path[len(prefix) :] or "/"
        for prefix in sorted(prefixes, key=len, reverse=True)
        if path == prefix or path.startswith(prefix + "/")
    ]
    for candidate in [*candidates, path]:
        best: tuple[tuple[int, ...], str, dict[str, str]] | None = None
        for template in dict.fromkeys(op.path for op in spec.operations):
            found = _match_template(template, candidate)
            if found is not None and (best is None or found[0] > best[0]):
                best = (found[0], template, found[1])
        if best is not None:
            return best[1], best[2]
    return None


def _match_template(template: str, path: str) -> tuple[tuple[int, ...], dict[str, str]] | None:
    wanted = template.strip("/").split("/")
    given = path.strip("/").split("/")
    if len(wanted) != len(given):
        return None
    score: list[int] = []
    values: dict[str, str] = {}
    for pattern, segment in zip(wanted, given, strict=True):
        if "{" not in pattern:
            if unquote(segment) != pattern:
                return None
            score.append(1)
            continue
        regex = "".join(
            f"(?P<p{index}>[^/]+)" if piece.startswith("{") else re.escape(piece)
            for index, piece in enumerate(re.split(r"(\{[^}]*\})", pattern))
            if piece
        )
        found = re.fullmatch(regex, segment)
        if found is None:
            return None
        for index, piece in enumerate(re.split(r"(\{[^}]*\})", pattern)):
            if piece.startswith("{"):
                values[piece[1:-1]] = found[f"p{index}"]  # escaped: a style splits it, then unescapes
        score.append(0)
    return tuple(score), values


def _operation_checks(
    op: Operation,
    path_values: dict[str, str],
    query: dict[str, list[str]],
    headers: dict[str, str],
    body: Any,
    extra: set[str] | None = None,
    parsed: bool = False,
    owners: dict[str, list[str]] | None = None,
) -> list[Check]:
    header_values = {str(key).lower(): str(value) for key, value in headers.items()}
    shares = _shared_query_keys(op, query, owners)
    given: list[tuple[str, Any, Any]] = []  # (label, text, parameter)
    missing = []
    known: set[str] = set()  # the query keys the operation's parameters account for
    # Keys an exploded form object that declares no properties (only `additionalProperties`) may take:
    # those no other query parameter names, nor any declared property of another exploded object.
    named = {p.name for p in op.parameters if p.location == "query"}
    for other in op.parameters:
        declared = other.schema.get("properties") if other.location == "query" else None
        named |= set(declared) if isinstance(declared, dict) else set()
    for parameter in op.parameters:
        label = f"{parameter.location} parameter {parameter.name!r}"
        if parameter.location == "path":
            text = path_values.get(parameter.name)
        elif parameter.location == "query":
            text, keys = _query_text(parameter, shares.get(parameter.name, query), named)
            known |= keys
        elif parameter.location == "header":
            text = header_values.get(parameter.name.lower())
        else:
            continue
        if text is None:
            if parameter.required:
                missing.append(label)
        else:
            given.append((label, text, parameter))
    if op.request_body is not None and op.request_body.required and body is None:
        missing.append("the request body")
    required = (
        Check("required_parameters", False, "Missing: " + ", ".join(missing) + ".")
        if missing
        else Check("required_parameters", True, "Every required parameter is present.")
    )
    problems = []
    for label, text, parameter in given:
        if isinstance(text, list) and len(text) > 1 and "array" not in value_types(parameter.schema):
            problems.append(f"{label} is given {len(text)} times")
            continue
        if parameter.location == "path" and text == "":
            # `/items/{id}` with nothing for `id` is `/items/`: no URL of this operation carries it.
            problems.append(f"{label} is empty, and a path segment cannot be")
            continue
        if parameter.style == "json":  # a `content` parameter: one JSON text, commas and all
            value = scalar_from_text(text[0] if isinstance(text, list) else text, parameter.schema)
        elif isinstance(text, _Properties):
            # A property's array is one text joined by commas (`tools.query_items`), as in `q[tags]=1,2`.
            schema = parameter.schema
            value = {
                key: from_text(texts, property_schema(schema, key), explode=False)
                for key, texts in text.items()
            }
        elif parameter.location == "query" and is_object(parameter) and not parameter.explode:
            value = _unexploded_object(text, parameter.schema)
        elif parameter.location == "query":
            value = from_text(
                text, parameter.schema, parameter.explode, ARRAY_DELIMITERS.get(parameter.style, ",")
            )
        else:
            unescape = unquote if parameter.location == "path" else None
            value, style_problem = read_styled(parameter, text, unescape)
            if style_problem:
                problems.append(f"{label} {style_problem}")
                continue
        problems.extend(schema_errors(value, parameter.schema, label))
    values = (
        Check("parameter_values", False, "; ".join(problems) + ".")
        if problems
        else Check(
            "parameter_values", True, f"{len(given)} parameter value(s) valid." if given else "No parameters."
        )
    )
    unknown = sorted({f"query parameter {key!r}" for key in query if key not in known} | (extra or set()))
    unknown_check = (
        Check("no_unknown_parameters", False, "Not in the spec: " + ", ".join(unknown) + ".")
        if unknown
        else Check("no_unknown_parameters", True, "No unknown parameters.")
    )
    return [required, values, _body_check(op, header_values.get("content-type"), body, parsed), unknown_check]


def _shared_query_keys(
    op: Operation, query: dict[str, list[str]], owners: dict[str, list[str]] | None
) -> dict[str, dict[str, list[str]]]:
    """Each query parameter's own view of the query where a key is written by two of them (a property
    of an exploded form object named like another parameter, or like another object's property).

    With `owners` (a tool call: who wrote each value) each takes its own values. From a URL alone, as
    many values as parameters claiming the key go one each, in the parameters' order (the order a call
    writes them in); any other count stays shared, and each reads them all, as before.
    """
    claims: dict[str, list[str]] = {}
    repeated: set[str] = set()  # parameters that may write their key more than once (exploded arrays)
    for parameter in op.parameters:
        if parameter.location != "query" or parameter.style == "deepObject":
            continue
        declared = parameter.schema.get("properties") if is_object(parameter) and parameter.explode else None
        keys = list(declared) if isinstance(declared, dict) and declared else [parameter.name]
        for key in keys:
            claims.setdefault(key, []).append(parameter.name)
        if parameter.explode and "array" in value_types(parameter.schema):
            repeated.add(parameter.name)
    views: dict[str, dict[str, list[str]]] = {}
    for key, values in query.items():
        writers = (owners or {}).get(key)
        if writers is not None and len(writers) == len(values):
            claimants = list(dict.fromkeys([*claims.get(key, []), *writers]))
        else:
            claimants = claims.get(key, [])
            # One value each only when each claimant writes one: an exploded array may write several.
            one_each = len(values) == len(claimants) and not repeated & set(claimants)
            writers = claimants if one_each else None
        if len(claimants) < 2 or writers is None:
            continue
        for claimant in claimants:
            view = views.setdefault(claimant, dict(query))
            mine = [value for value, writer in zip(values, writers, strict=True) if writer == claimant]
            if mine:
                view[key] = mine
            else:
                view.pop(key, None)
    return views


class _Properties(dict):
    """An object parameter read back from query keys of its own: property → its texts."""


def _query_text(
    parameter: Parameter, query: dict[str, list[str]], named: frozenset[str] | set[str] = frozenset()
) -> tuple[Any, set[str]]:
    """A query parameter's texts as the request wrote them (None when absent), and the query keys they
    took: an object is read from `name[key]` keys (deepObject) or from its declared properties' own keys
    (form, exploded), as `tool_call_to_request` writes it; an object that declares none but allows
    others (`additionalProperties`) takes the keys no parameter or declared property names."""
    name = parameter.name
    if not is_object(parameter) or (parameter.style != "deepObject" and not parameter.explode):
        return query.get(name), {name}
    if parameter.style == "deepObject":
        keys = {key for key in query if key.startswith(name + "[") and key.endswith("]")}
        found = _Properties({key[len(name) + 1 : -1]: query[key] for key in keys})
    else:
        declared = parameter.schema.get("properties")
        if isinstance(declared, dict) and declared:
            keys = {key for key in query if key in declared}
        elif parameter.schema.get("additionalProperties", False) not in (False, None):
            keys = {key for key in query if key not in named and "[" not in key}
        else:
            keys = set()
        found = _Properties({key: query[key] for key in keys})
    if found:
        return found, keys
    return query.get(name), {name}  # the whole object as one value (JSON text): checked as such


def _unexploded_object(text: Any, schema: dict[str, Any]) -> Any:
    """`name=key1,value1,key2,value2` → the object (form style, not exploded); the text itself when it
    is not such a list (the schema check then names the problem)."""
    joined = text[0] if isinstance(text, list) and len(text) == 1 else text
    if not isinstance(joined, str):
        return joined
    parts = split_items(joined)
    if len(parts) % 2 or joined.lstrip().startswith("{"):
        return from_text(joined, schema)
    pairs = zip(parts[::2], parts[1::2], strict=True)
    return {key: from_text(value, property_schema(schema, key)) for key, value in pairs}


def _body_check(op: Operation, content_type: str | None, body: Any, parsed: bool = False) -> Check:
    spec_body = op.request_body
    if body is None:
        return Check("body_schema", True, "No body expected." if spec_body is None else "No body sent.")
    if spec_body is None:
        return Check(
            "body_schema", False, f"{op.method.upper()} {op.path} takes no request body, but one was sent."
        )
    media_type = spec_body.media_type
    if content_type:
        sent = content_type.split(";")[0].strip().lower()
        accepted = [media.split(";")[0].strip().lower() for media in spec_body.media_types]
        if not any(_media_matches(sent, media) for media in accepted):
            return Check(
                "body_schema", False, f"Content-Type {sent!r} is not accepted; use {', '.join(accepted)}."
            )
        media_type = next(
            (media for media in spec_body.media_types if _media_matches(sent, media.lower())), sent
        )
    base = media_type.split(";")[0].strip().lower()
    if not (base.endswith("json") or base == "*/*" or base in _FORM_TYPES) and isinstance(body, bytes | str):
        if isinstance(body, str) and "string" in value_types(spec_body.schema):
            # A text/plain (or XML, CSV…) body whose schema is a string: its length, pattern or enum
            # still hold, and the tool offered the model that same schema.
            errors = schema_errors(body, spec_body.schema, "body")
            if errors:
                return Check("body_schema", False, "; ".join(errors) + ".")
            return Check("body_schema", True, f"The {base} body matches its string schema.")
        return Check("body_schema", True, f"A {base} body is sent as it is; it has no JSON schema to check.")
    value, error = _parse_body(body, media_type, spec_body.schema, parsed)
    if error:
        return Check("body_schema", False, error)
    errors = schema_errors(value, spec_body.schema, "body")
    if errors:
        return Check("body_schema", False, "; ".join(errors) + ".")
    return Check("body_schema", True, f"The body matches the {media_type} schema.")


def _parse_body(body: Any, media_type: str, schema: Any, parsed: bool = False) -> tuple[Any, str | None]:
    base = media_type.split(";")[0].strip().lower()
    if isinstance(body, bytes | bytearray):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return body, None if "json" not in base else "The body is not UTF-8 text."
    if base in _FORM_TYPES:
        if isinstance(body, str):
            body = {
                key: values[0] if len(values) == 1 else values
                for key, values in parse_qs(body, keep_blank_values=True).items()
            }
        if isinstance(body, dict):
            properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
            body = {key: _form_value(value, properties.get(key, {})) for key, value in body.items()}
        return body, None
    if (base.endswith("json") or base == "*/*") and isinstance(body, str) and not parsed:
        try:
            return loads_json(body), None
        except ValueError as exc:
            return body, f"The body is not valid JSON: {exc}."
    return body, None


def _form_value(value: Any, schema: Any) -> Any:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return from_text(value, schema)
    return scalar_from_text(value, schema)


def _media_matches(sent: str, accepted: str) -> bool:
    if accepted in ("*/*", sent):
        return True
    return accepted.endswith("/*") and sent.startswith(accepted[:-1])


def _skipping(done: list[Check], reason: str) -> list[Check]:
    """`done`, then every later check as not ok and skipped, with `reason` as the detail."""
    names = {check.name for check in done}
    return [*done, *(Check(name, False, reason, skipped=True) for name in CHECK_NAMES if name not in names)]
