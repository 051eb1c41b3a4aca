"""What a dataset page shows about its rows: counts, calls vs no-call rows, tools, estimated tokens."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from app.serving.token_count import count_tokens

TOP_TOOLS = 50


def _assistant_messages(row: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    messages = row.get("chosen", []) if kind == "dpo" else row.get("messages", [])
    return [m for m in messages if isinstance(m, dict) and m.get("role") == "assistant"]


def _called(row: dict[str, Any], kind: str) -> list[str]:
    names = []
    for message in _assistant_messages(row, kind):
        for call in message.get("tool_calls") or []:
            name = (call.get("function") or {}).get("name") if isinstance(call, dict) else None
            if isinstance(name, str):
                names.append(name)
    return names


def _text_of(row: dict[str, Any], kind: str) -> str:
    """The conversation's words and calls (the tools' schemas are counted once per distinct set)."""
    parts: list[str] = []
    groups = ("prompt", "chosen", "rejected") if kind == "dpo" else ("messages",)
    for group in groups:
        for message in row.get(group, []):
            if isinstance(message, dict):
                parts.append(str(message.get("content") or ""))
                if message.get("tool_calls"):
                    parts.append(json.dumps(message["tool_calls"], ensure_ascii=False))
    return "\n".join(parts)


def dataset_stats(rows: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    calls: Counter[str] = Counter()
    offered: set[str] = set()
    with_call = 0
    tokens = 0
    tool_tokens: dict[str, int] = {}
    counted = True
    for row in rows:
        names = _called(row, kind)
        with_call += bool(names)
        calls.update(names)
        tools = row.get("tools") or []
        for tool in tools:
            name = (tool.get("function") or {}).get("name") if isinstance(tool, dict) else None
            if isinstance(name, str):
                offered.add(name)
        text_tokens = count_tokens(_text_of(row, kind))
        if text_tokens is None:
            counted = False
            continue
        if tools:
            key = json.dumps(tools, sort_keys=True, ensure_ascii=False)
            if key not in tool_tokens:
                tool_tokens[key] = count_tokens(key) or 0
            text_tokens += tool_tokens[key]
        tokens += text_tokens
    return {
        "rows": len(rows),
        "with_call": with_call,
        "without_call": len(rows) - with_call,
        "tools_offered": len(offered),
        "tools_called": len(calls),
        "top_calls": calls.most_common(TOP_TOOLS),
        "estimated_tokens": tokens if counted else None,
        "mean_tokens": round(tokens / len(rows)) if counted and rows else None,
    }
