"""The tool-aware chat template installed on a model before training (ChatML turns, as SmolLM2 and
Qwen use), so it is saved with the model and carried into the GGUF's `tokenizer.chat_template`.

It renders a conversation exactly as `tool_calls.fold_tools_into_messages` + SmolLM2's own template do:
tools offered in the system turn with `tools_system_prompt`'s text, calls as
`<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (`format_tool_call`), results as a user turn
in `<tool_response>` tags. So a trained model sees the same prompt whether it is served through this
template (llama.cpp passes `tools` to it) or through folding (a GGUF without it), and parsing finds
its calls. A test holds the two renderings equal.

`TRAINING_TEMPLATE` adds transformers' `{% generation %}` markers around assistant turns so TRL can
compute the loss on assistant tokens only (`assistant_only_loss`); llama.cpp's Jinja does not know
that tag, so the template saved with the model is `TOOL_CHAT_TEMPLATE`, without them.
"""

from __future__ import annotations

from app.serving.tool_calls import tools_system_prompt

DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

# The tools block, with `{tools}` as Jinja: each spec on its own line as `tojson` writes it (the same
# JSON as json.dumps(..., ensure_ascii=False) in tools_system_prompt).
_TOOLS_PROMPT_HEAD, _TOOLS_PROMPT_TAIL = tools_system_prompt([{"type": "function", "function": {}}]).split(
    '{"type": "function", "function": {}}'
)


def _jinja_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


_TEMPLATE = (
    "{%- set tools_text = '' -%}"
    "{%- if tools -%}"
    "{%- set ns = namespace(lines=[]) -%}"
    "{%- for tool in tools -%}"
    "{%- if tool.type is defined and tool.type == 'function' and tool.function is defined -%}"
    "{%- set ns.lines = ns.lines + [tool | tojson] -%}"
    "{%- else -%}"
    "{%- set ns.lines = ns.lines + [{'type': 'function', 'function': tool} | tojson] -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- set tools_text = "
    + _jinja_string(_TOOLS_PROMPT_HEAD)
    + " + ns.lines | join('\\n') + "
    + _jinja_string(_TOOLS_PROMPT_TAIL)
    + " -%}"
    "{%- endif -%}"
    "{%- if messages and messages[0].role == 'system' -%}"
    "{%- set system_text = messages[0].content or '' -%}"
    "{%- if tools_text -%}{%- set system_text = (system_text ~ '\\n\\n' ~ tools_text) | trim -%}{%- endif -%}"
    "{%- set rest = messages[1:] -%}"
    "{%- elif tools_text -%}"
    "{%- set system_text = tools_text -%}{%- set rest = messages -%}"
    "{%- else -%}"
    "{%- set system_text = " + _jinja_string(DEFAULT_SYSTEM) + " -%}{%- set rest = messages -%}"
    "{%- endif -%}"
    "{{- '<|im_start|>system\\n' ~ system_text ~ '<|im_end|>\\n' -}}"
    "{%- for message in rest -%}"
    "{%- if message.role == 'assistant' -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "@@GEN_START@@"
    "{%- set content = message.content or '' -%}"
    "{%- if message.tool_calls and '<tool_call>' not in content -%}"
    "{%- set ns2 = namespace(calls=[]) -%}"
    "{%- for call in message.tool_calls -%}"
    "{%- set fn = call.function if call.function is defined else call -%}"
    "{%- if fn.arguments is string -%}"
    "{%- set ns2.calls = ns2.calls + ['<tool_call>{\"name\": ' ~ (fn.name | tojson) ~ ', \"arguments\": '"
    " ~ fn.arguments ~ '}</tool_call>'] -%}"
    "{%- else -%}"
    "{%- set ns2.calls = ns2.calls + ['<tool_call>' ~ ({'name': fn.name, 'arguments': fn.arguments} | tojson)"
    " ~ '</tool_call>'] -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- set content = (content ~ '\\n' ~ ns2.calls | join('\\n')) | trim -%}"
    "{%- endif -%}"
    "{{- content ~ '<|im_end|>' -}}"
    "@@GEN_END@@"
    "{{- '\\n' -}}"
    "{%- elif message.role == 'tool' -%}"
    "{{- '<|im_start|>user\\n<tool_response>\\n' ~ (message.content or '')"
    " ~ '\\n</tool_response><|im_end|>\\n' -}}"
    "{%- else -%}"
    "{{- '<|im_start|>' ~ message.role ~ '\\n' ~ (message.content or '') ~ '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

TOOL_CHAT_TEMPLATE = _TEMPLATE.replace("@@GEN_START@@", "").replace("@@GEN_END@@", "")
TRAINING_TEMPLATE = _TEMPLATE.replace("@@GEN_START@@", "{%- generation -%}").replace(
    "@@GEN_END@@", "{%- endgeneration -%}"
)


def renders_tools(template: str | None) -> bool:
    """Whether a chat template lays out `tools` itself (else tools must be folded into messages)."""
    return bool(template) and "tools" in template
