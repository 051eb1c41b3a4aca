"""A Swagger 2.0 / OpenAPI 3.0 / 3.1 document → one flat, version-free list of operations.

Path-level parameters are merged into each operation (the operation's own win by name and location),
Swagger 2.0 `in: body` and `in: formData` parameters become a request body, every schema is self-contained
JSON Schema 2020-12 (see `schemas.py`), and each operation gets a unique id usable as a tool name. The
result is plain data (`to_dict` / `from_dict`) so it can be stored in a JSON column.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from app.openapi.parsing import detect_version
from app.openapi.refs import localise
from app.openapi.schemas import SchemaExpander, without_read_only

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
LOCATIONS = ("path", "query", "header", "cookie")
OPERATION_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
FORMAT_VERSION = 1
# OpenAPI 3 says these header parameters are ignored: HTTP itself carries them.
_IGNORED_HEADERS = frozenset({"accept", "content-type", "authorization"})
_SWAGGER_SCHEMA_KEYS = (
    "type",
    "format",
    "items",
    "enum",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "x-nullable",
    "example",
)
_JSON_FIRST = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")


@dataclass
class Parameter:
    """A path, query, header or cookie parameter; `explode` False means arrays are sent comma-separated."""

    name: str
    location: str
    required: bool
    schema: dict[str, Any]
    description: str = ""
    explode: bool = True
    # How the value is written (OpenAPI 3 `style`): "form" (query: an object's properties become keys of
    # their own when exploded, `name=k1,v1,k2,v2` when not), "deepObject" (`name[key]=value`),
    # "spaceDelimited" / "pipeDelimited" (arrays), "simple" (path, header), or "json" (a `content`
    # parameter: the value as JSON text).
    style: str = "form"


@dataclass
class BodySpec:
    """The request body: the media type tools use, its schema, and every media type the operation accepts."""

    media_type: str
    schema: dict[str, Any] | bool
    required: bool
    description: str = ""
    media_types: list[str] = field(default_factory=list)


@dataclass
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str = ""
    description: str = ""
    tags: list[str] = field(default_factory=list)
    parameters: list[Parameter] = field(default_factory=list)
    request_body: BodySpec | None = None
    responses: dict[str, str] = field(default_factory=dict)
    deprecated: bool = False
    # The operation's own base URLs (OpenAPI 3 `servers` on the operation or its path item), which
    # replace the document's; empty when it has none.
    servers: list[str] = field(default_factory=list)


@dataclass
class NormalisedSpec:
    title: str
    version: str
    spec_format: str
    base_urls: list[str]
    operations: list[Operation]
    message: str | None = None

    def operation(self, operation_id: str) -> Operation | None:
        """The operation with this id (tool name), if any."""
        return next((op for op in self.operations if op.operation_id == operation_id), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data; `from_dict` reads it back."""
        return {"format_version": FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NormalisedSpec:
        operations = []
        for op in data.get("operations", []):
            body = op.get("request_body")
            operations.append(
                Operation(
                    **{key: value for key, value in op.items() if key not in ("parameters", "request_body")},
                    parameters=[Parameter(**parameter) for parameter in op.get("parameters", [])],
                    request_body=BodySpec(**body) if body else None,
                )
            )
        fields = {key: data[key] for key in ("title", "version", "spec_format", "base_urls")}
        return cls(**fields, operations=operations, message=data.get("message"))


def normalise(doc: dict) -> NormalisedSpec:
    """A loaded (and validated) document → `NormalisedSpec`; `SpecError` for what cannot be used."""
    kind, version = detect_version(doc)
    spec_format = "swagger-2.0" if kind == "swagger" else "openapi-" + version[:3]
    doc = localise(doc)
    expander = SchemaExpander(doc, spec_format)
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    paths = doc.get("paths") if isinstance(doc.get("paths"), dict) else {}
    operations: list[Operation] = []
    taken: set[str] = set()
    for path, raw_item in paths.items():
        item = expander.resolve(raw_item)
        if not isinstance(item, dict):
            continue
        shared = _raw_parameters(expander, item.get("parameters"))
        item_servers = _server_urls(item.get("servers")) if kind != "swagger" else []
        for method in [key for key in item if key.lower() in HTTP_METHODS]:
            raw = item[method]
            if isinstance(raw, dict):
                op = _operation(expander, doc, path, method.lower(), raw, shared, taken)
                if kind != "swagger":
                    op.servers = _server_urls(raw.get("servers")) or item_servers
                operations.append(op)
    message = None
    if not operations:
        webhooks = doc.get("webhooks") if isinstance(doc.get("webhooks"), dict) else {}
        what = "defines no paths" if not paths else "defines no operations under its paths"
        count = f" (it has {len(webhooks)} webhook{'s' if len(webhooks) != 1 else ''})" if webhooks else ""
        message = f"This document {what}{count}; there are no operations to turn into tools."
    return NormalisedSpec(
        title=_text(info.get("title")),
        version=_text(info.get("version")),
        spec_format=spec_format,
        base_urls=_base_urls(doc, kind),
        operations=operations,
        message=message,
    )


def _operation(
    expander: SchemaExpander,
    doc: dict,
    path: str,
    method: str,
    raw: dict,
    shared: list[dict],
    taken: set[str],
) -> Operation:
    merged: dict[tuple[str, str], dict] = {}
    for parameter in [*shared, *_raw_parameters(expander, raw.get("parameters"))]:
        merged[(str(parameter.get("name")), str(parameter.get("in")))] = parameter
    swagger = expander.spec_format == "swagger-2.0"
    parameters: list[Parameter] = []
    body: BodySpec | None = None
    form: list[dict] = []
    for parameter in merged.values():
        location = parameter.get("in")
        if swagger and location == "body":
            schema = without_read_only(expander.schema(parameter.get("schema", {})))
            media_types = _swagger_body_types(doc, raw)
            body = BodySpec(
                media_types[0],
                schema,
                bool(parameter.get("required")),
                _text(parameter.get("description")),
                media_types,
            )
        elif swagger and location == "formData":
            form.append(parameter)
        elif location in LOCATIONS:
            if (
                location == "header"
                and not swagger
                and str(parameter.get("name")).lower() in _IGNORED_HEADERS
            ):
                continue
            parameters.append(_parameter(expander, parameter, swagger))
    if form:
        body = _form_body(expander, doc, raw, form)
    elif not swagger and raw.get("requestBody") is not None:
        body = _request_body(expander, expander.resolve(raw["requestBody"]))
    return Operation(
        method=method,
        path=path,
        operation_id=_unique_id(raw.get("operationId"), method, path, taken),
        summary=_text(raw.get("summary")).strip(),
        description=_text(raw.get("description")).strip(),
        tags=[str(tag) for tag in raw.get("tags", []) if isinstance(tag, str | int)]
        if isinstance(raw.get("tags"), list)
        else [],
        parameters=parameters,
        request_body=body,
        responses=_responses(expander, raw.get("responses")),
        deprecated=raw.get("deprecated") is True,
    )


_STYLES = ("form", "simple", "deepObject", "spaceDelimited", "pipeDelimited", "label", "matrix")
# Swagger 2.0's `tsv` has no OpenAPI 3 style: "tabDelimited" is this module's name for it.
_SWAGGER_STYLES = {"ssv": "spaceDelimited", "pipes": "pipeDelimited", "tsv": "tabDelimited"}


def _raw_parameters(expander: SchemaExpander, value: Any) -> list[dict]:
    if not isinstance(value, list):
        return []
    resolved = [expander.resolve(parameter) for parameter in value]
    return [parameter for parameter in resolved if isinstance(parameter, dict) and "name" in parameter]


def _parameter(expander: SchemaExpander, raw: dict, swagger: bool) -> Parameter:
    location = raw["in"]
    default_style = "form" if location in ("query", "cookie") else "simple"
    if swagger:
        source = {key: raw[key] for key in _SWAGGER_SCHEMA_KEYS if key in raw}
        explode = raw.get("collectionFormat") == "multi"
        style = _SWAGGER_STYLES.get(raw.get("collectionFormat"), default_style)
    else:
        source = raw.get("schema")
        style = raw.get("style") if raw.get("style") in _STYLES else default_style
        if source is None and isinstance(raw.get("content"), dict) and raw["content"]:
            media = next(iter(raw["content"].values()))
            source = media.get("schema") if isinstance(media, dict) else None
            style = "json"
        explode = raw.get("explode", style == "form") is True
    schema = expander.schema(source if source is not None else {})
    schema = schema if isinstance(schema, dict) else {}
    if not swagger and "example" in raw and "example" not in schema:
        schema = {**schema, "example": raw["example"]}
    return Parameter(
        name=str(raw["name"]),
        location=location,
        required=location == "path" or raw.get("required") is True,
        schema=schema,
        description=_text(raw.get("description")).strip(),
        explode=explode,
        style=style,
    )


def _swagger_body_types(doc: dict, raw: dict) -> list[str]:
    """The media types a Swagger 2.0 body may be sent as (`consumes`, the operation's or the document's),
    JSON first when it is one of them; JSON when none is given."""
    consumes = raw.get("consumes", doc.get("consumes")) or []
    consumes = (
        [str(media) for media in consumes if isinstance(media, str)] if isinstance(consumes, list) else []
    )
    json_like = [media for media in consumes if media.split(";")[0].strip().lower().endswith("json")]
    ordered = json_like + [media for media in consumes if media not in json_like]
    return ordered or ["application/json"]


def _form_body(expander: SchemaExpander, doc: dict, raw: dict, form: list[dict]) -> BodySpec:
    consumes = raw.get("consumes", doc.get("consumes")) or []
    consumes = [str(media) for media in consumes] if isinstance(consumes, list) else []
    has_file = any(parameter.get("type") == "file" for parameter in form)
    multipart = has_file or (
        "multipart/form-data" in consumes and "application/x-www-form-urlencoded" not in consumes
    )
    properties = {}
    for parameter in form:
        schema = _parameter(expander, {**parameter, "in": "query"}, swagger=True).schema
        if parameter.get("description") and "description" not in schema:
            schema = {**schema, "description": _text(parameter["description"]).strip()}
        properties[str(parameter["name"])] = schema
    required = [str(parameter["name"]) for parameter in form if parameter.get("required") is True]
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    media_type = "multipart/form-data" if multipart else "application/x-www-form-urlencoded"
    return BodySpec(media_type, schema, bool(required), "", [media_type])


def _request_body(expander: SchemaExpander, raw: Any) -> BodySpec | None:
    if not isinstance(raw, dict):
        return None
    content = raw.get("content") if isinstance(raw.get("content"), dict) else {}
    media_types = [str(media) for media in content]
    if not media_types:
        return None
    preferred = [media for media in _JSON_FIRST if media in content]
    json_like = [media for media in media_types if media.split(";")[0].strip().endswith("+json")]
    media_type = (preferred or json_like or media_types)[0]
    media = content[media_type] if isinstance(content[media_type], dict) else {}
    schema = without_read_only(expander.schema(media.get("schema", {})))
    if isinstance(schema, dict) and "example" in media and "example" not in schema:
        schema = {**schema, "example": media["example"]}
    return BodySpec(
        media_type, schema, raw.get("required") is True, _text(raw.get("description")).strip(), media_types
    )


def _responses(expander: SchemaExpander, raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    responses = {}
    for code, response in raw.items():
        if str(code).startswith("x-"):
            continue
        resolved = expander.resolve(response)
        responses[str(code)] = (
            _text(resolved.get("description")).strip() if isinstance(resolved, dict) else ""
        )
    return responses


def _base_urls(doc: dict, kind: str) -> list[str]:
    if kind == "swagger":
        host = _text(doc.get("host")).strip().rstrip("/")
        base_path = _text(doc.get("basePath")).strip().rstrip("/")
        if base_path and not base_path.startswith("/"):
            base_path = "/" + base_path
        if not host:
            return [base_path] if base_path else []
        schemes = doc.get("schemes") if isinstance(doc.get("schemes"), list) else None
        return [f"{scheme}://{host}{base_path}" for scheme in (schemes or ["https"])]
    return _server_urls(doc.get("servers"))


def _server_urls(servers: Any) -> list[str]:
    """An OpenAPI 3 `servers` list → its URLs, each variable replaced by its default."""
    urls: list[str] = []
    for server in servers if isinstance(servers, list) else []:
        if not isinstance(server, dict) or not isinstance(server.get("url"), str):
            continue
        url = server["url"].strip()
        variables = server.get("variables") if isinstance(server.get("variables"), dict) else {}
        for name, variable in variables.items():
            if isinstance(variable, dict) and "default" in variable:
                url = url.replace("{" + str(name) + "}", _text(variable["default"]))
        url = url.rstrip("/") or "/"
        if url not in urls:
            urls.append(url)
    return urls


def _unique_id(raw: Any, method: str, path: str, taken: set[str]) -> str:
    candidate = re.sub(r"[^a-zA-Z0-9_-]+", "_", _text(raw)).strip("_")[:64]
    if not candidate:
        words = re.findall(r"[a-zA-Z0-9]+", path.replace("{", " ").replace("}", " "))
        candidate = "_".join([method, *words] if words else [method, "root"])[:64]
    unique, number = candidate, 2
    while unique in taken:
        suffix = f"_{number}"
        unique, number = candidate[: 64 - len(suffix)] + suffix, number + 1
    taken.add(unique)
    return unique


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)
