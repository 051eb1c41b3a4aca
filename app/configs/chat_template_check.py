"""Whether a config's chat template compiles the way llama.cpp's formatter compiles it, and whether it
renders a tool conversation the way rows are trained.

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


# A conversation that uses every part of the format: a system prompt, tools offered, a call, its result,
# an answer.
_PETS_TOOL = {
    "type": "function",
    "function": {
        "name": "getPetById",
        "description": "Find a pet by its id",
        "parameters": {"type": "object", "properties": {"petId": {"type": "integer"}}, "required": ["petId"]},
    },
}
_SAMPLE_TURNS = [
    {"role": "system", "content": "You answer questions about the pet shop."},  # a template may drop it
    {"role": "user", "content": "Get pet 42"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"type": "function", "function": {"name": "getPetById", "arguments": {"petId": 42}}}],
    },
    {"role": "tool", "name": "getPetById", "content": '{"name": "Rex"}'},
    {"role": "assistant", "content": "It is Rex."},
    {"role": "user", "content": "And pet 7?"},
]


def _rendered(template: str) -> str:
    return render_conversation(template, _SAMPLE_TURNS, [_PETS_TOOL], add_generation_prompt=True)


@functools.lru_cache(maxsize=8)
def _compiled(template: str) -> jinja2.Template:
    return _environment().from_string(template)


def render_conversation(
    template: str, messages: list[Any], tools: list[Any] | None, add_generation_prompt: bool = False
) -> str:
    """`messages` as `template` renders them, in the sandbox, with what Hugging Face passes a template."""

    def raise_exception(message: str) -> None:
        raise jinja2.TemplateError(message)

    return _compiled(template).render(
        messages=messages,
        tools=tools,
        add_generation_prompt=add_generation_prompt,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        raise_exception=raise_exception,
        strftime_now=lambda format: "",
    )


@functools.lru_cache(maxsize=32)
def training_format_difference(template: str) -> str | None:
    """Where `template` renders a tool conversation unlike the template rows are trained with
    (`serving.chat_template.TOOL_CHAT_TEMPLATE`): the model would be served prompts it never saw. None
    when they render the same text (or the template does not compile: `chat_template_problem` says so)."""
    from app.serving.chat_template import TOOL_CHAT_TEMPLATE

    if chat_template_problem(template) is not None:
        return None
    expected = _rendered(TOOL_CHAT_TEMPLATE)
    try:
        got = _rendered(template)
    except Exception as exc:  # an undefined name, raise_exception(), a sandbox refusal
        return f"rendering a tool conversation fails ({type(exc).__name__}: {str(exc)[:200]})"
    if got == expected:
        return None
    at = next(
        (i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b),
        min(len(expected), len(got)),
    )
    shown, wanted = got[at : at + 40], expected[at : at + 40]
    return f"from character {at} it renders {shown!r} where training renders {wanted!r}"
