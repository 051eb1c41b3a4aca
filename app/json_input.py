"""JSON from outside (forms, uploads, API bodies, model output), parsed without ever raising anything
but `ValueError`.

`json.loads` raises `RecursionError` for absurd nesting (`[[[[…` a few thousand deep, a few KB of text),
which no `except ValueError` catches: every parse of untrusted text goes through `loads` here, so such
input is a clear "nested too deeply" instead of a 500.
"""

from __future__ import annotations

import json
import math
from typing import Any


def loads(text: str | bytes, *, allow_constants: bool = True, text_only: bool = False) -> Any:
    """`json.loads`; nesting too deep (and, unless allowed, NaN / Infinity) raise `ValueError`, and so
    does half a UTF-16 surrogate pair with `text_only`: for values that are stored and shown again,
    where it would fail every page that prints them."""
    try:
        if allow_constants:
            value = json.loads(text)
        else:
            value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if text_only:
        bad = lone_surrogate_text(value)
        if bad is not None:
            raise ValueError(f'"{printable(bad)[:80]}" holds half a UTF-16 surrogate pair, which is not text')
    return value


def nesting_depth(value: Any) -> int:
    """How many arrays and objects deep `value` goes (a scalar is 0), without recursing: values parsed
    near the top of the stack can still be too deep for code that walks them recursively further down."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def lone_surrogate_text(value: Any) -> str | None:
    """The first string (key or value) in `value` that UTF-8 cannot hold: a `\\ud800` escape without its
    pair parses as JSON, then fails wherever the text is encoded (a grammar, a client, the database)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return item
    return None


def printable(text: str) -> str:
    """`text` with any lone UTF-16 surrogate (a `\\ud800` escape in the JSON) spelled as its escape: a
    name quoted in a problem must not make the page that shows it unencodable."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def whole_text(text: str) -> str:
    """`text` with each lone UTF-16 surrogate (a `\\ud800` escape sent without its pair) as U+FFFD: no
    database, page or SSE event can encode one. For text from outside that must be kept, not refused
    (a remote model's reply)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def whole_text_values(value: Any) -> Any:
    """`value` with `whole_text` applied to every string in it, keys included."""
    if lone_surrogate_text(value) is None:
        return value
    if isinstance(value, str):
        return whole_text(value)
    if isinstance(value, dict):
        return {whole_text_values(key): whole_text_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [whole_text_values(item) for item in value]
    return value


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):  # `1e999`: JSON allows the spelling, but no reader gets a number back
        raise ValueError(f"{text[:40]} is too large for a JSON number")
    return number


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def dumps_for_storage(value: Any) -> str:
    """JSON for a database column. NaN and ±Infinity become null, as JavaScript's `JSON.stringify`
    writes them: PostgreSQL refuses them (SQLite would keep them, and no JSON reader takes them back)."""
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        return json.dumps(finite_values(value), allow_nan=False)


def finite_values(value: Any) -> Any:
    """`value` with NaN and ±Infinity (anywhere inside) replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_values(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_values(item) for item in value]
    return value
