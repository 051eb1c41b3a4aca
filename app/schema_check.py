"""JSON Schema 2020-12 validation whose regular expressions cannot hold a thread for minutes.

jsonschema runs `pattern`, `patternProperties` and the `additionalProperties` that depends on them
through Python's `re`, which backtracks without limit and cannot be interrupted: a spec's or a pasted
tool's `^(\\w+\\s?)*$` took 15 s on a model's 28-character answer here, 30 s at 29 characters, while the
request holding the thread waited. These keywords run the same patterns through the `regex` module
instead, which is faster on most of them and gives up after `PATTERN_SECONDS`; a value whose check ran
out of time fails, with a message that says so.

`regex` spells counted repeats out when it compiles them (`a{1000000}` took 270 MB, `(ab){1000000}`
830 MB): a pattern whose counts add up past `MAX_SPELLED_OUT` runs through `re` when nothing in it can
backtrack without limit (no repeat holds another repeat or an alternation), and is refused otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import regex
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

PATTERN_SECONDS = 0.25
MAX_SPELLED_OUT = 20_000

try:
    import re._constants as _sre
    import re._parser as _parser
except ImportError:  # Python < 3.11
    import sre_constants as _sre  # type: ignore[no-redef]
    import sre_parse as _parser  # type: ignore[no-redef]

_REPEATS = {_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", _sre.MAX_REPEAT)}


class PatternTimeout(Exception):
    """A pattern took longer than `PATTERN_SECONDS` on one value, or is too large to run safely."""


# Unicode properties (`\p{L}`, `\pL`) or a Unicode flag (`(?u)`): such a pattern asks for Unicode.
_ASKS_FOR_UNICODE = re.compile(r"\\[pP]|\(\?[a-zA-Z]*u")


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> Any:
    # ASCII classes, as JSON Schema's ECMA-262 patterns have them (and the grammars that constrain local
    # models' calls): `\w` is [A-Za-z0-9_] and `\d` [0-9], so "café" does not pass `^\w+$` here when a
    # JavaScript server would refuse it. A pattern naming Unicode properties (`\p{L}`) or flags is read
    # as Unicode throughout: `regex`'s ASCII flag would narrow those too, and `(?u)` refuses it.
    ascii_classes = not _ASKS_FOR_UNICODE.search(pattern)
    re_flags, regex_flags = (re.ASCII, regex.ASCII) if ascii_classes else (0, 0)
    try:
        parsed = _parser.parse(pattern)
    except (re.error, OverflowError, RecursionError):
        parsed = None  # `regex` may read what `re` cannot (and its own error then speaks for it)
    if parsed is not None and _spelled_out(parsed.data) > MAX_SPELLED_OUT:
        if _may_backtrack(parsed.data):  # too large for `regex`, and `re` could run for ever on it
            raise PatternTimeout(pattern)
        return re.compile(pattern, re_flags)
    try:
        return regex.compile(pattern, regex_flags)
    except regex.error:
        return re.compile(pattern, re_flags)


def _children(op: Any, value: Any) -> list[list]:
    """The sub-patterns under one node of `re`'s parse tree."""
    if op in _REPEATS:
        return [value[2]]
    if op is _sre.SUBPATTERN:
        return [value[-1]]
    if op is _sre.BRANCH:
        return list(value[1])
    if op in (_sre.ASSERT, _sre.ASSERT_NOT):
        return [value[1]]
    if op is getattr(_sre, "ATOMIC_GROUP", None):
        return [value]
    if op is _sre.GROUPREF_EXISTS:
        return [branch for branch in value[1:] if branch is not None]
    return []


def _spelled_out(nodes: Any) -> int:
    """About how many nodes `regex` builds: each counted repeat copies what it repeats."""
    total = 0
    for op, value in nodes:
        inside = sum(_spelled_out(child) for child in _children(op, value))
        if op in _REPEATS:
            low, high = value[0], value[1]
            total += max(1, low if high == _sre.MAXREPEAT else high) * max(1, inside)
        else:
            total += 1 + inside
        if total > MAX_SPELLED_OUT:
            return total
    return total


def _may_backtrack(nodes: Any, under_repeat: bool = False) -> bool:
    """Whether a repeat holds another repeat or an alternation: what makes backtracking exponential."""
    for op, value in nodes:
        if under_repeat and (op in _REPEATS or op is _sre.BRANCH):
            return True
        inner = under_repeat or op in _REPEATS
        if any(_may_backtrack(child, inner) for child in _children(op, value)):
            return True
    return False


def pattern_search(pattern: str, text: str) -> bool:
    """Whether `pattern` finds a match in `text`; `PatternTimeout` when it takes too long or is too
    large to run safely, `re.error` when it is no regular expression (what `regex` cannot read goes to
    `re`, whose error is the one raised)."""
    compiled = _compiled(pattern)
    if isinstance(compiled, re.Pattern):
        return compiled.search(text) is not None
    try:
        return compiled.search(text, timeout=PATTERN_SECONDS) is not None
    except TimeoutError as exc:
        raise PatternTimeout(pattern) from exc


def _too_slow(pattern: str, text: str) -> ValidationError:
    shown = text if len(text) <= 60 else text[:57] + "..."
    return ValidationError(
        f"{shown!r} could not be checked against {_shown(pattern)}: the pattern backtracks too much "
        f"to finish within {PATTERN_SECONDS} s, or is too large to run safely"
    )


def _shown(pattern: str) -> str:
    return repr(pattern if len(pattern) <= 80 else pattern[:77] + "...")


def _pattern(validator: Any, pattern: str, instance: Any, schema: dict) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "string"):
        return
    try:
        if not pattern_search(pattern, instance):
            yield ValidationError(f"{instance!r} does not match {pattern!r}")
    except PatternTimeout:
        yield _too_slow(pattern, instance)


def _pattern_properties(
    validator: Any, patterns: dict, instance: Any, schema: dict
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            try:
                matched = pattern_search(pattern, key)
            except PatternTimeout:
                yield _too_slow(pattern, key)
                continue
            if matched:
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, extra: Any, instance: Any, schema: dict
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    declared = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = []
    for key in instance:
        if key in declared:
            continue
        try:
            if any(pattern_search(pattern, key) for pattern in patterns):
                continue
        except PatternTimeout as exc:
            yield _too_slow(str(exc), key)
            continue
        extras.append(key)
    if validator.is_type(extra, "object"):
        for key in extras:
            yield from validator.descend(instance[key], extra, path=key)
    elif extra is False and extras:
        names = ", ".join(repr(key) for key in sorted(extras, key=str))
        if patterns:
            verb = "does" if len(extras) == 1 else "do"
            yield ValidationError(
                f"{names} {verb} not match any of the regexes: {', '.join(map(repr, patterns))}"
            )
        else:
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(f"Additional properties are not allowed ({names} {verb} unexpected)")


SchemaValidator = validators.extend(
    Draft202012Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
)
