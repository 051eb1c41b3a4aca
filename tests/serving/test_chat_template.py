"""The tool-aware training template renders exactly what folding + SmolLM2's own template render."""

from __future__ import annotations

import pytest
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from app.serving.chat_template import TOOL_CHAT_TEMPLATE, TRAINING_TEMPLATE, renders_tools
from app.serving.tool_calls import fold_tools_into_messages, parse_tool_calls

SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
PETS = {
    "type": "function",
    "function": {
        "name": "getPetById",
        "description": "Find a pet's record by its id — returns <json>",
        "parameters": {"type": "object", "properties": {"petId": {"type": "integer"}}, "required": ["petId"]},
    },
}
BARE = {"name": "ping", "description": "Ping", "parameters": {"type": "object", "properties": {}}}
CALL = {"type": "function", "function": {"name": "getPetById", "arguments": {"petId": 42}}}
CONVERSATIONS = [
    ([{"role": "user", "content": "Hi"}], None),
    ([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], None),
    ([{"role": "user", "content": "Get pet 42"}], [PETS]),
    ([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Get pet 42"}], [PETS, BARE]),
    (
        [
            {"role": "user", "content": "Get pet 42"},
            {"role": "assistant", "content": "", "tool_calls": [CALL]},
            {"role": "tool", "name": "getPetById", "content": '{"name": "Rex"}'},
            {"role": "assistant", "content": "It is Rex."},
        ],
        [PETS],
    ),
    (
        [
            {"role": "user", "content": "Two"},
            {"role": "assistant", "content": "Sure.", "tool_calls": [CALL, CALL]},
        ],
        [PETS],
    ),
]


def _render(template: str, messages, tools, add_generation_prompt: bool) -> str:
    formatter = Jinja2ChatFormatter(
        template=template,
        eos_token="<|im_end|>",
        bos_token="<|im_start|>",
        add_generation_prompt=add_generation_prompt,
    )
    return formatter(messages=messages, tools=tools).prompt


@pytest.mark.parametrize(("messages", "tools"), CONVERSATIONS)
@pytest.mark.parametrize("add_generation_prompt", [False, True])
def test_same_prompt_as_folding_into_smollm2s_template(messages, tools, add_generation_prompt):
    folded, _ = fold_tools_into_messages(messages, tools)
    expected = _render(SMOLLM2_TEMPLATE, folded, None, add_generation_prompt)
    assert _render(TOOL_CHAT_TEMPLATE, messages, tools, add_generation_prompt) == expected


def test_calls_render_in_the_format_parsing_expects():
    messages, tools = CONVERSATIONS[4]
    text = _render(TOOL_CHAT_TEMPLATE, messages, tools, False)
    assert '<tool_call>{"name": "getPetById", "arguments": {"petId": 42}}</tool_call>' in text
    assert [c.name for c in parse_tool_calls(text)] == ["getPetById"]
    assert renders_tools(TOOL_CHAT_TEMPLATE) and not renders_tools(SMOLLM2_TEMPLATE)


def test_training_template_marks_assistant_turns_for_transformers():
    from transformers.utils.chat_template_utils import render_jinja_template

    messages, tools = CONVERSATIONS[4]
    rendered, generation_indices = render_jinja_template(
        conversations=[messages],
        tools=tools,
        chat_template=TRAINING_TEMPLATE,
        return_assistant_tokens_mask=True,
    )
    text = rendered[0]
    assert text == _render(TOOL_CHAT_TEMPLATE, messages, tools, False)
    spans = [text[start:end] for start, end in generation_indices[0]]
    assert spans == [
        '<tool_call>{"name": "getPetById", "arguments": {"petId": 42}}</tool_call><|im_end|>',
        "It is Rex.<|im_end|>",
    ]
    assert "{%- generation" not in TOOL_CHAT_TEMPLATE and "{%- generation" in TRAINING_TEMPLATE
