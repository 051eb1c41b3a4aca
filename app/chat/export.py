"""A chat session as a file: JSON (settings, tools and every turn with its figures) or Markdown (to read).

Only the conversation as shown is exported: replies replaced by a regenerated one are left out.
"""

from __future__ import annotations

import json
import re
from typing import Any

from app.chat.examples import reply_text
from app.chat.generation import session_tools
from app.models import ChatMessage, ChatSession


def session_json(session: ChatSession, messages: list[ChatMessage]) -> str:
    data = {
        "title": session.title,
        "mode": session.mode,
        "model": session.model.name if session.model else None,
        "spec": session.spec.label if session.spec else None,
        "tags": session.tags,
        "settings": {
            "system_prompt": session.system_prompt,
            "temperature": session.temperature,
            "top_p": session.top_p,
            "max_tokens": session.max_tokens,
            "stop": session.stop_sequences or [],
            "presence_penalty": session.presence_penalty,
            "frequency_penalty": session.frequency_penalty,
            "tool_choice": session.tool_choice,
            "constrained": session.constrained,
        },
        "tools": session_tools(session),
        "messages": [_message(m) for m in messages],
    }
    return json.dumps(data, indent=2, ensure_ascii=False)


def _message(message: ChatMessage) -> dict[str, Any]:
    item: dict[str, Any] = {
        "role": message.role,
        "content": reply_text(message.content) if message.role == "assistant" else message.content,
        "created_at": message.created_at.isoformat(timespec="seconds"),
    }
    if message.role == "tool":
        # The call it answers: two calls of one function are told apart only by their ids.
        item.update(name=message.tool_name, tool_call_id=message.tool_call_id)
    if message.role == "assistant":
        item.update(
            model=message.model_name,
            status=message.status,
            error=message.error,
            tool_calls=[
                {
                    "id": c.get("id"),
                    "name": c["name"],
                    "arguments": c["arguments"],
                    "problems": [i["message"] for i in c["issues"]],
                }
                for c in message.tool_calls or []
            ],
            api_request=message.api_request,
            prompt_tokens=message.prompt_tokens,
            completion_tokens=message.completion_tokens,
            tokens_estimated=message.tokens_estimated,
            latency_ms=message.latency_ms,
            ttft_ms=message.ttft_ms,
            finish_reason=message.finish_reason,
            rating={1: "good", -1: "bad"}.get(message.rating),
        )
    return item


def session_markdown(session: ChatSession, messages: list[ChatMessage]) -> str:
    lines = [f"# {session.title}", ""]
    model = session.model.name if session.model else "deleted model"
    lines += [f"Model: {model} · temperature {session.temperature:g} · tool choice {session.tool_choice}", ""]
    if session.system_prompt.strip():
        lines += ["**System:** " + session.system_prompt.strip(), ""]
    names = [t["function"]["name"] for t in session_tools(session)]
    if names:
        lines += ["Tools: " + ", ".join(f"`{n}`" for n in names), ""]
    for m in messages:
        if m.role == "user":
            lines += ["## User", "", m.content, ""]
        elif m.role == "tool":
            fence = _fence(m.content)
            lines += [f"## Tool result ({m.tool_name or 'tool'})", "", fence + "json", m.content, fence, ""]
        else:
            lines += [f"## {m.model_name or 'Model'}", ""]
            text = reply_text(m.content)
            if text:
                lines += [text, ""]
            for call in m.tool_calls or []:
                verdict = "valid" if not call["issues"] else "; ".join(i["message"] for i in call["issues"])
                arguments = json.dumps(call["arguments"], indent=2, ensure_ascii=False)
                fence = _fence(arguments)
                lines += [f"Call `{call['name']}` ({verdict}):", "", fence + "json", arguments, fence, ""]
            if m.error:
                lines += [f"_Error: {m.error}_", ""]
            figures = []
            if m.completion_tokens is not None:
                figures.append(f"{m.prompt_tokens} → {m.completion_tokens} tokens")
            if m.latency_ms is not None:
                figures.append(f"{m.latency_ms:.0f} ms")
            if figures:
                lines += ["_" + " · ".join(figures) + "_", ""]
    return "\n".join(lines).rstrip() + "\n"


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in `text`, so a result holding a ``` line (or a
    `## User` line inside the fence) cannot end the block early and pose as a turn of its own."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)
