"""Whether a config's chat template compiles the way llama.cpp's formatter compiles it.

The template is saved with the trained model and carried into its GGUF, where llama-cpp-python's
`Jinja2ChatFormatter` compiles it when the model is loaded: one that does not compile leaves a model
that cannot be served. The environment here is that formatter's (a sandbox, its extensions and filters;
only names matter to compiling, so the globals it passes when rendering are left out).
"""

from __future__ import annotations

import functools
import json
from typing import Any

import jinja2
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


class _PassGenerationTags(Extension):
    """Hugging Face's `{% generation %}` … `{% endgeneration %}` (assistant masks) pass through."""

    tags = {"generation"}

    def parse(self, parser: Any) -> Any:
        parser.stream.skip(1)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, **kwargs: Any) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, **kwargs)


def _environment() -> ImmutableSandboxedEnvironment:
    environment = ImmutableSandboxedEnvironment(
        loader=jinja2.BaseLoader(),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[_PassGenerationTags, loopcontrols],
    )
    environment.filters["tojson"] = _tojson
    return environment


@functools.lru_cache(maxsize=32)  # the editor lints on every change; compiling a long template takes ~0.1 s
def chat_template_problem(template: str) -> tuple[int | None, str] | None:
    """(line, message without its final full stop) when `template` does not compile; None when it does."""
    try:
        _environment().from_string(template)
    except jinja2.TemplateSyntaxError as exc:
        return exc.lineno, (exc.message or str(exc)).rstrip(". ")
    except Exception as exc:  # a template nested past the parser's depth, say: still a finding, never a crash
        return None, f"{type(exc).__name__}: {exc}"[:300].rstrip(". ")
    return None
