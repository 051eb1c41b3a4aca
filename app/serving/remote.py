"""Remote models through their real client libraries: Hugging Face (`huggingface_hub.InferenceClient`) and
any OpenAI-compatible server (`openai.OpenAI`: OpenAI, vLLM, Ollama, LM Studio, llama.cpp's server).

Usage:

    endpoint = RemoteEndpoint("openai_compatible", "http://10.0.0.5:8000/v1", "qwen2.5-0.5b", api_key)
    for item in stream_chat(endpoint, messages, SamplingParams(temperature=0)):
        ...  # str pieces, then one ChatResult (the same contract as `LocalModelHolder.stream_chat`)
    check = test_connection(endpoint)  # ConnectionCheck(ok, message): never raises for expected failures

Endpoint URLs come from users, so every request goes through the SSRF guard (`url_guard`). Failures become
`ServingError`s whose message a user can act on (`describe_error`); the API key never appears in one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from app.json_input import whole_text
from app.serving.remote_errors import NOT_OPENAI, describe_error, mentions_key, server_text, serving_error
from app.serving.tool_calls import (
    call_id,
    parse_openai_tool_calls,
    parse_tool_calls,
    unreadable_openai_tool_calls,
)
from app.serving.types import ChatResult, ConnectionCheck, SamplingParams, ServingError
from app.serving.url_guard import check_url, guarded_http_client

HF_INFERENCE = "hf_inference"
OPENAI_COMPATIBLE = "openai_compatible"
REMOTE_PROVIDERS = (HF_INFERENCE, OPENAI_COMPATIBLE)
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
HF_ROUTER_NAME = "Hugging Face Inference Providers"
DEFAULT_SAMPLING = SamplingParams()
LISTED_MODELS_LIMIT = 20
CONNECTION_TEST_MESSAGES = [{"role": "user", "content": "Hi"}]
ONE_TOKEN = SamplingParams(temperature=0.0, max_tokens=1)


class NotJSONError(ServingError):
    """The server answered with something other than JSON or server-sent events (an HTML page, text)."""


class EmptyStreamError(NotJSONError):
    """The server opened a stream and closed it without one event."""


class ModelNotOfferedError(ServingError):
    """The server answers but lists other models (llama.cpp's server would silently serve its own)."""


@dataclass(frozen=True)
class RemoteEndpoint:
    """Where a remote model lives and how to reach it; `api_key` stays out of repr (and so out of logs)."""

    provider: str
    base_url: str | None
    model_id: str
    api_key: str | None = field(default=None, repr=False)
    allow_private: bool = False
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.provider not in REMOTE_PROVIDERS:
            raise ValueError(f"Unknown remote provider {self.provider!r}; expected one of {REMOTE_PROVIDERS}")
        object.__setattr__(self, "provider", str(self.provider))  # a Provider StrEnum becomes its plain value

    @property
    def display_url(self) -> str:
        """The address users recognise, for messages. Without its query: messages reach every user of a
        global model, and some gateways take a key there (`?key=…`)."""
        if self.base_url:
            return self.base_url.split("?", 1)[0].split("#", 1)[0]
        return HF_ROUTER_NAME if self.provider == HF_INFERENCE else OPENAI_DEFAULT_BASE_URL


# ----------------------------------------------------------------------------------------------------
# Generation


def chat(
    endpoint: RemoteEndpoint,
    messages: list[dict[str, Any]],
    params: SamplingParams = DEFAULT_SAMPLING,
    tools: list[dict[str, Any]] | None = None,
) -> ChatResult:
    """Generate a whole reply (streamed underneath, so time to first token is measured too)."""
    result = None
    for item in stream_chat(endpoint, messages, params, tools=tools):
        if isinstance(item, ChatResult):
            result = item
    if result is None:  # stream_chat always ends with a result or raises; this guards refactors
        raise ServingError(f"{endpoint.display_url} produced no result")
    return result


def stream_chat(
    endpoint: RemoteEndpoint,
    messages: list[dict[str, Any]],
    params: SamplingParams = DEFAULT_SAMPLING,
    tools: list[dict[str, Any]] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[str | ChatResult]:
    """Yield text pieces as the server streams them, then one final `ChatResult`.

    `should_stop` is polled between chunks; returning True closes the stream (the stop button). Failures
    raise `ServingError` with a message from `describe_error`.
    """
    started = time.perf_counter()
    error: ServingError | None = None
    try:
        with ExitStack() as resources:  # closes the stream and client however the consumer stops
            if endpoint.provider == OPENAI_COMPATIBLE:
                chunks = _open_openai_stream(endpoint, messages, params, tools, resources)
            else:
                chunks = _open_hf_stream(endpoint, messages, params, tools, resources)
            try:
                yield from _collect(chunks, endpoint, messages, tools, should_stop, started)
                return
            except EmptyStreamError:
                getattr(chunks, "close", lambda: None)()  # its connection is done with before the next ask
            # llama.cpp's server (and others) answer a failing streamed request with 200 and an empty
            # stream: its error (e.g. the prompt is longer than the context) only comes back when the same
            # request is asked whole. Asking again also answers when only streaming is broken. (Outside the
            # except block, so the empty stream is not the context of the error the server reports.)
            answer = _ask_whole(endpoint, messages, params, tools, resources)
            yield from _collect(answer, endpoint, messages, tools, should_stop, started)
    except ServingError:
        raise
    except Exception as exc:
        error = serving_error(exc, endpoint)
        if not mentions_key(exc, endpoint):
            raise error from exc
    if error is not None:
        # Raised outside the except block, so not even the implicit __context__ keeps the text with the key.
        raise error


def _collect(
    chunks: Iterable[Any],
    endpoint: RemoteEndpoint,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    should_stop: Callable[[], bool] | None,
    started: float,
) -> Iterator[str | ChatResult]:
    """Stream chunks to pieces and a result (openai's and huggingface_hub's chunks share field names)."""
    pieces: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    first_token_at: float | None = None
    finish_reason: str | None = None
    usage: Any = None
    raw: dict[str, Any] = {"provider": endpoint.provider}
    stopped_early = False
    received = 0
    for chunk in chunks:
        received += 1
        raw["model"] = getattr(chunk, "model", None) or raw.get("model")
        # With include_usage the last chunk carries usage and no choices.
        usage = getattr(chunk, "usage", None) or usage
        for choice in getattr(chunk, "choices", None) or []:
            delta = choice.delta
            piece = whole_text(getattr(delta, "content", None) or "")
            deltas = getattr(delta, "tool_calls", None) or []
            if (piece or deltas) and first_token_at is None:
                first_token_at = time.perf_counter()
            if piece:
                pieces.append(piece)
                yield piece
            _merge_tool_call_deltas(calls, deltas if isinstance(deltas, list) else [deltas])
            reason = getattr(choice, "finish_reason", None)
            finish_reason = reason if isinstance(reason, str) and reason else finish_reason
        if should_stop is not None and should_stop():
            stopped_early = True
            finish_reason = "stopped"
            break
    if received == 0:
        # Both clients skip lines that are not `data: {...}` events, so an HTML page or plain text answer
        # arrives as an empty stream rather than an error.
        raise EmptyStreamError(
            f"The server's answer was not JSON: {endpoint.display_url} sent no events. {NOT_OPENAI}"
        )
    text = "".join(pieces)
    streamed_calls = [calls[i] for i in sorted(calls)]
    tool_calls = parse_openai_tool_calls(streamed_calls)
    if not tool_calls and tools:
        # Servers without tool-call parsing (llama.cpp's server with a plain chat template) return the
        # model's `<tool_call>` text as content.
        tool_calls = parse_tool_calls(text)
    prompt_tokens = _token_count(getattr(usage, "prompt_tokens", None))
    completion_tokens = _token_count(getattr(usage, "completion_tokens", None))
    estimated = not prompt_tokens or completion_tokens is None
    if estimated:
        prompt_tokens, completion_tokens = _estimate_usage(messages, text, calls)
    finished = time.perf_counter()
    yield ChatResult(
        text=text,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_s=finished - started,
        time_to_first_token_s=(first_token_at - started) if first_token_at else None,
        finish_reason=finish_reason,
        usage_estimated=estimated,
        stopped_early=stopped_early,
        tool_calls=tool_calls,
        raw=raw,
        broken_tool_calls=unreadable_openai_tool_calls(streamed_calls),
    )


def _ask_whole(
    endpoint: RemoteEndpoint,
    messages: list[dict[str, Any]],
    params: SamplingParams,
    tools: list[dict[str, Any]] | None,
    resources: ExitStack,
) -> list[Any]:
    """The same request without streaming, as one chunk shaped like a streamed one (for `_collect`)."""
    import httpx2

    if endpoint.provider == OPENAI_COMPATIBLE:
        client = resources.enter_context(_openai_client(endpoint))
        completion = client.chat.completions.create(**_openai_request(endpoint, messages, params, tools))
    else:
        client = resources.enter_context(_hf_client(endpoint))
        with _hf_guarded(endpoint):
            try:
                completion = client.chat_completion(messages, **_hf_request(endpoint, params, tools))
            except (httpx2.ReadError, httpx2.RemoteProtocolError):
                # huggingface_hub's shared pool may hand out the connection the server reset after the
                # broken stream: once more, on a fresh connection.
                completion = client.chat_completion(messages, **_hf_request(endpoint, params, tools))
    choices = [
        SimpleNamespace(delta=choice.message, finish_reason=choice.finish_reason)
        for choice in getattr(completion, "choices", None) or []
    ]
    model, usage = getattr(completion, "model", None), getattr(completion, "usage", None)
    return [SimpleNamespace(model=model, usage=usage, choices=choices)]


def _merge_tool_call_deltas(calls: dict[int, dict[str, Any]], deltas: list[Any]) -> None:
    """Assemble streamed tool calls: a call's first delta has its id and name, later ones argument text.

    Servers differ on the name: most send it whole, once; some split it across deltas (always before the
    arguments, since the model writes the name first); some repeat the whole name in every delta. A name
    that arrives with or after argument text is therefore a repeat: from then on the call's name is that
    whole name, never a concatenation (so a split "a" + "a" still reads "aa").
    """
    for delta in deltas:
        index = getattr(delta, "index", None)
        index = index if isinstance(index, int) else len(calls)
        call = calls.setdefault(
            index, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
        )
        if getattr(delta, "id", None):
            call["id"] = call_id(delta.id)
        function = getattr(delta, "function", None)
        if function is None:
            continue
        name = getattr(function, "name", None)
        arguments = getattr(function, "arguments", None)
        name = whole_text(name) if isinstance(name, str) else name
        arguments = whole_text(arguments) if isinstance(arguments, str) else arguments
        if isinstance(name, str) and name:
            repeated = bool(call["function"]["arguments"] or arguments) and bool(call["function"]["name"])
            call["function"]["name"] = name if repeated else call["function"]["name"] + name
        if isinstance(arguments, str):
            call["function"]["arguments"] += arguments
        elif isinstance(arguments, dict):  # TGI has sent parsed arguments instead of text
            call["function"]["arguments"] = arguments


def _token_count(value: Any) -> int | None:
    """A server's token count when it is one (a whole number a database column holds); else None, and
    the count is estimated: a text such as "12 tokens" or a negative number broke Analytics' sums."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31:
        return value
    return None


def _estimate_usage(
    messages: list[dict[str, Any]], text: str, calls: dict[int, dict[str, Any]]
) -> tuple[int, int]:
    """About four characters per token, for servers that stream no usage (llama.cpp's server, older vLLM)."""
    prompt_chars = sum(len(str(message.get("content") or "")) for message in messages)
    prompt_tokens = prompt_chars // 4 + 4 * len(messages)  # plus the chat template's per-turn tokens
    answer_chars = len(text) + sum(len(str(call["function"]["arguments"])) for call in calls.values())
    completion_tokens = max(1, answer_chars // 4) if answer_chars else 0
    return prompt_tokens, completion_tokens


# ----------------------------------------------------------------------------------------------------
# OpenAI-compatible servers


def _openai_client(endpoint: RemoteEndpoint) -> Any:
    import openai

    return openai.OpenAI(
        # Always explicit, so this server's OPENAI_BASE_URL / OPENAI_API_KEY never apply to a user's endpoint.
        base_url=endpoint.base_url or OPENAI_DEFAULT_BASE_URL,
        api_key=endpoint.api_key or "not-needed",
        timeout=endpoint.timeout_s,
        max_retries=0,  # a retry doubles the wait on a dead server; the user retries with a click
        http_client=guarded_http_client(endpoint.allow_private, endpoint.timeout_s),
        # Nor the server's OPENAI_ORG_ID / OPENAI_PROJECT_ID, which would otherwise go to any URL.
        default_headers={"OpenAI-Organization": openai.omit, "OpenAI-Project": openai.omit},
    )


def _openai_request(
    endpoint: RemoteEndpoint,
    messages: list[dict[str, Any]],
    params: SamplingParams,
    tools: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "model": endpoint.model_id,
        "messages": messages,
        "temperature": params.temperature,
        "top_p": params.top_p,
        # `max_tokens`, not `max_completion_tokens`: vLLM, Ollama and llama.cpp's server all read this one.
        "max_tokens": params.max_tokens,
    }
    if params.seed is not None:
        request["seed"] = params.seed
    request.update(_stop_and_penalties(params))
    if tools:
        request["tools"] = tools
        if params.tool_choice is not None:
            request["tool_choice"] = params.tool_choice
    return request


def _stop_and_penalties(params: SamplingParams) -> dict[str, Any]:
    """Only what was set: some OpenAI-compatible servers refuse fields they do not know."""
    extra: dict[str, Any] = {}
    if params.stop:
        extra["stop"] = list(params.stop)
    if params.presence_penalty:
        extra["presence_penalty"] = params.presence_penalty
    if params.frequency_penalty:
        extra["frequency_penalty"] = params.frequency_penalty
    return extra


def _open_openai_stream(
    endpoint: RemoteEndpoint,
    messages: list[dict[str, Any]],
    params: SamplingParams,
    tools: list[dict[str, Any]] | None,
    resources: ExitStack,
) -> Iterable[Any]:
    import openai

    client = resources.enter_context(_openai_client(endpoint))
    request = _openai_request(endpoint, messages, params, tools)
    try:
        stream = client.chat.completions.create(
            **request, stream=True, stream_options={"include_usage": True}
        )
    except openai.BadRequestError as exc:
        # A few servers reject the (newer) stream_options field outright: ask again without it, and the
        # token counts are estimated instead.
        if "stream_options" not in server_text(exc) and "include_usage" not in server_text(exc):
            raise
        stream = client.chat.completions.create(**request, stream=True)
    resources.callback(stream.close)
    _require_json(stream.response.headers.get("content-type"), endpoint)
    return stream


def _require_json(content_type: str | None, endpoint: RemoteEndpoint) -> None:
    """Refuse an HTML login page or a plain-text answer by content type, before parsing fails obscurely."""
    content_type = (content_type or "").split(";")[0].strip().lower()
    if content_type and not content_type.endswith(("json", "event-stream")):
        raise NotJSONError(
            f"The server's answer was not JSON ({content_type}) from {endpoint.display_url}. {NOT_OPENAI}"
        )


def _test_openai(endpoint: RemoteEndpoint) -> str:
    """List the server's models and check ours is there; servers without a model list get a 1-token chat."""
    import openai

    with _openai_client(endpoint) as client:
        try:
            listing = client.models.with_raw_response.list()
            _require_json(listing.headers.get("content-type"), endpoint)
            offered = [model.id for model in listing.parse().data]
        except openai.APIStatusError as exc:
            if exc.status_code not in (404, 405, 501):
                raise
            offered = []
        if offered and endpoint.model_id not in offered:
            shown = ", ".join(offered[:LISTED_MODELS_LIMIT])
            if len(offered) > LISTED_MODELS_LIMIT:
                shown += ", …"
            raise ModelNotOfferedError(
                f"The server does not offer model '{endpoint.model_id}'. It offers: {shown}."
            )
        if offered:
            return f"Connected: {endpoint.display_url} offers model '{endpoint.model_id}'."
        client.chat.completions.create(**_openai_request(endpoint, CONNECTION_TEST_MESSAGES, ONE_TOKEN, None))
        return f"Connected: model '{endpoint.model_id}' answered."


# ----------------------------------------------------------------------------------------------------
# Hugging Face: Inference Providers (router) or a dedicated Inference Endpoint / TGI URL
#
# InferenceClient sends everything through huggingface_hub's one process-wide httpx2 session (follows up to
# 20 redirects) and takes no per-client transport. So a request hook on that session checks every hop while
# this thread is inside one of our calls (a context variable), and does nothing for other Hub traffic (model
# downloads). Unlike the OpenAI path it cannot pin the connection to the checked address, so a DNS answer
# that changes between check and connect (rebinding) is not caught there.

_HF_GUARD: ContextVar[bool | None] = ContextVar("toolsmith_hf_url_guard", default=None)
_HF_HOOK_LOCK = threading.Lock()


def _hf_url_guard_hook(request: Any) -> None:
    allow_private = _HF_GUARD.get()
    if allow_private is not None:
        check_url(str(request.url), allow_private)


@contextmanager
def _hf_guarded(endpoint: RemoteEndpoint) -> Iterator[None]:
    """Check every request (and redirect hop) huggingface_hub sends inside the block."""
    from huggingface_hub.utils import get_session

    session = get_session()  # recreated after fork or set_client_factory: install the hook each time
    with _HF_HOOK_LOCK:
        hooks = session.event_hooks
        if _hf_url_guard_hook not in hooks["request"]:
            session.event_hooks = {**hooks, "request": [*hooks["request"], _hf_url_guard_hook]}
    token = _HF_GUARD.set(endpoint.allow_private)
    try:
        yield
    finally:
        _HF_GUARD.reset(token)


def _hf_client(endpoint: RemoteEndpoint) -> Any:
    from huggingface_hub import InferenceClient

    if endpoint.base_url:
        check_url(endpoint.base_url, endpoint.allow_private)
    elif not endpoint.api_key:
        raise ServingError(f"{HF_ROUTER_NAME} need a Hugging Face access token (hf_…) as the API key.")
    # Without a key huggingface_hub would send this server's own HF token (HF_TOKEN or the cached login)
    # to the user's URL; a None header is dropped before sending.
    headers: dict[str, Any] = {} if endpoint.api_key else {"authorization": None}
    if endpoint.base_url:
        # Dedicated endpoint or TGI: the client appends /v1/chat/completions (or /chat/completions when the
        # URL already ends in /v1); model_id is passed per call and only fills the payload's "model".
        return InferenceClient(
            base_url=endpoint.base_url, token=endpoint.api_key, timeout=endpoint.timeout_s, headers=headers
        )
    return InferenceClient(model=endpoint.model_id, token=endpoint.api_key, timeout=endpoint.timeout_s)


def _hf_request(
    endpoint: RemoteEndpoint, params: SamplingParams, tools: list[dict[str, Any]] | None
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_tokens,
        "seed": params.seed,
        "tools": tools or None,
        **_stop_and_penalties(params),
    }
    if tools and isinstance(params.tool_choice, str):  # huggingface_hub takes the named choices
        request["tool_choice"] = params.tool_choice
    if endpoint.base_url:
        request["model"] = endpoint.model_id
    return request


def _open_hf_stream(
    endpoint: RemoteEndpoint,
    messages: list[dict[str, Any]],
    params: SamplingParams,
    tools: list[dict[str, Any]] | None,
    resources: ExitStack,
) -> Iterable[Any]:
    client = resources.enter_context(_hf_client(endpoint))
    # The request and every redirect happen inside this call; reading the stream afterwards sends nothing.
    with _hf_guarded(endpoint):
        return client.chat_completion(
            messages,
            stream=True,
            stream_options={"include_usage": True},
            **_hf_request(endpoint, params, tools),
        )


def _test_hf(endpoint: RemoteEndpoint) -> str:
    with _hf_client(endpoint) as client, _hf_guarded(endpoint):
        client.chat_completion(CONNECTION_TEST_MESSAGES, **_hf_request(endpoint, ONE_TOKEN, None))
    return f"Connected: model '{endpoint.model_id}' answered at {endpoint.display_url}."


# ----------------------------------------------------------------------------------------------------
# Connection test and error messages


def test_connection(endpoint: RemoteEndpoint) -> ConnectionCheck:
    """Reach the server and check the model is there; failures come back as a ConnectionCheck, not raised."""
    started = time.perf_counter()
    try:
        message = _test_openai(endpoint) if endpoint.provider == OPENAI_COMPATIBLE else _test_hf(endpoint)
    except Exception as exc:
        message = describe_error(exc, endpoint)
        return ConnectionCheck(ok=False, message=message, latency_s=time.perf_counter() - started)
    return ConnectionCheck(ok=True, message=message, latency_s=time.perf_counter() - started)
