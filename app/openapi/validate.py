"""Check a loaded document against the OpenAPI specification with `openapi-spec-validator`.

References are checked first (external ones are refused by name and never fetched), then the validator runs
on a copy where every reference is a local `#/...` pointer. As a second guard its resolver gets handlers that
refuse every URI scheme, so even a reference this module missed could not make it touch the network.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

from jsonschema.exceptions import ValidationError, best_match
from openapi_spec_validator import (
    OpenAPIV2SpecValidator,
    OpenAPIV30SpecValidator,
    OpenAPIV31SpecValidator,
)
from openapi_spec_validator.validation.validators import SpecValidator

from app.openapi.errors import SpecError, SpecProblem, format_location
from app.openapi.parsing import detect_version
from app.openapi.refs import localise, ref_problems

MAX_PROBLEMS = 50


class ExternalFetchRefused(Exception):
    """Raised by the validator's resolver instead of opening any URI."""


def _refuse(uri: str) -> Any:
    raise ExternalFetchRefused(f"Toolsmith does not fetch {uri!r}.")


class _RefuseEveryScheme(dict):
    """Resolver handlers for every scheme (`scheme in handlers` is always true), each one refusing.

    jsonschema-path falls back to `urllib` or `requests` for a scheme it has no handler for, so merely
    leaving http/https out would not be enough.
    """

    def __contains__(self, scheme: object) -> bool:
        return True

    def __getitem__(self, scheme: Any) -> Any:
        return _refuse

    def get(self, scheme: Any, default: Any = None) -> Any:
        return _refuse


_NO_FETCH = _RefuseEveryScheme()


def _located(schema_validator: type) -> type:
    """The library's schema keyword validator, with meta-schema errors placed where the schema sits.

    Its errors about a schema carry a path inside that schema only; prefix the schema's own path.
    """
    if not hasattr(schema_validator, "_validate_schema_meta"):
        return schema_validator

    class Located(schema_validator):
        def _validate_schema_meta(self, schema: Any, schema_value: Any) -> Any:
            error = super()._validate_schema_meta(schema, schema_value)
            if error is not None:
                error.path.extendleft(reversed(getattr(schema, "parts", ())))
            return error

    return Located


class _V2(OpenAPIV2SpecValidator):
    resolver_handlers = _NO_FETCH
    keyword_validators = {
        **OpenAPIV2SpecValidator.keyword_validators,
        "schema": _located(OpenAPIV2SpecValidator.keyword_validators["schema"]),
    }


class _V30(OpenAPIV30SpecValidator):
    resolver_handlers = _NO_FETCH
    keyword_validators = {
        **OpenAPIV30SpecValidator.keyword_validators,
        "schema": _located(OpenAPIV30SpecValidator.keyword_validators["schema"]),
    }


class _V31(OpenAPIV31SpecValidator):
    resolver_handlers = _NO_FETCH
    keyword_validators = {
        **OpenAPIV31SpecValidator.keyword_validators,
        "schema": _located(OpenAPIV31SpecValidator.keyword_validators["schema"]),
    }


def validate_document(doc: dict) -> list[SpecProblem]:
    """Everything wrong with `doc` as an OpenAPI document (empty when it is valid); never fetches anything."""
    try:
        detect_version(doc)
    except SpecError as exc:
        return [SpecProblem(exc.message, exc.location)]
    problems = ref_problems(doc) or path_template_problems(doc)
    if problems:
        return problems[:MAX_PROBLEMS]
    try:
        checked = _without_misplaced_vocabulary(localise(doc))
        for error in _uncached_errors(spec_validator(checked)):
            problem = _problem_from(error)
            if problem not in problems:
                problems.append(problem)
            if len(problems) >= MAX_PROBLEMS:
                break
    except ExternalFetchRefused as exc:
        problems.append(SpecProblem(f"The document refers to something outside itself: {exc}"))
    except RecursionError:
        problems.append(SpecProblem("The document is nested too deeply to be checked."))
    except SpecError as exc:
        problems.append(SpecProblem(exc.message, exc.location))
    except Exception as exc:  # the validator's own failures (an unresolvable pointer, an odd value)
        problems.append(SpecProblem(f"The document could not be checked: {type(exc).__name__}: {exc}"))
    return problems


_TEMPLATE = re.compile(r"[^{}]*(\{[^{}/]+\}[^{}]*)*")


def path_template_problems(doc: dict) -> list[SpecProblem]:
    """Path templates with a `{` and no `}` (or the other way round, nested, empty): the validator stops on
    them with a parser's "expected '}' before end of string", naming no path."""
    paths = doc.get("paths")
    malformed = [
        path
        for path in (paths if isinstance(paths, dict) else {})
        if isinstance(path, str) and not _TEMPLATE.fullmatch(path)
    ]
    message = "The path {!r} is not a path template: each parameter is one {{name}}."
    return [SpecProblem(message.format(path), f"paths.{path}") for path in malformed]


def spec_validator(doc: dict) -> SpecValidator:
    """The openapi-spec-validator validator for `doc`'s version, with a resolver that refuses every URI."""
    kind, version = detect_version(doc)
    if kind == "swagger":
        return _V2(doc)
    return _V30(doc) if version.startswith("3.0.") else _V31(doc)


def _without_misplaced_vocabulary(doc: dict) -> dict:
    # swagger-core's code-first output puts `$vocabulary: "<uri>"` in ordinary schemas. The keyword only
    # means something in a meta-schema (where it is an object), so a text value is dropped, not reported.
    if not any(isinstance(node.get("$vocabulary"), str) for node in _mappings(doc)):
        return doc
    doc = copy.deepcopy(doc)
    for node in _mappings(doc):
        if isinstance(node.get("$vocabulary"), str):
            del node["$vocabulary"]
    return doc


def _mappings(root: Any) -> Iterator[dict]:
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _uncached_errors(validator: SpecValidator) -> Iterator[ValidationError]:
    # `SpecValidator.iter_errors` sits behind an unbounded `functools.lru_cache` keyed by the validator
    # itself, which would keep every document ever checked alive in a long-running web process.
    cached = type(validator).iter_errors
    uncached = getattr(getattr(cached, "__wrapped__", None), "__wrapped__", None)
    return iter(uncached(validator)) if uncached is not None else validator.iter_errors()


def _problem_from(error: ValidationError) -> SpecProblem:
    # oneOf/anyOf failures in the meta-schema hide the useful reason among their sub-errors.
    # The "or a Reference Object" branch ("'$ref' is a required property") is never the helpful one.
    branches = [sub for sub in error.context or () if sub.message != "'$ref' is a required property"]
    detailed = best_match(branches or error.context) if error.context else error
    path = max(list(error.absolute_path), list(detailed.absolute_path), key=len)[:40]
    message = detailed.message
    if len(message) > 300:
        message = message[:297] + "..."
    return SpecProblem(message, format_location(path) if path else None)
