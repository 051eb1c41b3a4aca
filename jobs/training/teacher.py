"""Teacher Mode: a model from the registry writes the target answers before SFT (distillation).

Each training row's conversation up to its last assistant turn goes to the teacher through the same
serving layer as chat (local GGUF, Hugging Face or any OpenAI-compatible endpoint), with the row's
tools. Its reply replaces that turn: calls it makes become structured `tool_calls` in the one format,
anything else stays text. Rows the teacher fails on keep their original answer and are counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.serving.types import SamplingParams

TEACHER_SAMPLING = SamplingParams(temperature=0.2, max_tokens=384, seed=0)


@dataclass
class TeacherReport:
    rows: int = 0
    rewritten: int = 0
    with_call: int = 0
    failed: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "rewritten": self.rewritten,
            "with_call": self.with_call,
            "failed": self.failed,
        }


def distil(
    teacher: Any,
    rows: list[dict[str, Any]],
    progress: Callable[[int, int], None] | None = None,
    generate: Callable[..., Any] | None = None,
) -> tuple[list[dict[str, Any]], TeacherReport]:
    """New rows whose last assistant turn the teacher wrote; `teacher` is an LLMModel."""
    from app.serving import ServingError
    from app.serving import generate as serve

    generate = generate or serve
    report = TeacherReport()
    out = []
    for index, row in enumerate(rows):
        messages = row.get("messages") or []
        report.rows += 1
        if not messages or messages[-1].get("role") != "assistant":
            out.append(row)
            continue
        try:
            result = generate(teacher, messages[:-1], TEACHER_SAMPLING, row.get("tools") or None)
        except (ServingError, OSError, ValueError, RuntimeError) as exc:
            report.failed += 1
            report.last_error = str(exc)[:300]
            out.append(row)
        else:
            answer: dict[str, Any] = {"role": "assistant", "content": ""}
            if result.tool_calls:
                answer["tool_calls"] = [
                    {"type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                    for c in result.tool_calls
                ]
                report.with_call += 1
            else:
                answer["content"] = result.text.strip()
            out.append({**row, "messages": messages[:-1] + [answer]})
            report.rewritten += 1
        if progress:
            progress(index + 1, len(rows))
    return out, report
