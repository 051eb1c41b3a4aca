"""The cases an evaluation asks every model: a prompt, the tools offered, and a judge for the reply.

Two sources. A dataset's held-out rows (its `eval` split; every row when it marks none): the reply is
correct when its calls equal the row's last assistant turn (same names, arguments equal as JSON values,
so true is not 1; parallel calls in any order), or when both make no call, the rule the training
pipeline's own evaluation uses. BFCL's categories: the reply is
judged by `bfcl.check_calls`, BFCL's AST checker (accepted values, normalised strings, any order for
parallel calls).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from app.evaluations import bfcl
from app.json_input import loads as loads_json

Calls = list[tuple[Any, Any]]
DATASET_CATEGORIES = {"call": "Makes a call", "no_call": "No call fits"}
PROMPT_CHARS_KEPT = 1000


@dataclass(frozen=True)
class EvalCase:
    id: str
    category: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    expects_call: bool
    expected: str  # what a correct reply does, for the explorer
    judge: Callable[[Calls], tuple[bool, str]]

    @property
    def prompt(self) -> str:
        """The last user turn, as the explorer shows it."""
        for message in reversed(self.messages):
            if message.get("role") == "user" and isinstance(message.get("content"), str):
                return message["content"][:PROMPT_CHARS_KEPT]
        return ""


def spread(items: list[Any], limit: int | None) -> list[Any]:
    """At most `limit` items taken evenly across `items` (rows are often grouped by topic), in order."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit <= 0:
        return []
    return [items[(index * len(items)) // limit] for index in range(limit)]


# --- a dataset's rows ---------------------------------------------------------------------------


def as_conversation(row: dict[str, Any]) -> dict[str, Any]:
    """An SFT row as it is; a DPO pair as its prompt followed by the chosen answer (the call to make)."""
    if "messages" not in row and isinstance(row.get("prompt"), list) and isinstance(row.get("chosen"), list):
        return {"messages": row["prompt"] + row["chosen"], "tools": row.get("tools") or []}
    return row


def expected_calls(message: dict[str, Any]) -> list[tuple[Any, dict[str, Any]]]:
    """The calls an assistant turn makes, arguments parsed (OpenAI or flat shape)."""
    calls = []
    for call in message.get("tool_calls") or []:
        function = call.get("function", call) if isinstance(call, dict) else {}
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            try:
                arguments = loads_json(arguments)
            except ValueError:
                arguments = {}
        calls.append((function.get("name"), arguments or {}))
    return calls


def same_json(value: Any, expected: Any) -> bool:
    """Equal as JSON values: 1 and 1.0 are one number, but (unlike Python's ==) true is not 1."""
    if isinstance(value, bool) or isinstance(expected, bool):
        return type(value) is type(expected) and value == expected
    if isinstance(expected, int | float) and isinstance(value, int | float):
        return value == expected
    if isinstance(expected, list):
        return (
            isinstance(value, list) and len(value) == len(expected) and all(map(same_json, value, expected))
        )
    if isinstance(expected, dict):
        return (
            isinstance(value, dict)
            and value.keys() == expected.keys()
            and all(same_json(value[key], expected[key]) for key in expected)
        )
    return type(value) is type(expected) and value == expected


def same_calls(got: Calls, expected: list[tuple[Any, dict[str, Any]]]) -> bool:
    """The same calls, in any order (parallel calls have none), each argument `same_json`."""
    got = list(got)
    if len(got) != len(expected):
        return False
    unmatched = list(expected)
    for name, arguments in got:
        match = next(
            (
                i
                for i, (want, want_args) in enumerate(unmatched)
                if want == name and same_json(arguments, want_args)
            ),
            None,
        )
        if match is None:
            return False
        unmatched.pop(match)
    return True


def judge_exact(expected: list[tuple[Any, dict[str, Any]]], got: Calls) -> tuple[bool, str]:
    """Correct when the calls equal the expected ones (in any order); otherwise the first difference."""
    got = [(name, arguments) for name, arguments in got]
    if same_calls(got, expected):
        return True, ""
    if not got:
        return False, f"Expected a call to {expected[0][0]}, got no call."
    if not expected:
        return False, f"Expected no call, got a call to {got[0][0]}."
    if len(got) != len(expected):
        return False, f"Expected {len(expected)} call(s), got {len(got)}."
    for (name, arguments), (want_name, want_arguments) in zip(got, expected, strict=True):
        if name != want_name:
            return False, f"Called {name}, expected {want_name}."
        if not isinstance(arguments, dict):
            return False, "The arguments are not an object."
        for key in sorted(set(want_arguments) | set(arguments), key=str):
            if key not in arguments:
                return False, f"Missing argument {key!r}."
            if key not in want_arguments:
                return False, f"Unexpected argument {key!r}."
            if not same_json(arguments[key], want_arguments[key]):
                return (
                    False,
                    f"Argument {key!r} is {_short(arguments[key])}, expected {_short(want_arguments[key])}.",
                )
    return False, "The calls differ from the expected ones."


def as_request_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A dataset row's turns in the shape OpenAI's API insists on: each call with an id, its arguments
    as JSON text, and each tool result naming the call it answers (rows name the function instead)."""
    shaped: list[dict[str, Any]] = []
    unanswered: list[tuple[str, str]] = []  # (call id, function name) of the last assistant turn
    for turn, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls"):
            calls, unanswered = [], []
            for index, (name, arguments) in enumerate(expected_calls(message)):
                raw = message["tool_calls"][index]
                call_id = raw.get("id") if isinstance(raw, dict) and raw.get("id") else f"call_{turn}_{index}"
                calls.append(
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)},
                    }
                )
                unanswered.append((call_id, name))
            shaped.append(
                {"role": "assistant", "content": message.get("content") or None, "tool_calls": calls}
            )
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not call_id and unanswered:
                named = [c for c in unanswered if c[1] == message.get("name")]
                call_id = (named or unanswered)[0][0]
            unanswered = [c for c in unanswered if c[0] != call_id]
            shaped.append(
                {"role": "tool", "tool_call_id": call_id or "", "content": str(message.get("content") or "")}
            )
        else:
            shaped.append(message)
    return shaped


def dataset_cases(rows: Iterable[dict[str, Any]], limit: int | None) -> list[EvalCase]:
    """The held-out rows (all rows when none is held out), spread to at most `limit`."""
    rows = list(rows)
    held_out = [row for row in rows if row.get("split") == "eval"]
    cases = []
    for index, row in enumerate(held_out or rows):
        conversation = as_conversation(row)
        messages = conversation.get("messages")
        if not (isinstance(messages, list) and messages and messages[-1].get("role") == "assistant"):
            continue
        expected = expected_calls(messages[-1])
        cases.append(
            EvalCase(
                id=str(row.get("id") or index + 1),
                category="call" if expected else "no_call",
                messages=as_request_messages(messages[:-1]),
                tools=conversation.get("tools") or [],
                expects_call=bool(expected),
                expected=_describe(expected),
                judge=lambda got, expected=expected: judge_exact(expected, got),
            )
        )
    return spread(cases, limit)


# --- BFCL ---------------------------------------------------------------------------------------


def bfcl_cases(categories: Iterable[str], per_category: int) -> list[EvalCase]:
    cases = []
    for category in categories:
        for case in bfcl.load_cases(category, per_category):
            cases.append(
                EvalCase(
                    id=case.id,
                    category=category,
                    messages=case.messages,
                    tools=case.tools,
                    expects_call=case.ground_truth is not None,
                    expected=_describe_ground_truth(case.ground_truth),
                    judge=lambda got, case=case: _bfcl_verdict(case, got),
                )
            )
    return cases


def _bfcl_verdict(case: bfcl.BfclCase, got: Calls) -> tuple[bool, str]:
    verdict = bfcl.check_calls(case, got)
    return verdict.correct, verdict.reason


def _describe_ground_truth(ground_truth: list[dict[str, Any]] | None) -> str:
    """The first accepted value of each argument ("" means it may be left out), as calls."""
    if ground_truth is None:
        return "no call"
    calls = []
    for call in ground_truth:
        for name, arguments in call.items():
            shown = {key: values[0] for key, values in arguments.items() if values and values[0] != ""}
            calls.append((name, shown))
    return _describe(calls)


def _describe(calls: list[tuple[Any, dict[str, Any]]]) -> str:
    if not calls:
        return "no call"
    return "; ".join(
        f"{name}({json.dumps(arguments, ensure_ascii=False, default=str)})" for name, arguments in calls
    )


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value) if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
