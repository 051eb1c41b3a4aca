"""A chat template that cannot compile is an error at lint time: the trained GGUF carries it, and
llama.cpp's formatter (llama-cpp-python's Jinja2ChatFormatter) would refuse to serve the model."""

from __future__ import annotations

import jinja2
import pytest
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from app.configs.linter import lint
from app.configs.templates import TEMPLATES_BY_KEY
from app.serving.chat_template import TOOL_CHAT_TEMPLATE, TRAINING_TEMPLATE


def with_template(template: str | None) -> dict:
    config = TEMPLATES_BY_KEY["sft_toolbench"].build()
    config["tokenizer"]["chat_template"] = template
    return config


def template_findings(template: str | None):
    return [f for f in lint(with_template(template)).findings if f.path == "tokenizer.chat_template"]


def test_a_template_missing_its_endfor_is_an_error_with_the_line():
    findings = template_findings("{% for m in messages %}\n{{ m.content }}")
    assert [(f.severity, f.rule) for f in findings] == [("error", "chat_template_syntax")]
    assert "line 2" in findings[0].message and "endfor" in findings[0].message
    assert not lint(with_template("{% for m in messages %}{{ m.content }}")).ok


SERVABLE = [
    TOOL_CHAT_TEMPLATE,
    TRAINING_TEMPLATE,  # {% generation %} blocks: llama.cpp passes them through
    "{% for m in messages %}{% if loop.index > 3 %}{% break %}{% endif %}{{ m.content }}{% endfor %}",
    "{{ tools | tojson(indent=2) }}{{ messages[0] | tojson }}",
    "{{ raise_exception('no') if not messages }}{{ strftime_now('%Y') }}",  # globals, known when rendering
]
BROKEN = [
    "{% for m in messages %}{{ m.content }}",
    "{{ m.content }",
    "{% if x %}{% endfor %}",
    "{{ x | no_such_filter }}",
    "{% no_such_tag %}",
    "{{ x is no_such_test }}",
]


@pytest.mark.parametrize("template", SERVABLE + BROKEN)
def test_the_linter_refuses_exactly_what_llama_cpp_cannot_compile(template):
    try:
        Jinja2ChatFormatter(template=template, eos_token="</s>", bos_token="<s>")
        compiles = True
    except jinja2.TemplateSyntaxError:
        compiles = False
    assert compiles == (template in SERVABLE)
    syntax = [f for f in template_findings(template) if f.rule == "chat_template_syntax"]
    assert (syntax == []) == compiles


def test_no_template_or_a_blank_one_uses_the_tool_aware_default():
    assert template_findings(None) == [] and template_findings("") == []


@pytest.mark.parametrize("template", [TOOL_CHAT_TEMPLATE, TRAINING_TEMPLATE])
def test_the_training_format_itself_gets_no_warning(template):
    assert template_findings(template) == []


@pytest.mark.parametrize(
    ("template", "said"),
    [
        (
            "{% for m in messages %}{{ m.content }}{% endfor %}",
            "from character 0 it renders 'You answer questions",
        ),
        ("{{ no_such_name.field }}", "UndefinedError"),
        ("{{ raise_exception('tools are not supported') }}", "tools are not supported"),
    ],
)
def test_a_template_that_serves_prompts_unlike_training_is_a_warning_saying_where(template, said):
    (finding,) = template_findings(template)
    assert (finding.severity, finding.rule) == ("warning", "chat_template_differs")
    assert said in finding.message


def test_a_template_that_drops_the_system_prompt_is_a_warning():
    """Rows are trained with their system prompt: a serving template without it would differ."""
    dropped = TOOL_CHAT_TEMPLATE.replace(
        "set system_text = messages[0].content or ''", "set system_text = ''"
    )
    assert dropped != TOOL_CHAT_TEMPLATE
    (finding,) = template_findings(dropped)
    assert finding.rule == "chat_template_differs"
