"""Toolsmith's dataset rows: one JSON object per JSONL line, SFT or DPO, calls in the one tool-call format.

SFT row::

    {"messages": [...], "tools": [OpenAI function tools, may be empty],
     "split": "train" | "eval" (optional), "meta": {...} (optional)}

DPO row::

    {"prompt": [messages ending with a user message], "chosen": [one assistant message],
     "rejected": [one assistant message], "tools": [...], "split"?, "meta"?}

A message is `{"role": "system" | "user" | "assistant" | "tool", "content": str}`. An assistant message
may carry `"tool_calls": [{"type": "function", "function": {"name": str, "arguments": {...}}}]` with
arguments as an object, not a JSON string (content may then be ""); a tool message names the function it
answers in `"name"` and holds the result in `"content"`.

The validators take any JSON value and never raise: they return sentences that say where each problem is
(`messages[3].tool_calls[0]: ...`), empty when the row is fine. Pure functions, no Flask.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from app.json_input import printable
from app.serving.tool_schema import function_of, validate_tool_definitions
from app.serving.tool_schema import json_kind as tool_json_kind

ROLES = ("system", "user", "assistant", "tool")
SPLITS = ("train", "eval")
DPO_KEYS = ("prompt", "chosen", "rejected")
MAX_TOOL_CACHE = 1024


def row_kind(row: Any) -> str | None:
    """The row's kind: "sft" (has `messages`), "dpo" (has prompt/chosen/rejected), or None (neither, both)."""
    if not isinstance(row, dict):
        return None
    dpo = any(key in row for key in DPO_KEYS)
    sft = "messages" in row
    if dpo == sft:
        return None
    return "dpo" if dpo else "sft"


def validate_sft_row(row: Any) -> list[str]:
    """What is wrong with an SFT row; empty when it is fine."""
    if not isinstance(row, dict):
        return [f"A row must be a JSON object, got {json_kind(row)}."]
    problems: list[str] = []
    offered = _tool_problems(row, problems)
    if any(key in row for key in DPO_KEYS):
        problems.append("An SFT row has messages, not prompt/chosen/rejected.")
    messages = row.get("messages")
    if "messages" not in row:
        problems.append("messages is required.")
    elif not isinstance(messages, list):
        problems.append(f"messages must be a list of messages, got {json_kind(messages)}.")
    else:
        problems.extend(_conversation_problems(messages, "messages", offered))
        roles = [m.get("role") for m in messages if isinstance(m, dict)]
        if "user" not in roles:
            problems.append("messages: at least one user message is needed.")
        if "assistant" not in roles:
            problems.append("messages: at least one assistant message is needed.")
        elif roles and roles[-1] != "assistant":
            problems.append(
                f"messages: the conversation must end with an assistant message, not {roles[-1]!r}."
            )
    problems.extend(_extra_problems(row))
    return problems


def validate_dpo_row(row: Any) -> list[str]:
    """What is wrong with a DPO (preference) row; empty when it is fine."""
    if not isinstance(row, dict):
        return [f"A row must be a JSON object, got {json_kind(row)}."]
    problems: list[str] = []
    offered = _tool_problems(row, problems)
    if "messages" in row:
        problems.append("A DPO row has prompt/chosen/rejected, not messages.")
    prompt = row.get("prompt")
    if "prompt" not in row:
        problems.append("prompt is required.")
    elif not isinstance(prompt, list) or not prompt:
        problems.append(f"prompt must be a non-empty list of messages, got {json_kind(prompt)}.")
    else:
        problems.extend(_conversation_problems(prompt, "prompt", offered))
        last = prompt[-1]
        if not isinstance(last, dict) or last.get("role") != "user":
            problems.append("prompt must end with a user message.")
    for key in ("chosen", "rejected"):
        answer = row.get(key)
        if key not in row:
            problems.append(f"{key} is required.")
        elif not isinstance(answer, list) or len(answer) != 1:
            problems.append(f"{key} must be a list holding exactly one assistant message.")
        elif isinstance(answer[0], dict) and answer[0].get("role") != "assistant":
            problems.append(f"{key}[0] must be an assistant message, not {_short(answer[0].get('role'))}.")
        else:
            # A rejected answer may call a function that was never offered: that is one of the mistakes
            # a preference pair teaches away (a chat reply saved with its correction, for one).
            problems.extend(_conversation_problems(answer, key, offered if key == "chosen" else set()))
    problems.extend(_extra_problems(row))
    return problems


def validate_row(row: Any) -> list[str]:
    """Validate a row of either kind; a row of neither kind gets one problem saying so."""
    kind = row_kind(row)
    if kind == "sft":
        return validate_sft_row(row)
    if kind == "dpo":
        return validate_dpo_row(row)
    if isinstance(row, dict) and "messages" in row:
        return ["A row has either messages (SFT) or prompt/chosen/rejected (DPO), not both."]
    return ["A row needs messages (SFT) or prompt/chosen/rejected (DPO)."]


def row_has_call(row: Any) -> bool:
    """Whether the row's answer calls a function (any assistant message for SFT, `chosen` for DPO)."""
    return bool(called_functions(row))


def called_functions(row: Any) -> list[str]:
    """Names the row's answer calls, in order, repeats kept (assistant messages; `chosen` for DPO)."""
    kind = row_kind(row)
    messages = row.get("chosen") if kind == "dpo" else row.get("messages") if kind == "sft" else None
    names: list[str] = []
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        calls = message.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            function = function_of(call)
            if function is not None and isinstance(function.get("name"), str):
                names.append(function["name"])
    return names


def row_tools(row: Any) -> list[str]:
    """Names of the functions the row offers in `tools` (either tool shape), in order, without repeats."""
    tools = row.get("tools") if isinstance(row, dict) else None
    names: list[str] = []
    for tool in tools if isinstance(tools, list) else []:
        function = function_of(tool)
        name = function.get("name") if function is not None else None
        if isinstance(name, str) and name not in names:
            names.append(name)
    return names


def normalise_tools(tools: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """Tool definitions in either shape → (OpenAI-shape tools, problems); an empty list is fine.

    Results are cached by content: a dataset usually offers the same few tool sets on every row, and
    checking a schema against the JSON Schema metaschema is the slow part of validating a row.
    """
    if isinstance(tools, list) and not tools:
        return [], []
    try:
        key = json.dumps(tools, sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return [], ["tools must be plain JSON."]
    normalised, errors = _normalise_tools_cached(key)
    return json.loads(normalised), list(errors)


@lru_cache(maxsize=MAX_TOOL_CACHE)
def _normalise_tools_cached(key: str) -> tuple[str, tuple[str, ...]]:
    tools, errors = validate_tool_definitions(json.loads(key))
    return json.dumps(tools, ensure_ascii=False), tuple(f"tools: {error}" for error in errors)


def _tool_problems(row: dict[str, Any], problems: list[str]) -> set[str]:
    """Append what is wrong with `tools`; return the function names offered (for checking calls)."""
    tools = row.get("tools", [])
    if not isinstance(tools, list):
        problems.append(f"tools must be a list of tools, got {json_kind(tools)}.")
        return set()
    shape = [
        f'tools[{index}] must be {{"type": "function", "function": {{...}}}}.'
        for index, tool in enumerate(tools)
        if not (
            isinstance(tool, dict)
            and tool.get("type") == "function"
            and isinstance(tool.get("function"), dict)
        )
    ]
    problems.extend(shape or normalise_tools(tools)[1])
    return set(row_tools(row))


def _conversation_problems(messages: list[Any], path: str, offered: set[str]) -> list[str]:
    problems: list[str] = []
    answered: list[str] | None = None  # names called by the assistant turn that tool messages answer
    for index, message in enumerate(messages):
        where = f"{path}[{index}]"
        message_problems = _message_problems(message, where, offered)
        problems.extend(message_problems)
        if not isinstance(message, dict):
            answered = None
            continue
        role = message.get("role")
        if role == "system" and index > 0:
            problems.append(f"{where}: a system message may only come first.")
        if role == "tool":
            name = message.get("name")
            if answered is None:
                problems.append(
                    f"{where}: a tool message must follow an assistant message that calls a tool."
                )
            elif isinstance(name, str) and name not in answered:
                called = printable(", ".join(answered)) or "nothing"
                problems.append(
                    f"{where}.name {name!r} answers no call of the assistant turn (it called {called})."
                )
        elif role == "assistant" and isinstance(message.get("tool_calls"), list):
            answered = [
                call["function"]["name"]
                for call in message["tool_calls"]
                if isinstance(call, dict)
                and isinstance(call.get("function"), dict)
                and isinstance(call["function"].get("name"), str)
            ]
        else:
            answered = None
    return problems


def _message_problems(message: Any, where: str, offered: set[str]) -> list[str]:
    if not isinstance(message, dict):
        return [f"{where} must be a message object, got {json_kind(message)}."]
    role = message.get("role")
    if role not in ROLES:
        return [f"{where}.role must be one of {', '.join(ROLES)}; got {_short(role)}."]
    problems: list[str] = []
    content = message.get("content")
    if "content" not in message:
        problems.append(f"{where}.content is required.")
    elif not isinstance(content, str):
        problems.append(f"{where}.content must be a string, got {json_kind(content)}.")
    if "tool_calls" in message:
        if role != "assistant":
            problems.append(f"{where}: only assistant messages carry tool_calls.")
        else:
            problems.extend(_calls_problems(message["tool_calls"], f"{where}.tool_calls", offered))
    elif role == "assistant" and content == "":
        problems.append(f"{where}: an assistant message needs content or tool_calls.")
    if role == "tool":
        name = message.get("name")
        if not isinstance(name, str) or not name:
            problems.append(f"{where}.name must name the function whose result this is.")
    return problems


def _calls_problems(calls: Any, where: str, offered: set[str]) -> list[str]:
    if not isinstance(calls, list) or not calls:
        return [f"{where} must be a non-empty list of calls, got {json_kind(calls)}."]
    problems: list[str] = []
    for index, call in enumerate(calls):
        at = f"{where}[{index}]"
        if (
            not isinstance(call, dict)
            or call.get("type") != "function"
            or not isinstance(call.get("function"), dict)
        ):
            problems.append(
                f'{at} must be {{"type": "function", "function": {{"name": ..., "arguments": {{...}}}}}}.'
            )
            continue
        function = call["function"]
        name, arguments = function.get("name"), function.get("arguments")
        if not isinstance(name, str) or not name:
            problems.append(f"{at}.function.name must be a non-empty string, got {_short(name)}.")
        elif offered and name not in offered:
            listed = printable(", ".join(sorted(offered)))
            problems.append(f"{at}: calls {name!r}, which is not in tools (offered: {listed}).")
        if not isinstance(arguments, dict):
            problems.append(f"{at}.function.arguments must be a JSON object, got {json_kind(arguments)}.")
    return problems


def _extra_problems(row: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if "split" in row and row["split"] not in SPLITS:
        problems.append(f'split must be "train" or "eval", got {_short(row["split"])}.')
    if "meta" in row and not isinstance(row["meta"], dict):
        problems.append(f"meta must be an object, got {json_kind(row['meta'])}.")
    return problems


def json_kind(value: Any) -> str:
    """`tool_schema.json_kind`, telling an empty list apart (a row's lists must not be empty)."""
    return "an empty list" if value == [] else tool_json_kind(value)


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
