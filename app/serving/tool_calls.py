"""The one tool-call format Toolsmith uses everywhere (training data, serving, parsing, evaluation).

Hermes / Qwen style: tools are listed in the system turn and the model answers a call as
`<tool_call>{"name": ..., "arguments": {...}}</tool_call>`. Remote OpenAI-compatible servers return
structured `tool_calls` instead; both end up as `ToolCall` values. Pure functions, no Flask.
"""

from __future__ import annotations

import json
import re
from typing import Any

from app.serving.types import ToolCall

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
_TAGGED = re.compile(
    re.escape(TOOL_CALL_OPEN) + r"\s*(.*?)\s*(?:" + re.escape(TOOL_CALL_CLOSE) + r"|$)", re.S
)


def format_tool_call(name: str, arguments: dict[str, Any]) -> str:
    """How an assistant turn spells one call (the training target and what parsing expects back)."""
    payload = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"{TOOL_CALL_OPEN}{payload}{TOOL_CALL_CLOSE}"


def _as_call(payload: Any) -> ToolCall | None:
    if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
        return None
    arguments = payload.get("arguments", payload.get("parameters", {}))
    if isinstance(arguments, str):  # OpenAI sends arguments as a JSON string
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            return None
    if not isinstance(arguments, dict):
        return None
    return ToolCall(name=payload["name"], arguments=arguments)


def parse_tool_calls(text: str) -> list[ToolCall]:
    """Calls found in a model's reply: tagged `<tool_call>` blocks, or a bare JSON call as the whole reply.

    Malformed blocks are skipped rather than raised: a tiny model's half-formed call is a wrong answer
    to score, not a server error.
    """
    calls: list[ToolCall] = []
    if TOOL_CALL_OPEN in text:
        for block in _TAGGED.findall(text):
            try:
                call = _as_call(json.loads(block))
            except json.JSONDecodeError:
                continue
            if call is not None:
                calls.append(call)
        return calls
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        try:
            payload = json.loads(stripped)
        except json.JSONDecodeError:
            return []
        for item in payload if isinstance(payload, list) else [payload]:
            call = _as_call(item)
            if call is not None:
                calls.append(call)
    return calls


def parse_openai_tool_calls(tool_calls: list[Any] | None) -> list[ToolCall]:
    """Structured calls from an OpenAI-style response (`message.tool_calls`), dicts or client objects."""
    calls: list[ToolCall] = []
    for item in tool_calls or []:
        data = item if isinstance(item, dict) else _object_to_dict(item)
        function = data.get("function") or {}
        call = _as_call({"name": function.get("name"), "arguments": function.get("arguments") or {}})
        if call is not None:
            calls.append(ToolCall(name=call.name, arguments=call.arguments, id=data.get("id")))
    return calls


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
