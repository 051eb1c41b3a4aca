"""Serving layer: one interface to generate from messages, whatever the provider.

Local GGUF models run in-process on llama.cpp (`local.py`); Hugging Face Inference and OpenAI-compatible
endpoints go through their client libraries (`remote.py`). Every provider streams text pieces and ends
with a `ChatResult` (text, tool calls, token usage, latency, time to first token).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from flask import current_app

from app.serving.tool_calls import fold_tools_into_messages, parse_tool_calls
from app.serving.types import (
    ChatResult,
    ConnectionCheck,
    PromptTooLong,
    RemoteStatusError,
    SamplingParams,
    ServingError,
    ToolCall,
)

if TYPE_CHECKING:
    from app.models import LLMModel
    from app.serving.remote import RemoteEndpoint

__all__ = [
    "ChatResult",
    "ConnectionCheck",
    "SamplingParams",
    "PromptTooLong",
    "RemoteStatusError",
    "ServingError",
    "ToolCall",
    "check_connection",
    "generate",
    "local_models",
    "stream_generate",
    "warm",
]


def local_models():
    """This process's one `LocalModelHolder`, sized from config (created on first use)."""
    from app.serving.local import LocalModelHolder

    holder = current_app.extensions.get("toolsmith_local_models")
    if holder is None:
        config = current_app.config
        holder = LocalModelHolder(
            max_loaded=config["MAX_LOADED_MODELS"],
            n_threads=config["LLAMA_THREADS"],
            n_ctx=config["LLAMA_CONTEXT"],
            prompt_cache_bytes=config["LLAMA_PROMPT_CACHE_MB"] * 1024**2,
        )
        current_app.extensions["toolsmith_local_models"] = holder
    return holder


def user_may_use_private_endpoints(user) -> bool:
    """The one rule for loopback / private addresses: admins, or everyone when the operator allows it."""
    return bool(user and user.is_admin) or current_app.config["ALLOW_PRIVATE_ENDPOINTS"]


def private_endpoints_allowed(model: LLMModel) -> bool:
    """A global model was set up by an admin; a user's model gets its owner's rights."""
    if model.owner_id is None:
        return True
    from app.extensions import db
    from app.models import User

    return user_may_use_private_endpoints(db.session.get(User, model.owner_id))


def endpoint_for(model: LLMModel, timeout_s: float | None = None) -> RemoteEndpoint:
    from app.crypto import SecretDecryptionError
    from app.serving.remote import RemoteEndpoint

    try:
        api_key = model.api_key()
    except SecretDecryptionError:
        raise ServingError(
            "This model's stored API key cannot be decrypted with the server's keys (were they changed "
            "without `flask rotate-keys`?): enter the key again in the model's settings."
        ) from None
    return RemoteEndpoint(
        provider=model.provider,
        base_url=model.base_url or None,
        model_id=model.model_id or "",
        api_key=api_key,
        allow_private=private_endpoints_allowed(model),
        timeout_s=timeout_s or current_app.config["REMOTE_TIMEOUT_SECONDS"],
    )


def stream_generate(
    model: LLMModel,
    messages: list[dict[str, Any]],
    params: SamplingParams | None = None,
    tools: list[dict[str, Any]] | None = None,
    should_stop: Callable[[], bool] | None = None,
    grammar: Any = None,
) -> Iterator[str | ChatResult]:
    """Yield text pieces, then one `ChatResult` whose `tool_calls` are parsed whatever the provider.

    Local models always get the tools (folded into the system turn when their template cannot lay them
    out); a remote model without native tool support gets them as text in the system turn and its calls
    are parsed from the reply. `grammar` (a `LlamaGrammar`) constrains local decoding only.
    """
    from app.models import Provider

    params = params or SamplingParams(max_tokens=model.max_tokens)
    tools = tools or None
    if model.provider == Provider.LOCAL_GGUF:
        if not model.gguf_path:
            raise ServingError("This local model has no GGUF file.")
        try:
            items = local_models().stream_chat(
                model.gguf_path, messages, params, tools=tools, grammar=grammar, should_stop=should_stop
            )
            for item in items:
                # Only when tools were offered: a JSON answer with a "name" key is not a call otherwise.
                if isinstance(item, ChatResult) and not item.tool_calls and tools:
                    item.tool_calls = parse_tool_calls(item.text)
                yield item
        except FileNotFoundError as exc:
            raise ServingError(f"The model file is missing: {model.gguf_path}") from exc
        except ValueError as exc:  # llama.cpp refuses prompts longer than the context
            if "context window" in str(exc):
                raise PromptTooLong(f"The conversation is too long for this model: {exc}.") from exc
            raise ServingError(f"llama.cpp refused the request: {exc}") from exc
        return
    from app.serving import remote

    offered = bool(tools)
    if tools and not model.supports_tools:
        messages, tools = fold_tools_into_messages(messages, tools)
    for item in remote.stream_chat(
        endpoint_for(model), messages, params, tools=tools, should_stop=should_stop
    ):
        if isinstance(item, ChatResult) and not item.tool_calls and offered:
            item.tool_calls = parse_tool_calls(item.text)  # models that write calls as text
        yield item


def warm(model: LLMModel, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int:
    """Have a local model read a conversation's prompt so far, ahead of its next message (see
    `LocalModelHolder.warm`); how many tokens it read. Remote models, and any failure, read nothing:
    the reply itself will report what is wrong."""
    from app.models import Provider

    if model.provider != Provider.LOCAL_GGUF or not model.gguf_path:
        return 0
    try:
        return local_models().warm(model.gguf_path, messages, tools or None)
    except (FileNotFoundError, ValueError, RuntimeError):
        return 0


def generate(
    model: LLMModel,
    messages: list[dict[str, Any]],
    params: SamplingParams | None = None,
    tools: list[dict[str, Any]] | None = None,
    grammar: Any = None,
) -> ChatResult:
    """A whole reply (the streaming path, collected)."""
    result = None
    for item in stream_generate(model, messages, params, tools, grammar=grammar):
        if isinstance(item, ChatResult):
            result = item
    if result is None:
        raise ServingError("The model produced no result.")
    return result


def check_connection(model: LLMModel) -> ConnectionCheck:
    """ "Test connection": a real, short request. Never raises for an expected failure."""
    from app.models import Provider

    if model.provider != Provider.LOCAL_GGUF:
        from app.serving import remote

        try:
            endpoint = endpoint_for(model, current_app.config["CONNECTION_TEST_TIMEOUT_SECONDS"])
        except ServingError as exc:
            return ConnectionCheck(ok=False, message=str(exc))
        return remote.test_connection(endpoint)
    started = time.perf_counter()
    try:
        result = local_models().chat(
            model.gguf_path or "", [{"role": "user", "content": "Hi"}], SamplingParams(0.0, 1.0, 1)
        )
    except FileNotFoundError:
        return ConnectionCheck(False, f"The model file is missing: {model.gguf_path}")
    except (ValueError, RuntimeError) as exc:  # llama.cpp cannot load the file
        return ConnectionCheck(False, f"llama.cpp could not load the model: {exc}")
    elapsed = time.perf_counter() - started
    return ConnectionCheck(
        True,
        f"Loaded in llama.cpp and generated {result.completion_tokens} token(s) in {elapsed:.2f} s.",
        elapsed,
    )
