"""`$ref`s inside one OpenAPI document: which stay inside it, which point elsewhere, and where each lands.

Only references that land inside the document are usable: `#/components/...`, and in OpenAPI 3.1 also URIs
that name a schema's own `$id` (optionally with a `#/pointer` or `#anchor`), as code-first generators write
them. Anything else (another file, a URL) is external and refused: Toolsmith never fetches a document.
`localise` rewrites every usable reference into the plain `#/json/pointer` form that the validator and the
normaliser understand. A `$ref` anywhere in the document counts, even inside an example value: refusing a
rare false positive is better than handing the validator a URL it would try to fetch.

A `#...` reference inside a schema that has its own `$id` is tried against that schema first (JSON Schema's
rule) and then against the whole document (what most authors mean).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

from app.openapi.errors import SpecError, SpecProblem, format_location

# Stands for "this document" when relative `$id`s and `$ref`s are resolved; never fetched.
DOCUMENT_BASE = "https://document.toolsmith.invalid/openapi"

Location = tuple[str | int, ...]

# An array index in a JSON pointer: ASCII digits, no leading zero, short enough for int() ("²" is a
# digit to str.isdigit, and int() refuses strings of thousands of digits).
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]{0,17}")


@dataclass(frozen=True)
class RefSite:
    """One `$ref`: its text, where the object holding it sits, and the base URI in force there."""

    ref: str
    location: Location
    base: str


@dataclass
class RefIndex:
    """Every `$ref` in a document, with the `$id`s and `$anchor`s they may land on."""

    sites: list[RefSite] = field(default_factory=list)
    ids: dict[str, Location] = field(default_factory=dict)
    anchors: dict[tuple[str, str], Location] = field(default_factory=dict)


def index_refs(doc: Any) -> RefIndex:
    """Walk the document once (iteratively) and collect references, `$id`s and `$anchor`s."""
    index = RefIndex(ids={DOCUMENT_BASE: ()})
    stack: list[tuple[Any, Location, str]] = [(doc, (), DOCUMENT_BASE)]
    while stack:
        node, location, base = stack.pop()
        if isinstance(node, dict):
            joined = _join(base, node["$id"]) if isinstance(node.get("$id"), str) else None
            if joined is not None:  # a malformed `$id` names nothing: its subtree keeps the outer base
                base = urldefrag(joined)[0]
                index.ids.setdefault(base, location)
            if isinstance(node.get("$anchor"), str):
                index.anchors.setdefault((base, node["$anchor"]), location)
            if isinstance(node.get("$ref"), str):
                index.sites.append(RefSite(node["$ref"], location, base))
            stack.extend((value, (*location, key), base) for key, value in node.items())
        elif isinstance(node, list):
            stack.extend((value, (*location, position), base) for position, value in enumerate(node))
    index.sites.sort(key=lambda site: [str(part) for part in site.location])
    return index


def resolve_site(doc: Any, index: RefIndex, site: RefSite) -> Location | None:
    """Where `site` lands in the document, or None when it points outside it or at nothing."""
    ref = site.ref.strip()
    if ref.startswith("#"):
        fragment = ref[1:]
        if site.base != DOCUMENT_BASE:
            found = _in_resource(doc, index, site.base, fragment)
            if found is not None:
                return found
        return _in_resource(doc, index, DOCUMENT_BASE, fragment)
    joined = _join(site.base, ref)
    if joined is None:
        return None
    uri, fragment = urldefrag(joined)
    if uri not in index.ids:
        return None
    return _in_resource(doc, index, uri, fragment)


def is_external(index: RefIndex, site: RefSite) -> bool:
    """True when the reference names another document (a file or URL), not a place in this one."""
    ref = site.ref.strip()
    if ref.startswith("#"):
        return False
    joined = _join(site.base, ref)
    return joined is None or urldefrag(joined)[0] not in index.ids


def _join(base: str, ref: str) -> str | None:
    """`ref` read against `base`; None when it is no URL at all (`http://[bad` makes urljoin raise)."""
    try:
        return urljoin(base, ref)
    except ValueError:
        return None


def ref_problems(doc: Any, index: RefIndex | None = None) -> list[SpecProblem]:
    """External references (refused, never fetched) and references that point at nothing."""
    index = index or index_refs(doc)
    problems: list[SpecProblem] = []
    for site in index.sites:
        where = format_location(site.location)
        if is_external(index, site):
            problems.append(
                SpecProblem(
                    f"External reference {site.ref!r} at {where} is not supported: Toolsmith never fetches "
                    "other files or URLs. Only references inside the document (such as "
                    "'#/components/schemas/Pet') can be used; bundle the referenced file into this one.",
                    where,
                )
            )
        elif resolve_site(doc, index, site) is None:
            problems.append(
                SpecProblem(f"Reference {site.ref!r} at {where} points to nothing in this document.", where)
            )
    return problems or _empty_cycles(doc, index)


_REF_ONLY_KEYS = {"$ref", "description", "summary"}


def _empty_cycles(doc: Any, index: RefIndex) -> list[SpecProblem]:
    """References that only lead to each other (`Loop: {$ref: Loop}`): no schema is behind them, and
    following them never ends (the validator then reports the document as too deeply nested)."""
    leads_to: dict[Location, Location] = {}
    for site in index.sites:
        holder = get_at(doc, site.location)
        target = resolve_site(doc, index, site)
        if isinstance(holder, dict) and set(holder) <= _REF_ONLY_KEYS and target is not None:
            leads_to[site.location] = target
    problems: list[SpecProblem] = []
    walked: set[Location] = set()  # each reference is followed once, so a long chain stays linear
    for start in leads_to:
        path: list[Location] = []
        on_path: set[Location] = set()
        location = start
        while location in leads_to and location not in walked:
            walked.add(location)
            path.append(location)
            on_path.add(location)
            location = leads_to[location]
        if location in on_path:
            cycle = path[path.index(location) :]
            names = " → ".join(format_location(part) for part in [*cycle, location])
            message = f"The references {names} only lead to each other: no schema is behind them."
            problems.append(SpecProblem(message, format_location(location)))
    return problems


def localise(doc: dict) -> dict:
    """A copy of `doc` where every `$ref` is a `#/json/pointer`; `SpecError` for external or dangling ones."""
    index = index_refs(doc)
    problems = ref_problems(doc, index)
    if problems:
        raise SpecError(problems[0].message, problems[0].location)
    rewrites = []
    for site in index.sites:
        pointer = "#" + to_pointer(resolve_site(doc, index, site) or ())
        if site.ref != pointer:
            rewrites.append((site.location, pointer))
    if not rewrites:
        return doc
    result = copy.deepcopy(doc)
    for location, pointer in rewrites:
        holder = get_at(result, location)
        holder["$ref"] = pointer
    return result


def lookup(doc: Any, ref: str) -> Any:
    """The value a `#/json/pointer` reference names; `SpecError` if there is none or it is not local."""
    if not ref.startswith("#"):
        raise SpecError(f"Reference {ref!r} points outside the document.")
    location = from_pointer(doc, ref[1:])
    if location is None:
        raise SpecError(f"Reference {ref!r} points to nothing in this document.")
    return get_at(doc, location)


def ref_name(ref: str) -> str:
    """`#/components/schemas/Pet` → `Pet`."""
    return unquote(ref.rstrip("/").rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~")) or ref


def to_pointer(location: Location) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in location)


def from_pointer(doc: Any, pointer: str) -> Location | None:
    """The location a JSON pointer (with or without percent-encoding) names, or None."""
    for candidate in dict.fromkeys((pointer, unquote(pointer))):
        location = _walk_pointer(doc, candidate)
        if location is not None:
            return location
    return None


def get_at(doc: Any, location: Location) -> Any:
    node = doc
    for part in location:
        node = node[part]
    return node


def _in_resource(doc: Any, index: RefIndex, uri: str, fragment: str) -> Location | None:
    resource = index.ids.get(uri)
    if resource is None:
        return None
    if not fragment:
        return resource
    if fragment.startswith("/"):
        inner = from_pointer(get_at(doc, resource), fragment)
        return None if inner is None else (*resource, *inner)
    return index.anchors.get((uri, unquote(fragment)))


def _walk_pointer(doc: Any, pointer: str) -> Location | None:
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        return None
    node = doc
    location: list[str | int] = []
    for raw in pointer[1:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
            location.append(part)
        elif isinstance(node, list) and _ARRAY_INDEX.fullmatch(part) and int(part) < len(node):
            node = node[int(part)]
            location.append(int(part))
        else:
            return None
    return tuple(location)
