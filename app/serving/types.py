"""Provider-neutral request and result types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_STOP_SEQUENCES = 4  # OpenAI's limit, so a request that works there works here
MAX_STOP_CHARS = 100
PENALTY_RANGE = (-2.0, 2.0)


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 512
    seed: int | None = None
    # For remote models offered tools natively ("auto", "required", or OpenAI's {"type": "function", ...});
    # local models get theirs from the grammar instead.
    tool_choice: str | dict[str, Any] | None = None
    # Text that ends the reply when generated (not included in it), as OpenAI's `stop`.
    stop: tuple[str, ...] = ()
    # OpenAI's penalties (-2..2): lower the odds of a token by how often (frequency) or whether
    # (presence) it already came up, against repeated phrases in small models' replies.
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0


@dataclass(frozen=True)
class ToolCall:
    """One function call the model asked for, in the OpenAI shape (`arguments` already parsed)."""

    name: str
    arguments: dict[str, Any]
    id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments}


@dataclass
class ChatResult:
    """What one generation produced, with the figures analytics needs."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    time_to_first_token_s: float | None
    finish_reason: str | None
    usage_estimated: bool = False
    stopped_early: bool = False
    tool_calls: list[ToolCall] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    # Structured calls a remote server sent that cannot be read ({"id", "name", "arguments" as raw text}).
    broken_tool_calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float | None:
        if not self.completion_tokens or not self.latency_s:
            return None
        generating = self.latency_s - (self.time_to_first_token_s or 0.0)
        return self.completion_tokens / generating if generating > 0 else None


@dataclass(frozen=True)
class ConnectionCheck:
    """The outcome of "Test connection": ok or not, and a sentence a user can act on."""

    ok: bool
    message: str
    latency_s: float | None = None


class ServingError(RuntimeError):
    """A generation or connection failed for a reason the user should read (bad key, timeout, …)."""


class PromptTooLong(ServingError):
    """The prompt does not fit the model's context window: the request's fault, not the model's (the API
    answers it with OpenAI's 400 `context_length_exceeded`, which clients do not retry)."""


class RemoteStatusError(ServingError):
    """A remote server answered with an HTTP error status. The API passes on the ones that are the
    request's to fix (400, 413, 422: a 400; 429: a 429 with the server's Retry-After) instead of a 502
    that clients retry; a refused key, a missing model or a 5xx stay the studio's (502)."""

    def __init__(self, message: str, status: int, code: str | None = None, retry_after: str | None = None):
        super().__init__(message)
        self.status, self.code, self.retry_after = status, code, retry_after
