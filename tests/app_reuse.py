"""What every test's fresh app would build the same again: compiled once per test session.

Each test gets its own app (its own database, folders and Redis database), and building one compiled
every URL rule's builder and, as pages were rendered, every template again: about 0.1 s a test, two to
three minutes of the suite. Both are pure functions of their source, so sharing them changes nothing a
test can see: a template whose text changes gets a new key (Jinja's checksum), and a builder is keyed
on everything werkzeug builds it from.
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2
from werkzeug.routing.rules import Rule


class SharedBytecodeCache(jinja2.BytecodeCache):
    """Jinja's compiled templates kept in memory for every app of the session (keyed by name and
    source checksum, as Jinja's own file cache is)."""

    def __init__(self) -> None:
        self._compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        if (code := self._compiled.get(bucket.key)) is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._compiled[bucket.key] = bucket.bytecode_to_string()


TEMPLATES = SharedBytecodeCache()


def share_compiled_url_builders() -> None:
    """Werkzeug compiles two small functions per rule from the rule's parts and defaults alone (they
    take the rule as `.self` when called, closing over nothing): the same function serves every app."""
    if getattr(Rule._compile_builder, "shared", False):
        return
    compile_builder = Rule._compile_builder
    built: dict[Any, Any] = {}

    @functools.wraps(compile_builder)
    def shared(self: Rule, append_unknown: bool = True):
        defaults = tuple(sorted((str(k), repr(v)) for k, v in (self.defaults or {}).items()))
        converters = tuple(sorted((name, type(c).__name__) for name, c in self._converters.items()))
        key = (self.rule, tuple(self._trace), defaults, converters, append_unknown)
        if key not in built:
            built[key] = compile_builder(self, append_unknown)
        return built[key]

    shared.shared = True
    Rule._compile_builder = shared
