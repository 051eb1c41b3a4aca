"""Tool-call accuracy of an exported GGUF on held-out rows, through the same serving path as chat.

For each eval row the conversation up to its last assistant turn is the prompt and that turn is the
expected answer (for a DPO pair: its prompt, and the chosen answer). A reply counts as:
- valid when every call it makes parses and matches the offered tools' schemas (`check_tool_call`);
- correct when its calls equal the expected ones (same names, same arguments), or when both make no
  call (the "no operation fits" rows);
- right tool when the first call names the expected function;
- an exact match when it is the expected turn as written: the same calls in the same order and the
  same words around them (whitespace collapsed), the strict measure for answers in prose.
Greedy decoding, no grammar: the model's own ability, not the grammar's. The config's
`evaluation.metrics` picks which of these rates a run reports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.configs.schema import ANSWER_METRICS
from app.evaluations.cases import as_conversation, expected_calls, same_calls, same_json
from app.serving.local import LocalModelHolder
from app.serving.tool_calls import parse_tool_calls, strip_tool_calls, unparsed_tool_calls
from app.serving.tool_schema import check_tool_call
from app.serving.types import SamplingParams

MAX_EVAL_ROWS = 100
GREEDY = SamplingParams(temperature=0.0, max_tokens=128)


@dataclass(frozen=True)
class Judged:
    """How one reply measures against the expected assistant turn."""

    expected: list[tuple[Any, dict[str, Any]]]
    got: list[tuple[str, dict[str, Any]]]
    valid: bool
    correct: bool
    exact: bool
    right_tool: bool


def judge_reply(text: str, expected_turn: dict[str, Any], tools: list[dict[str, Any]]) -> Judged:
    expected = expected_calls(expected_turn)
    got = [(c.name, c.arguments) for c in parse_tool_calls(text)]
    problems = [p for name, args in got for p in check_tool_call(tools, name, args)] if tools else []
    broken = bool(unparsed_tool_calls(text))  # a call attempted and botched is no "no call"
    in_order = len(got) == len(expected) and all(
        name == want and same_json(args, want_args)
        for (name, args), (want, want_args) in zip(got, expected, strict=True)
    )
    expected_text = expected_turn.get("content")
    return Judged(
        expected=expected,
        got=got,
        valid=((bool(got) and not problems) or (not got and not expected)) and not broken,
        correct=same_calls(got, expected) and not broken,
        exact=in_order
        and not broken
        and _words(strip_tool_calls(text))
        == _words(strip_tool_calls(expected_text) if isinstance(expected_text, str) else ""),
        right_tool=bool(expected and got and got[0][0] == expected[0][0]),
    )


def _words(text: str) -> str:
    return " ".join(text.split())


@dataclass
class EvalReport:
    rows: int = 0
    expected_calls: int = 0
    valid: int = 0
    correct: int = 0
    exact: int = 0
    right_tool: int = 0
    skipped: int = 0  # rows whose prompt does not fit the context: left out of every rate
    skip_reason: str = ""
    items: list[dict[str, Any]] = field(default_factory=list)

    def metrics(self, chosen: Iterable[str] = ANSWER_METRICS) -> dict[str, float | int]:
        """The chosen rates (the right-tool rate goes with tool-call accuracy), and how many rows."""
        n = max(self.rows, 1)
        rates = {
            "tool_call_accuracy": round(self.correct / n, 4),
            "right_tool_rate": round(self.right_tool / max(self.expected_calls, 1), 4),
            "valid_call_rate": round(self.valid / n, 4),
            "exact_match": round(self.exact / n, 4),
        }
        chosen = set(chosen)
        if "tool_call_accuracy" in chosen:
            chosen.add("right_tool_rate")
        return (
            {"eval_rows": self.rows}
            | {name: rate for name, rate in rates.items() if name in chosen}
            | ({"skipped_rows": self.skipped} if self.skipped else {})
        )


def evaluate_gguf(
    gguf_path: str | Path,
    rows: list[dict[str, Any]],
    limit: int = MAX_EVAL_ROWS,
    progress: Callable[[int, int], None] | None = None,
    threads: int | None = None,
    n_ctx: int = 2048,
) -> EvalReport:
    conversations = (as_conversation(r) for r in rows)
    usable = [
        r
        for r in conversations
        if isinstance(r.get("messages"), list)
        and r["messages"][-1:]
        and r["messages"][-1].get("role") == "assistant"
    ][:limit]
    report = EvalReport()
    # One pass over the rows: no prompt comes back, so no state is worth saving.
    holder = LocalModelHolder(max_loaded=1, n_threads=threads, n_ctx=max(n_ctx, 512), prompt_cache_bytes=0)
    try:
        for index, row in enumerate(usable):
            tools = row.get("tools") or []
            try:
                reply = holder.chat(gguf_path, row["messages"][:-1], GREEDY, tools=tools or None)
            except ValueError as exc:  # llama.cpp: the prompt does not fit the context window
                report.skipped += 1
                report.skip_reason = str(exc)
                if progress:
                    progress(index + 1, len(usable))
                continue
            judged = judge_reply(reply.text, row["messages"][-1], tools)
            report.rows += 1
            report.expected_calls += bool(judged.expected)
            report.valid += judged.valid
            report.correct += judged.correct
            report.exact += judged.exact
            report.right_tool += judged.right_tool
            report.items.append(
                {
                    "request": _last_user_text(row["messages"][:-1]),
                    "expected": judged.expected,
                    "got": judged.got,
                    "valid": judged.valid,
                    "correct": judged.correct,
                    "exact": judged.exact,
                    "reply": reply.text[:500],
                }
            )
            if progress:
                progress(index + 1, len(usable))
    finally:
        holder.close()
    return report


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    """The request the reply answers: the last user message (shown beside the answer on the run page)."""
    user = next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), None)
    return str(user.get("content") or "")[:500] if user else ""
