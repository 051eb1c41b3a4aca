"""What `/v1/chat/completions` accepts: OpenAI's request shape, checked with pydantic.

Unknown fields are ignored (OpenAI clients send many optional ones); wrong types and out-of-range values
are refused with the field's path. Message content may be a string or OpenAI's list of text parts; other
parts (images, audio) are refused rather than dropped, since no model here would see them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.serving.types import MAX_STOP_CHARS, MAX_STOP_SEQUENCES, PENALTY_RANGE

MAX_MESSAGES = 500
MAX_COMPLETION_TOKENS = 4096

__all__ = ["ChatRequest", "ValidationError", "describe", "first_param"]


class _Lenient(BaseModel):
    # NaN is no temperature: refused as "not a finite number", not as "greater than 2".
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class TextPart(_Lenient):
    type: Literal["text"]
    text: str


class FunctionCall(_Lenient):
    name: str = Field(min_length=1, max_length=200)
    arguments: str | dict[str, Any] = "{}"


class ToolCallIn(_Lenient):
    id: str = Field("", max_length=200)
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    tool_calls: list[ToolCallIn] | None = Field(None, max_length=64)
    tool_call_id: str | None = Field(None, max_length=200)

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts_only(cls, value: Any) -> Any:
        """One clear sentence for an image or audio part (pydantic's union error names every branch)."""
        if isinstance(value, list):
            for index, part in enumerate(value):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind != "text":
                    raise ValueError(
                        f"part {index} is of type {kind!r}: only text parts ({{'type': 'text', 'text': "
                        "...}) are read here, and no model here takes images or audio"
                    )
        return value

    @model_validator(mode="after")
    def _content_where_needed(self) -> Message:
        # Only an assistant turn that makes calls may leave its content out (OpenAI refuses the rest too).
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError(f"a {self.role} message needs content")
        return self

    def as_serving(self) -> dict[str, Any]:
        """The OpenAI message shape the serving layer takes (text parts joined; developer = system)."""
        text = self.content if isinstance(self.content, str) or self.content is None else "".join(
            part.text for part in self.content
        )  # fmt: skip
        role = "system" if self.role == "developer" else self.role
        message: dict[str, Any] = {"role": role, "content": text or ""}
        if self.role == "tool":
            message["tool_call_id"] = self.tool_call_id or ""
        if self.role == "assistant" and self.tool_calls:
            message["content"] = text or None
            message["tool_calls"] = [call.model_dump() for call in self.tool_calls]
        return message


class JsonSchemaFormat(_Lenient):
    name: str = Field("response", max_length=200)
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Lenient):
    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: JsonSchemaFormat | None = None


class StreamOptions(_Lenient):
    include_usage: StrictBool | None = False


class ChatRequest(_Lenient):
    # A NUL is in no model's name, and PostgreSQL text cannot hold one (the lookup would fail).
    model: str = Field(min_length=1, max_length=300, pattern=r"^[^\x00]*$")
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    tools: list[Any] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, ge=0.0, le=1.0)  # 0 keeps only the likeliest token, as on OpenAI
    max_tokens: StrictInt | None = Field(None, ge=1, le=MAX_COMPLETION_TOKENS)
    max_completion_tokens: StrictInt | None = Field(None, ge=1, le=MAX_COMPLETION_TOKENS)
    seed: StrictInt | None = None  # any integer, as on OpenAI: folded into the samplers' range below
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None
    stop: str | list[str] | None = None
    presence_penalty: float = Field(0.0, ge=PENALTY_RANGE[0], le=PENALTY_RANGE[1])
    frequency_penalty: float = Field(0.0, ge=PENALTY_RANGE[0], le=PENALTY_RANGE[1])
    # Accepted only where this server does what they ask: one choice, no log-probabilities.
    n: StrictInt = 1
    logprobs: StrictBool = False

    @field_validator("seed")
    @classmethod
    def _seed_in_range(cls, value: int | None) -> int | None:
        return None if value is None else value % 2**31

    @field_validator("tool_choice")
    @classmethod
    def _known_tool_choice(cls, value: Any) -> Any:
        if isinstance(value, dict) and value.get("type", "function") != "function":
            raise ValueError(
                f"tool_choice of type {value.get('type')!r} is not supported here: use 'none', 'auto', "
                "'required' or {'type': 'function', 'function': {'name': ...}}"
            )
        return value

    @field_validator("stop")
    @classmethod
    def _stop_within_limits(cls, value: str | list[str] | None) -> list[str]:
        stops = [value] if isinstance(value, str) else list(value or [])
        if len(stops) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences")
        if any(not stop or len(stop) > MAX_STOP_CHARS for stop in stops):
            raise ValueError(f"each stop sequence must have 1 to {MAX_STOP_CHARS} characters")
        return stops

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int) -> int:
        if value != 1:
            raise ValueError("only one choice per request is generated here; send n=1 or leave it out")
        return value

    @field_validator("logprobs")
    @classmethod
    def _no_logprobs(cls, value: bool) -> bool:
        if value:
            raise ValueError("log-probabilities are not returned by this server; leave logprobs false")
        return value

    @field_validator(
        "temperature", "top_p", "stream", "presence_penalty", "frequency_penalty", "n", "logprobs",
        mode="before",
    )  # fmt: skip
    @classmethod
    def _null_means_the_default(cls, value: Any, info: ValidationInfo) -> Any:
        """OpenAI's API (and clients that send every field) take null for "the default"."""
        return cls.model_fields[info.field_name].default if value is None else value

    @property
    def wants_json(self) -> bool:
        return self.response_format is not None and self.response_format.type != "text"

    @property
    def wants_usage_chunk(self) -> bool:
        return self.stream_options is not None and bool(self.stream_options.include_usage)

    def forced_function(self) -> str | None:
        """`tool_choice: {"type": "function", "function": {"name": ...}}` names one function (so does the
        flat `{"type": "function", "name": ...}` of OpenAI's newer Responses API)."""
        if isinstance(self.tool_choice, dict):
            function = self.tool_choice.get("function")
            name = function.get("name") if isinstance(function, dict) else self.tool_choice.get("name")
            return name if isinstance(name, str) and name else ""
        return None


# The tags pydantic puts in an error's location for the branch of a union it tried ("str", "list[...]").
_BRANCH_TAGS = frozenset({"str", "int", "float", "bool", "dict", "list", "none"})


def first_param(error: ValidationError) -> str | None:
    """The first bad field as OpenAI's `param` names one ("temperature", "messages[0].content"); the
    location stops at a union branch's tag ("str", "list[TextPart]"), which is no field."""
    for item in error.errors()[:1]:
        path = ""
        for part in item["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            elif isinstance(part, str) and part.isidentifier() and part not in _BRANCH_TAGS:
                path += f".{part}" if path else part
            else:
                break
        return path or None
    return None


def describe(error: ValidationError) -> str:
    """A pydantic error as one sentence naming each bad field."""
    problems = []
    for item in error.errors()[:5]:
        where = ".".join(str(part) for part in item["loc"]) or "body"
        problems.append(f"{where}: {item['msg']}")
    return "Invalid request: " + "; ".join(problems) + "."
