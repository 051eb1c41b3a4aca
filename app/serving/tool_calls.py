"""The one tool-call format Toolsmith uses everywhere (training data, serving, parsing, evaluation).

Hermes / Qwen style: tools are listed in the system turn and the model answers a call as
`<tool_call>{"name": ..., "arguments": {...}}</tool_call>`. Remote OpenAI-compatible servers return
structured `tool_calls` instead; both end up as `ToolCall` values. Pure functions, no Flask.
"""

from __future__ import annotations

import json
import re
from typing import Any

from app.json_input import loads as loads_json
from app.json_input import whole_text, whole_text_values
from app.serving.types import ToolCall

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
_TAGGED = re.compile(
    re.escape(TOOL_CALL_OPEN) + r"\s*(.*?)\s*(?:" + re.escape(TOOL_CALL_CLOSE) + r"|$)", re.S
)


def tool_specs(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tools in the OpenAI shape `{"type": "function", "function": {...}}`, whichever shape they came in."""
    return [
        t if t.get("type") == "function" and "function" in t else {"type": "function", "function": t}
        for t in tools
    ]


def tools_system_prompt(tools: list[dict[str, Any]]) -> str:
    """The system-turn text that offers tools (Qwen 2.5 / Hermes wording, which tool-tuned models know).

    Used when a model's own chat template cannot render tools; the tool-aware template installed for
    training renders exactly this text, so a trained model sees at serving time what it saw in training.
    """
    lines = "\n".join(json.dumps(spec, ensure_ascii=False) for spec in tool_specs(tools))
    return (
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n"
        f"<tools>\n{lines}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        "<tool_call></tool_call> XML tags:\n"
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
    )


def format_tool_call(name: str, arguments: dict[str, Any]) -> str:
    """How an assistant turn spells one call (the training target and what parsing expects back)."""
    payload = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"{TOOL_CALL_OPEN}{payload}{TOOL_CALL_CLOSE}"


def format_tool_response(content: str) -> str:
    """How a tool's result is handed back to a model whose template has no tool role (Qwen 2.5 style)."""
    return f"<tool_response>\n{content}\n</tool_response>"


def _as_call(payload: Any) -> ToolCall | None:
    if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
        return None
    arguments = payload.get("arguments", payload.get("parameters", {}))
    if isinstance(arguments, str):  # OpenAI sends arguments as a JSON string
        try:
            arguments = loads_json(arguments) if arguments.strip() else {}
        except ValueError:
            return None
    if not isinstance(arguments, dict):
        return None
    # A `\\ud800` escape without its pair parses, but no page or database can encode it.
    return ToolCall(name=whole_text(payload["name"]), arguments=whole_text_values(arguments))


def parse_tool_calls(text: str) -> list[ToolCall]:
    """Calls found in a model's reply: tagged `<tool_call>` blocks, or a bare JSON call as the whole reply.

    Malformed blocks are skipped rather than raised: a tiny model's half-formed call is a wrong answer
    to score, not a server error.
    """
    calls: list[ToolCall] = []
    if TOOL_CALL_OPEN in text:
        return [call for call in map(_read_block, _TAGGED.findall(text)) if call is not None]
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        try:
            payload = loads_json(stripped)
        except ValueError:
            return []
        for item in payload if isinstance(payload, list) else [payload]:
            call = _as_call(item)
            if call is not None:
                calls.append(call)
    return calls


def strip_tool_calls(text: str) -> str:
    """A reply's words around its `<tool_call>` blocks, the blocks left out."""
    return _TAGGED.sub(" ", text) if TOOL_CALL_OPEN in text else text


def unparsed_tool_calls(text: str, include_cut: bool = True) -> list[str]:
    """The `<tool_call>` blocks of a reply that `parse_tool_calls` could not read (broken JSON, no name,
    arguments that are not an object, a call cut off at the token limit): the model tried to call and
    failed, which an invalid-call rate must count rather than see as "no call". `include_cut=False`
    leaves out a last block the reply ends inside (no closing tag): a reply cut at max tokens, which
    the chat reports as such."""
    if TOOL_CALL_OPEN not in text:
        return []
    blocks = _TAGGED.findall(text)
    if not include_cut and blocks and not text.rstrip().endswith(TOOL_CALL_CLOSE):
        blocks = blocks[:-1]
    return [block for block in blocks if _read_block(block) is None]


def unreadable_calls(text: str, broken: list[dict[str, Any]], include_cut: bool = True) -> list[str]:
    """Every call a reply tried and botched, as text: `<tool_call>` blocks that hold no readable call
    (see `unparsed_tool_calls` for `include_cut`), then a remote server's unreadable structured calls
    (`ChatResult.broken_tool_calls`) as JSON. The chat's cards and the API's log count them invalid."""
    structured = [json.dumps(call, ensure_ascii=False) for call in broken]
    return unparsed_tool_calls(text, include_cut=include_cut) + structured


def _read_block(block: str) -> ToolCall | None:
    """The call a `<tool_call>` block's text holds; None when it holds none that can be read."""
    try:
        return _as_call(loads_json(block))
    except ValueError:
        return None


def fold_tools_into_messages(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
) -> tuple[list[dict[str, Any]], None]:
    """For a chat template that knows nothing of tools: offer them in the system turn and spell calls and
    results as text, in the same format a tool-aware template would render (see `tool_calls`)."""
    folded: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls"):
            calls = parse_openai_tool_calls(message["tool_calls"])
            text = "\n".join(format_tool_call(call.name, call.arguments) for call in calls)
            content = message.get("content") or ""
            folded.append(
                {
                    "role": "assistant",
                    "content": content if TOOL_CALL_OPEN in content else (content + "\n" + text).strip(),
                }
            )
        elif role == "tool":
            folded.append(
                {"role": "user", "content": format_tool_response(str(message.get("content") or ""))}
            )
        else:
            folded.append({"role": role, "content": message.get("content") or ""})
    if tools:
        offer = tools_system_prompt(tools)
        if folded and folded[0]["role"] == "system":
            folded[0] = {"role": "system", "content": f"{folded[0]['content']}\n\n{offer}".strip()}
        else:
            folded.insert(0, {"role": "system", "content": offer})
    return folded, None


def parse_openai_tool_calls(tool_calls: list[Any] | None) -> list[ToolCall]:
    """Structured calls from an OpenAI-style response (`message.tool_calls`), dicts or client objects."""
    calls: list[ToolCall] = []
    for item in tool_calls or []:
        data = item if isinstance(item, dict) else _object_to_dict(item)
        function = data.get("function") or {}
        call = _as_call({"name": function.get("name"), "arguments": function.get("arguments") or {}})
        if call is not None:
            calls.append(ToolCall(name=call.name, arguments=call.arguments, id=call_id(data.get("id"))))
    return calls


MAX_CALL_ID = 64  # the chat's `tool_call_id` column and result form


def call_id(value: Any) -> str | None:
    """A server's id for a call when it can be stored and sent back with the call's result: a non-empty
    text of at most 64 characters; else None, and the chat names the call itself. (An id that was a list
    broke the session's page for good; an integer could never be matched by the result form.)"""
    return value if isinstance(value, str) and 0 < len(value) <= MAX_CALL_ID else None


def unreadable_openai_tool_calls(tool_calls: list[Any] | None) -> list[dict[str, Any]]:
    """The structured calls `parse_openai_tool_calls` cannot read (arguments that are not a JSON object:
    cut at the token limit, broken JSON, `null`), as {"id", "name", "arguments"} with the arguments' raw
    text: the model tried to call and failed, which an invalid-call rate must count, not see as no call."""
    broken = []
    for item in tool_calls or []:
        data = item if isinstance(item, dict) else _object_to_dict(item)
        function = data.get("function") or {}
        if _as_call({"name": function.get("name"), "arguments": function.get("arguments") or {}}) is None:
            arguments = function.get("arguments")
            text = arguments if isinstance(arguments, str) else json.dumps(arguments, default=str)
            name = function.get("name")
            broken.append({"id": call_id(data.get("id")), "name": name if isinstance(name, str) else "",
                           "arguments": text})  # fmt: skip
    return broken


def _object_to_dict(item: Any) -> dict[str, Any]:
    if hasattr(item, "model_dump"):
        return item.model_dump()
    function = getattr(item, "function", None)
    return {
        "id": getattr(item, "id", None),
        "function": {
            "name": getattr(function, "name", None),
            "arguments": getattr(function, "arguments", None),
        },
    }
