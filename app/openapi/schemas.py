"""OpenAPI schemas → self-contained JSON Schema (draft 2020-12) that tools and checks can use as they are.

Every `$ref` is inlined. A reference to a schema that is already being expanded (a recursive model such as
a tree `Node` whose `children` are `Node`s) is cut and replaced by an empty schema with a description, so
recursion ends. Swagger 2.0 and OpenAPI 3.0 dialects are translated: `nullable` / `x-nullable` become a
`"null"` type, boolean `exclusiveMinimum`/`exclusiveMaximum` become numbers, `type: file` becomes a binary
string. OpenAPI-only annotations (`xml`, `externalDocs`, `x-...`) and `$id`/`$schema`/`$anchor` are dropped.
In 3.1 the keywords beside a `$ref` apply too (merged in); in 2.0 and 3.0 they are ignored, as the
specifications say. The total size of the expansion is bounded, so shared references cannot blow up.
"""

from __future__ import annotations

import copy
from typing import Any

from app.openapi.errors import SpecError
from app.openapi.refs import lookup, ref_name

MAX_EXPANDED_NODES = 200_000
MAX_SCHEMA_DEPTH = 48
MAX_REF_HOPS = 32

_SCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_VALUES = (
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "additionalItems",
)
# Reference targets only (all references are inlined) or annotations that mean nothing to JSON Schema.
_DROPPED = frozenset(
    {
        "$id",
        "$schema",
        "$anchor",
        "$dynamicAnchor",
        "$dynamicRef",
        "$recursiveAnchor",
        "$recursiveRef",
        "$vocabulary",
        "$comment",
        "$defs",
        "definitions",
        "xml",
        "externalDocs",
        "discriminator",
        "nullable",
        "x-nullable",
    }
)


class SchemaExpander:
    """Expands schemas and follows references in one localised document; `spec_format` picks the dialect."""

    def __init__(self, doc: dict, spec_format: str, budget: int = MAX_EXPANDED_NODES) -> None:
        self.doc = doc
        self.spec_format = spec_format
        self.budget = budget

    def resolve(self, value: Any) -> Any:
        """Follow a chain of `$ref`s to a non-schema object (parameter, response, request body, path item)."""
        seen: list[str] = []
        while isinstance(value, dict) and isinstance(value.get("$ref"), str):
            ref = value["$ref"]
            if ref in seen or len(seen) >= MAX_REF_HOPS:
                raise SpecError(f"The references {' → '.join([*seen, ref])} go round in a circle.")
            seen.append(ref)
            value = lookup(self.doc, ref)
        return value

    def schema(self, schema: Any) -> dict | bool:
        """`schema` as self-contained JSON Schema 2020-12."""
        return self._expand(schema, (), 0)

    def _spend(self, nodes: int) -> None:
        self.budget -= nodes
        if self.budget < 0:
            raise SpecError(
                f"The schemas expand to more than {MAX_EXPANDED_NODES:,} nodes once their references are "
                "inlined; Toolsmith cannot turn a document this large into tools."
            )

    def _expand(self, node: Any, active: tuple[str, ...], depth: int) -> Any:
        # Every node costs, `true` and the cut-off stubs too: a list of a thousand `true`s referenced a
        # thousand times is a million nodes however cheap each one is.
        self._spend(1)
        if isinstance(node, bool):
            return node
        if not isinstance(node, dict):
            return {}
        if depth > MAX_SCHEMA_DEPTH:
            return {"description": "(nested too deeply; not expanded)"}
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref in active:
                return {"description": f"A {ref_name(ref)} (recursive; not expanded further)."}
            target = self._expand(lookup(self.doc, ref), (*active, ref), depth + 1)
            siblings = {key: value for key, value in node.items() if key != "$ref"}
            if self.spec_format != "openapi-3.1" or not siblings or isinstance(target, bool):
                return target
            return _merge(target, self._expand(siblings, active, depth))
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _DROPPED or key.startswith("x-") or key == "$ref":
                continue
            if key in _SCHEMA_MAPS and isinstance(value, dict):
                out[key] = {name: self._expand(sub, active, depth + 1) for name, sub in value.items()}
            elif key in _SCHEMA_LISTS and isinstance(value, list):
                out[key] = [self._expand(sub, active, depth + 1) for sub in value]
            elif key in _SCHEMA_VALUES and isinstance(value, dict | bool):
                out[key] = self._expand(value, active, depth + 1)
            elif key == "items" and isinstance(value, list):  # draft 4 tuple form
                out["prefixItems"] = [self._expand(sub, active, depth + 1) for sub in value]
            else:
                self._spend(_size(value))
                out[key] = copy.deepcopy(value)
        if self.spec_format != "openapi-3.1":
            _translate_dialect(node, out)
        return out


def without_read_only(schema: Any) -> Any:
    """A request body's schema without its `readOnly` properties (an `id` the server assigns): OpenAPI
    says they are not sent in requests, and that `required` on them applies to responses only. So a
    tool's arguments leave them out, and a call without them is not "missing" anything."""
    if isinstance(schema, list):
        return [without_read_only(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    properties = out.get("properties")
    if isinstance(properties, dict):
        kept = {
            name: without_read_only(sub)
            for name, sub in properties.items()
            if not (isinstance(sub, dict) and sub.get("readOnly") is True)
        }
        if isinstance(out.get("required"), list):
            out["required"] = [
                name for name in out["required"] if not (name in properties and name not in kept)
            ]
            if not out["required"]:
                del out["required"]
        out["properties"] = kept
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = without_read_only(out[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(out.get(key), list):
            out[key] = without_read_only(out[key])
    return out


def _translate_dialect(source: dict, out: dict) -> None:
    """Swagger 2.0 / OpenAPI 3.0 keywords → their JSON Schema 2020-12 meaning, in place on `out`."""
    if out.get("type") == "file":
        out["type"] = "string"
        out["format"] = "binary"
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        flag = out.get(exclusive)
        if isinstance(flag, bool):
            del out[exclusive]
            if flag and isinstance(out.get(bound), int | float):
                out[exclusive] = out.pop(bound)
    if source.get("nullable") is True or source.get("x-nullable") is True:
        kind = out.get("type")
        if isinstance(kind, str) and kind != "null":
            out["type"] = [kind, "null"]
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]


def _merge(base: Any, extra: dict) -> dict:
    """3.1 `$ref` with siblings: both apply. `required` and `properties` combine; other keywords override."""
    merged = dict(base) if isinstance(base, dict) else {}
    for key, value in extra.items():
        if key == "required" and isinstance(value, list) and isinstance(merged.get(key), list):
            merged[key] = list(dict.fromkeys([*merged[key], *value]))
        elif key == "properties" and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _size(value: Any) -> int:
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count
