"""Turn a chat reply into a training row: the conversation up to it, with the answer as the user fixed it.

This closes the loop between the playground and training: a reply that called the wrong function, or
the right one with a wrong argument, is corrected where it was seen and saved to an SFT dataset (a new
one or one of the user's own), in the one tool-call format, with the tools that were offered.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from app.chat.generation import session_tools
from app.json_input import loads as loads_json
from app.models import ChatMessage, ChatSession, MessageStatus

MAX_CALLS = 16
TOOL_CALL_MARKUP = re.compile(r"<tool_call>.*?(</tool_call>|$)", re.S)


@dataclass
class Answer:
    """The reply as it should have been: words and/or calls (`[{"name", "arguments"}]`)."""

    content: str
    calls: list[dict[str, Any]]


def reply_text(text: str | None) -> str:
    """Reply text with `<tool_call>` blocks removed: the calls are kept apart, already parsed."""
    return TOOL_CALL_MARKUP.sub("", text or "").strip()


def answer_of(message: ChatMessage) -> Answer:
    calls = [
        {"name": c["name"], "arguments": c["arguments"]}
        for c in message.tool_calls or []
        if not c.get("unparsed")  # nothing to keep of a call that could not be read
    ]
    return Answer(reply_text(message.content), calls)


def calls_as_text(calls: list[dict[str, Any]]) -> str:
    return json.dumps(calls, indent=2, ensure_ascii=False) if calls else ""


def parse_calls(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The calls box: empty (no call), one `{"name", "arguments"}` object, or a list of them."""
    if not text.strip():
        return [], []
    try:
        data = loads_json(text, allow_constants=False, text_only=True)  # saved rows must stay plain JSON
    except json.JSONDecodeError as exc:
        return [], [f"The calls are not valid JSON ({exc.msg}, line {exc.lineno})."]
    except ValueError as exc:
        return [], [f"The calls are not valid JSON ({exc})."]
    items = [data] if isinstance(data, dict) else data
    if not isinstance(items, list) or len(items) > MAX_CALLS:
        return [], [f'The calls must be a list of at most {MAX_CALLS} {{"name": ..., "arguments": {{...}}}}.']
    calls, problems = [], []
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            problems.append(f"Call {index} needs a function name.")
            continue
        arguments = item.get("arguments", {})
        if not isinstance(arguments, dict):
            problems.append(f"Call {index} ({item['name']}): arguments must be a JSON object.")
            continue
        calls.append({"name": item["name"], "arguments": arguments})
    return calls, problems


def offered_tools(session: ChatSession) -> list[dict[str, Any]]:
    """The tools the model had when it replied (none when the session's tool choice was "none")."""
    return [] if session.tool_choice == "none" and session.mode != "api" else session_tools(session)


def answer_problems(tools: list[dict[str, Any]], answer: Answer) -> list[str]:
    """Why the answer would make a bad training example: calls that do not match the offered tools."""
    from app.serving.tool_schema import call_problem_texts

    if not answer.content.strip() and not answer.calls:
        return ["The answer needs words or at least one call."]
    if answer.calls and not tools:
        return ["No tools were offered in this conversation, so the answer cannot call one."]
    return [
        text for call in answer.calls for text in call_problem_texts(tools, call["name"], call["arguments"])
    ]


def prompt_messages(session: ChatSession, message: ChatMessage) -> list[dict[str, Any]]:
    """What the model saw before `message`: the system prompt and the turns before it (not replaced ones)."""
    messages: list[dict[str, Any]] = []
    if session.system_prompt.strip():
        messages.append({"role": "system", "content": session.system_prompt.strip()})
    for turn in session.messages:
        if turn.id >= message.id:
            break
        if turn.replaced:
            continue
        converted = _as_row_message(turn)
        if converted is not None:
            messages.append(converted)
    return messages


def training_row(
    session: ChatSession,
    message: ChatMessage,
    answer: Answer,
    split: str,
    tools: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An SFT row: system prompt, the turns before `message`, and `answer` as the assistant's reply.
    `tools`: the session's offered tools when the caller has them already (`offered_tools`)."""
    row: dict[str, Any] = {
        "messages": [*prompt_messages(session, message), _assistant(answer.content, answer.calls)],
        "tools": offered_tools(session) if tools is None else tools,
        "meta": {"source": "chat", "model": message.model_name or "", "session": session.id},
    }
    if split == "eval":
        row["split"] = "eval"
    return row


def pair_problems(session: ChatSession, message: ChatMessage, answer: Answer) -> list[str]:
    """Why `answer` and the model's own reply cannot make a preference pair (chosen vs rejected)."""
    prompt = prompt_messages(session, message)
    if not prompt or prompt[-1]["role"] != "user":
        return [
            "A preference pair answers a user message, and this reply follows a tool result: "
            "save it as an SFT row."
        ]
    rejected = answer_of(message)
    if not rejected.content and not rejected.calls:
        return ["The model's reply is empty, so it cannot be the rejected answer of a pair."]
    if rejected == answer:
        return [
            "For a preference pair, fix the answer first: the model's reply is the rejected one, "
            "so the chosen one must differ."
        ]
    return []


def preference_row(
    session: ChatSession,
    message: ChatMessage,
    answer: Answer,
    split: str,
    tools: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A DPO row: the same prompt, `answer` chosen and the model's reply as it was rejected.

    This is the pair DPO learns most from: the model's own mistake next to its correction."""
    return pair_row(session, message, answer, answer_of(message), split, tools)


def pair_row(
    session: ChatSession,
    message: ChatMessage,
    chosen: Answer,
    rejected: Answer,
    split: str,
    tools: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A DPO row for the prompt `message` answered: `chosen` over `rejected`."""
    row: dict[str, Any] = {
        "prompt": prompt_messages(session, message),
        "chosen": [_assistant(chosen.content, chosen.calls)],
        "rejected": [_assistant(rejected.content, rejected.calls)],
        "tools": offered_tools(session) if tools is None else tools,
        "meta": {
            "source": "chat",
            "model": message.model_name or "",
            "session": session.id,
            "rejection": "chat",
        },
    }
    if split == "eval":
        row["split"] = "eval"
    return row


def _as_row_message(turn: ChatMessage) -> dict[str, Any] | None:
    if turn.role == "user":
        return {"role": "user", "content": turn.content}
    if turn.role == "tool":
        return {"role": "tool", "name": turn.tool_name or "", "content": turn.content}
    if turn.role == "assistant" and turn.status in (MessageStatus.COMPLETE, MessageStatus.STOPPED):
        answer = answer_of(turn)
        if answer.content or answer.calls:
            return _assistant(answer.content, answer.calls)
    return None  # failed or empty replies were never part of the conversation the model saw


def _assistant(content: str, calls: list[dict[str, Any]]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = [
            {"type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls
        ]
    return message
