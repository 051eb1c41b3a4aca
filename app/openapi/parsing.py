"""Read an uploaded OpenAPI document (JSON or YAML text) into plain JSON-compatible Python data.

Everything a user can upload is refused with a `SpecError` that says what is wrong and where: binary or
non-UTF-8 bytes, an empty file, JSON or YAML syntax errors (with line and column), a top level that is not a
mapping, absurd nesting, and YAML alias bombs ("billion laughs"). Aliases are checked on the composed node
graph before anything is built, so a bomb is refused in milliseconds instead of being expanded later by
whatever walks the data. YAML is read with a `yaml.SafeLoader` subclass: no Python objects, only data.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import yaml

from app.openapi.errors import SpecError

MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
MAX_ALIASES = 100
# Nodes that aliases may add on top of those written out; legitimate reuse stays far below this.
MAX_ALIAS_EXPANSION = 200_000
MAX_DEPTH = 200
SUPPORTED = "Toolsmith reads Swagger 2.0 and OpenAPI 3.0 and 3.1 documents."


def load_document(
    data: bytes | str, filename: str | None = None, max_bytes: int = MAX_DOCUMENT_BYTES
) -> dict:
    """Uploaded bytes or text → the document as a dict of plain JSON values; `SpecError` when unusable."""
    text = _decode(data, max_bytes)
    if not text.strip():
        raise SpecError("The file is empty.")
    name = (filename or "").lower()
    looks_like_json = name.endswith(".json") or (
        not name.endswith((".yaml", ".yml")) and text.lstrip()[:1] in ("{", "[")
    )
    try:
        if looks_like_json:
            try:
                document = _load_json(text)
            except SpecError:
                if name.endswith(".json"):
                    raise
                try:  # YAML flow style (`{a: 1}`) also starts with a brace
                    document = _load_yaml(text)
                except SpecError:
                    document = _load_json(text)  # report the JSON error: that is what the file looks like
        else:
            document = _load_yaml(text)
        document = _plain(document, 0)
    except RecursionError as exc:
        raise SpecError(f"The document is nested too deeply (more than {MAX_DEPTH} levels).") from exc
    if not isinstance(document, dict):
        raise SpecError(
            f"The top level of an OpenAPI document must be a mapping (an object), not {_kind(document)}."
        )
    return document


def detect_version(doc: dict) -> tuple[str, str]:
    """`("swagger", "2.0")`, or `("openapi", version)` for 3.0.x and 3.1.x; `SpecError` for anything else."""
    if "swagger" in doc:
        value = doc["swagger"]
        if isinstance(value, str) and value.strip() == "2.0":
            return "swagger", "2.0"
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise SpecError(
                f'The "swagger" field must be the text "2.0", not the number {value}; '
                'in YAML write swagger: "2.0" with the quotes.',
                "swagger",
            )
        raise SpecError(f"Swagger version {value!r} is not supported. {SUPPORTED}", "swagger")
    if "openapi" in doc:
        value = doc["openapi"]
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise SpecError(
                f'The "openapi" field must be text such as "3.0.3", not the number {value}; '
                'in YAML quote it: openapi: "3.0.3".',
                "openapi",
            )
        if isinstance(value, str) and value.strip().startswith(("3.0.", "3.1.")):
            return "openapi", value.strip()
        raise SpecError(f"OpenAPI version {value!r} is not supported. {SUPPORTED}", "openapi")
    raise SpecError(
        'This is not an OpenAPI document: it has neither an "openapi" nor a "swagger" field. ' + SUPPORTED
    )


def _decode(data: bytes | str, max_bytes: int) -> str:
    if isinstance(data, str):
        size = len(data.encode("utf-8", errors="surrogatepass"))
        text = data
    else:
        size = len(data)
        text = None
    if size > max_bytes:
        raise SpecError(
            f"The document is {size / 1024 / 1024:.1f} MB; the limit is {max_bytes // 1024 // 1024} MB."
        )
    if text is None:
        raw = bytes(data)
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise SpecError("The file is UTF-16 text; save it as UTF-8 and upload it again.")
        if b"\x00" in raw:
            raise SpecError("This looks like a binary file, not a JSON or YAML document.")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SpecError(
                f"The file is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                "upload a JSON or YAML document saved as UTF-8."
            ) from exc
    text = text.removeprefix("\ufeff")
    if "\x00" in text:
        raise SpecError("This looks like a binary file, not a JSON or YAML document.")
    return text


def _load_json(text: str) -> Any:
    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON value")

    try:
        return json.loads(text, parse_constant=refuse_constant)
    except json.JSONDecodeError as exc:
        # Python reports an unterminated string at the place it starts, which means the text ended first.
        truncated = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated")
        reason = exc.msg.removesuffix(" at").replace("starting", "starting here")
        hint = " (the file may be truncated)" if truncated else ""
        raise SpecError(
            f"Invalid JSON at line {exc.lineno}, column {exc.colno}: {reason}{hint}.",
            f"line {exc.lineno}, column {exc.colno}",
        ) from exc
    except ValueError as exc:  # NaN/Infinity, or an integer with thousands of digits
        raise SpecError(f"Invalid JSON: {exc}.") from exc


class _GuardedLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases and refuses a document whose aliases expand into too many nodes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.alias_count = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.alias_count += 1
            if self.alias_count > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise SpecError(
                    f"The YAML document uses more than {MAX_ALIASES} aliases (*name); "
                    "Toolsmith refuses it to stay safe from alias bombs.",
                    f"line {mark.line + 1}, column {mark.column + 1}",
                )
        return super().compose_node(parent, index)

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None and self.alias_count:
            _check_alias_expansion(node)
        return node

    def construct_yaml_timestamp(self, node: yaml.Node) -> Any:
        """A timestamp of no real date (2001-02-30, year 0) is a marked YAML error, not a bare ValueError."""
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a real date or time ({exc})", node.start_mark
            ) from exc


_GuardedLoader.add_constructor("tag:yaml.org,2002:timestamp", _GuardedLoader.construct_yaml_timestamp)


def _check_alias_expansion(root: yaml.Node) -> None:
    """Count the nodes the document would have once aliases are expanded, without expanding them."""
    sizes: dict[int, int] = {}
    written: set[int] = set()
    in_progress: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            in_progress.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            continue
        if key in sizes:
            continue
        if key in in_progress:
            mark = node.start_mark
            raise SpecError(
                "The YAML document contains an alias that refers to itself (a recursive structure).",
                f"line {mark.line + 1}, column {mark.column + 1}",
            )
        written.add(key)
        in_progress.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    expanded = sizes[id(root)]
    if expanded - len(written) > MAX_ALIAS_EXPANSION:
        raise SpecError(
            f"The YAML aliases in this document would expand it to {expanded:,} nodes; "
            'Toolsmith refuses it to stay safe from alias bombs ("billion laughs").'
        )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _load_yaml(text: str) -> Any:
    loader = _GuardedLoader(text)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "syntax error"
        if mark is None:
            raise SpecError(f"Invalid YAML: {problem}.") from exc
        where = f"line {mark.line + 1}, column {mark.column + 1}"
        raise SpecError(f"Invalid YAML at {where}: {problem}.", where) from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"Invalid YAML: {exc}.") from exc
    except (ValueError, OverflowError) as exc:  # any other value the safe constructors cannot build
        raise SpecError(f"Invalid YAML: {exc}.") from exc
    finally:
        loader.dispose()


def _plain(value: Any, depth: int) -> Any:
    """YAML extras → JSON values: keys become text, dates ISO strings; NaN, infinity and binary refused."""
    if depth > MAX_DEPTH:
        raise SpecError(f"The document is nested too deeply (more than {MAX_DEPTH} levels).")
    if isinstance(value, dict):
        return {_plain_key(key): _plain(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        items = sorted(value, key=repr) if isinstance(value, set) else value
        return [_plain(item, depth + 1) for item in items]
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(f"The document contains the number {value}, which JSON cannot represent.")
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        raise SpecError("The document contains binary data (!!binary), which an OpenAPI document cannot use.")
    return value


def _plain_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, dt.date | dt.datetime):
        return key.isoformat()
    if isinstance(key, str | int | float):
        return str(key)
    raise SpecError(f"The document uses {_kind(key)} as a mapping key; keys must be text.")


def _kind(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"
