"""`GET /v1/models` and `POST /v1/chat/completions`, shaped like OpenAI's, so any OpenAI client works.

Authentication is a bearer API token only (the signed-in session is ignored, so no CSRF token is
needed and a page can never call this with the visitor's cookie). Models are the token owner's enabled
ones plus the global ones, named as on the Models page. Local GGUF models that are offered tools decode
with the tools' grammar, as the chat does: `tool_choice` "required" (or one named function) forces a
valid call, "auto" allows text or one valid call. Their calls come back as OpenAI `tool_calls`.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

from flask import Response, current_app, g, jsonify, request, stream_with_context
from sqlalchemy.exc import SQLAlchemyError

from app.api import bp
from app.api.schema import ChatRequest, ValidationError, describe, first_param
from app.api.tokens import user_for_token
from app.extensions import db, limiter
from app.json_input import loads as loads_json
from app.json_input import lone_surrogate_text, nesting_depth
from app.models import ApiRequest, LLMModel, Provider
from app.ownership import MAX_ROW_ID, visible_to
from app.serving import (
    ChatResult,
    PromptTooLong,
    RemoteStatusError,
    SamplingParams,
    ServingError,
    generate,
    stream_generate,
)
from app.serving.grammar import GrammarError, json_grammar, local_tool_grammar
from app.serving.tool_calls import TOOL_CALL_CLOSE, TOOL_CALL_OPEN, unparsed_tool_calls, unreadable_calls
from app.serving.tool_schema import MAX_SCHEMA_DEPTH, check_tool_call, validate_tool_definitions

REJECTED_REQUEST_STATUSES = (400, 413, 422)  # a remote server's "your request is wrong"
# The name and the arguments' text of a `<tool_call>` block that does not parse (cut off, broken JSON).
_BLOCK_NAME = re.compile(r'"name"\s*:\s*"((?:[^"\\]|\\.)+)"')
_BLOCK_ARGUMENTS = re.compile(r'"arguments"\s*:\s*(.*)\Z', re.DOTALL)


def error(
    status: int,
    message: str,
    kind: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
):
    """OpenAI's error body, which its clients turn into a readable exception."""
    return jsonify({"error": {"message": message, "type": kind, "param": param, "code": code}}), status


def _rate_key() -> str:
    """The token `authenticate` found (it runs first), not the header's spelling: `bEaReR tok  ` is the
    same token as `Bearer tok` and must share its limit."""
    token = g.get("api_token")
    if token is not None:
        return f"api:token:{token.id}"
    header = request.headers.get("Authorization", "")
    return "api:" + hashlib.sha256(header.encode()).hexdigest()[:24]


def _rate_limit() -> str:
    return current_app.config["API_RATE_LIMIT"]


@bp.before_request
def authenticate():
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return error(401, "Send an API token: 'Authorization: Bearer ts_…' (create one in your account "
                          "settings).", "authentication_error", "invalid_api_key")  # fmt: skip
    found = user_for_token(token.strip())
    if found is None:
        return error(401, "Invalid API token.", "authentication_error", "invalid_api_key")
    g.api_user, g.api_token = found
    return None


@bp.route("/models")
@limiter.limit(_rate_limit, key_func=_rate_key)
def models():
    listed, named = [], set()
    for model in _usable_models():
        # A name already listed (the user's own model shadows a global one of that name) is taken by
        # that model: this one is listed, and reached, by its numeric id, so every id is unique.
        listed.append(_model_object(model, model.name if model.name not in named else str(model.id)))
        named.add(model.name)
    return jsonify({"object": "list", "data": listed})


@bp.route("/models/<path:model>")
@limiter.limit(_rate_limit, key_func=_rate_key)
def model_detail(model: str):
    """One model (the official client's `models.retrieve`); a model the token cannot use is not found."""
    found = _model_named(model[:200])
    if found is None:
        return error(404, f"The model '{model[:200]}' does not exist or you cannot use it.",
                     "invalid_request_error", "model_not_found")  # fmt: skip
    return jsonify(_model_object(found, model if found.name != model else None))  # found by its id


def _model_object(model: LLMModel, model_id: str | None = None) -> dict[str, Any]:
    return {
        "id": model_id or model.name,
        "object": "model",
        # Stored as naive UTC: `.timestamp()` would read it as the server's local time.
        "created": calendar.timegm(model.created_at.utctimetuple()),
        "owned_by": "you" if model.owner_id else "toolsmith",
    }


@bp.route("/chat/completions", methods=["POST"])
@limiter.limit(_rate_limit, key_func=_rate_key)
def chat_completions():
    try:  # not request.get_json: its parse lets a RecursionError through (a 500 for `[[[[…`)
        body = loads_json(request.get_data(as_text=True)) if request.is_json else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return error(400, "The body must be a JSON object (Content-Type: application/json).")
    if lone_surrogate_text(body) is not None:
        return error(400, "The body holds a \\u escape for half a UTF-16 pair (\\ud800–\\udfff without its "
                          "partner), which no text can hold.")  # fmt: skip
    try:
        chat = ChatRequest.model_validate(body)
    except ValidationError as exc:
        return error(400, describe(exc), param=first_param(exc))
    model = _model_named(chat.model)
    if model is None:
        return error(
            404, f"No model named {chat.model!r} (GET /v1/models lists yours).", code="model_not_found"
        )
    tools, tool_mode, problem = _tools(chat)
    if problem:
        return error(400, problem)
    json_grammar_, problem = _response_grammar(chat, model, tools)
    if problem:
        return error(400, problem, param="response_format")
    messages = [message.as_serving() for message in chat.messages]
    params = SamplingParams(
        temperature=chat.temperature,
        top_p=chat.top_p,
        max_tokens=chat.max_completion_tokens or chat.max_tokens or model.max_tokens,
        seed=chat.seed,
        tool_choice=chat.tool_choice if tools else None,  # remote models honour it natively
        # A forced call is the whole reply: a stop sequence could only cut it (a string value, say).
        stop=() if tool_mode == "required" else tuple(chat.stop or ()),
        presence_penalty=chat.presence_penalty,
        frequency_penalty=chat.frequency_penalty,
    )
    # JSON asked for: its grammar; else the tools' (none without tools).
    grammar = json_grammar_ or local_tool_grammar(model, tools, tool_mode)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    log = RequestLog(model, tools, grammar is not None, chat.stream)
    if chat.stream:
        items = stream_generate(model, messages, params, tools or None, grammar=grammar)
        try:  # the first piece before any byte: a prompt too long, a remote 429 is still a real status
            first = next(items, None)
        except ServingError as exc:
            log.write(failure=str(exc))
            return _serving_error_response(exc)
        except Exception as exc:  # llama.cpp or a client library failing outright: a 502, logged
            current_app.logger.exception("A streamed API reply failed to start")
            reason = f"The model failed while starting ({type(exc).__name__})."
            log.write(failure=reason)
            return error(502, reason, "api_error", "model_error")
        items = _after(first, items)
        if chat.wants_json:
            items = _json_only(items)
        chunks = _sse(
            items, completion_id, model.name, log,
            json_mode=chat.wants_json, tools_offered=bool(tools), usage_chunk=chat.wants_usage_chunk,
        )  # fmt: skip
        return Response(stream_with_context(chunks), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})  # fmt: skip
    try:
        result = generate(model, messages, params, tools or None, grammar=grammar)
    except ServingError as exc:
        log.write(failure=str(exc))
        return _serving_error_response(exc)
    if chat.wants_json:
        result.tool_calls = []  # a JSON answer is content, even one shaped like a call
    log.write(result)
    return jsonify(_completion(result, completion_id, model.name, tools_offered=bool(tools)))


def _after(first: str | ChatResult | None, items: Iterator[str | ChatResult]) -> Iterator[str | ChatResult]:
    """`items` again with the `first` piece already taken from it put back in front."""
    try:
        if first is not None:
            yield first
        yield from items
    finally:
        items.close()


def _serving_error_kind(exc: ServingError) -> tuple[int, str, str]:
    """(status, OpenAI error type, code) of a failed generation. What the caller must fix is a 4xx, which
    clients do not retry as they retry a 5xx: a prompt past a local model's context, or a request a remote
    server rejected as malformed or too long (its own code, e.g. "context_length_exceeded", passed on). A
    remote server's rate limit is a 429. A refused key or a missing model is the studio's setup: a 502."""
    if isinstance(exc, PromptTooLong):
        return 400, "invalid_request_error", "context_length_exceeded"
    if isinstance(exc, RemoteStatusError):
        if exc.status in REJECTED_REQUEST_STATUSES:
            return 400, "invalid_request_error", exc.code or "invalid_request"
        if exc.status == 429:
            return 429, "requests", exc.code or "rate_limit_exceeded"
    return 502, "api_error", "model_error"


def _serving_error_response(exc: ServingError):
    status, kind, code = _serving_error_kind(exc)
    param = "messages" if code == "context_length_exceeded" else None
    body, status = error(status, str(exc), kind, code, param)
    retry_after = getattr(exc, "retry_after", None)
    if status == 429 and retry_after:
        body.headers["Retry-After"] = retry_after
    return body, status


class RequestLog:
    """Writes the request's figures (tokens, latency, tool-call validity) for the Analytics page."""

    def __init__(self, model: LLMModel, tools: list[dict[str, Any]], constrained: bool, streamed: bool):
        self.model_id, self.model_name = model.id, model.name
        self.tools, self.constrained, self.streamed = tools, constrained, streamed
        self.user_id, self.token_id = g.api_user.id, g.api_token.id

    def write(
        self, result: ChatResult | None = None, failure: str | None = None, stopped: bool = False
    ) -> None:
        calls = result.tool_calls if result is not None else []
        # Calls the model tried and botched (broken JSON, cut off) count as invalid, not as no call.
        broken = len(_broken_calls(result, bool(self.tools))) if result is not None else 0
        valid = None
        if calls or broken:
            valid = (
                bool(self.tools)
                and not broken
                and all(not check_tool_call(self.tools, c.name, c.arguments) for c in calls)
            )
        row = ApiRequest(
            owner_id=self.user_id,
            token_id=self.token_id,
            model_id=self.model_id,
            model_name=self.model_name[:120],
            status="error" if failure else "stopped" if stopped else "complete",
            streamed=self.streamed,
            error=failure[:500] if failure else None,
            tool_calls=len(calls) + broken,
            tool_calls_valid=valid,
            constrained=self.constrained if self.tools else None,
        )
        if result is not None:
            row.prompt_tokens, row.completion_tokens = result.prompt_tokens, result.completion_tokens
            row.tokens_estimated = result.usage_estimated
            row.latency_ms = result.latency_s * 1000
            ttft = result.time_to_first_token_s
            row.ttft_ms = ttft * 1000 if ttft is not None else None
        try:
            db.session.add(row)
            db.session.commit()
        except SQLAlchemyError:  # the answer matters more than its statistics
            db.session.rollback()
            current_app.logger.exception("Could not record an API request")


def _usable_models() -> list[LLMModel]:
    query = visible_to(LLMModel, g.api_user.id).where(LLMModel.enabled.is_(True))
    # The user's own model first when a name is shared with a global one.
    query = query.order_by(LLMModel.name, LLMModel.owner_id.is_(None), LLMModel.id)
    return list(db.session.execute(query).scalars())


def _model_named(name: str) -> LLMModel | None:
    """By name (the user's own first when a global model has the same name), or by id."""
    query = visible_to(LLMModel, g.api_user.id).where(LLMModel.enabled.is_(True))
    by_name = query.where(LLMModel.name == name).order_by(LLMModel.owner_id.is_(None), LLMModel.id)
    model = db.session.execute(by_name.limit(1)).scalars().first()
    if model is None and name.isascii() and name.isdecimal() and int(name) <= MAX_ROW_ID:  # not "²"
        model = db.session.execute(query.where(LLMModel.id == int(name))).scalars().first()
    return model


def _tools(chat: ChatRequest) -> tuple[list[dict[str, Any]], str, str | None]:
    """The offered tools (validated), the grammar mode they call for, or a problem to report."""
    if not chat.tools and chat.tool_choice not in (None, "none", "auto"):
        return [], "none", "tool_choice asks for a call, but the request offers no tools."
    if not chat.tools or chat.tool_choice == "none":
        return [], "none", None
    tools, problems = validate_tool_definitions(chat.tools)
    if problems:
        return [], "none", "Invalid tools: " + "; ".join(problems[:5])
    forced = chat.forced_function()
    if forced is not None:
        tools = [tool for tool in tools if tool["function"]["name"] == forced]
        if not tools:
            return [], "none", f"tool_choice names {forced!r}, which is not among the tools."
        return tools, "required", None
    return tools, "required" if chat.tool_choice == "required" else "auto", None


def _response_grammar(
    chat: ChatRequest, model: LLMModel, tools: list[dict[str, Any]]
) -> tuple[Any, str | None]:
    """The grammar `response_format` asks for (JSON, or JSON matching a schema), or why it cannot be kept."""
    if not chat.wants_json:
        return None, None
    if model.provider != Provider.LOCAL_GGUF:
        return None, (
            "response_format is kept here by grammar-constrained decoding, which only local (GGUF) models "
            f"have; {model.name!r} is a remote model."
        )
    if tools:
        return None, "response_format with tools is not supported: ask for a tool call or for JSON, not both."
    schema = None
    if chat.response_format.type == "json_schema":
        fmt = chat.response_format.json_schema
        if fmt is None or fmt.schema_ is None:
            return None, "response_format.json_schema.schema is required when the type is json_schema."
        schema = fmt.schema_
        if nesting_depth(schema) > MAX_SCHEMA_DEPTH:
            return None, f"response_format: the schema is nested deeper than {MAX_SCHEMA_DEPTH} levels."
    try:
        return json_grammar(schema), None
    except GrammarError as exc:
        return None, f"response_format: {exc}"


def _json_only(items: Iterator[str | ChatResult]) -> Iterator[str | ChatResult]:
    """The stream with calls dropped from its result: a JSON answer is content."""
    try:
        for item in items:
            if isinstance(item, ChatResult):
                item.tool_calls = []
            yield item
    finally:
        items.close()  # releases the local model at once when the client goes away


def _broken_calls(result: ChatResult, tools_offered: bool) -> list[str]:
    """Calls the reply tried and botched: a remote server's unreadable structured calls, and `<tool_call>`
    blocks in the text that hold no readable call (only when tools were offered: else it is just text)."""
    return unreadable_calls(result.text, result.broken_tool_calls) if tools_offered else []


def _message(result: ChatResult, tools_offered: bool) -> tuple[dict[str, Any], str]:
    """The assistant message and finish reason, calls as OpenAI `tool_calls` and out of the text.

    A call the reply botched is passed on as OpenAI would pass it, not as `<tool_call>` markup in the
    content (which an agent would take for its final answer): a remote server's unreadable call with its
    arguments' raw text, and a `<tool_call>` block that does not parse (cut at max tokens, broken JSON)
    with the arguments' text as far as it goes. Cut off, the finish reason stays "length".
    """
    if not tools_offered:  # no call was asked for: whatever the text holds is the answer
        return {"role": "assistant", "content": result.text or None}, _end_reason(result)
    calls = [_call(c.id, c.name, json.dumps(c.arguments, ensure_ascii=False)) for c in result.tool_calls]
    calls += [_call(call.get("id"), call["name"], call["arguments"]) for call in result.broken_tool_calls]
    # Only the last block can be cut (no closing tag after it): its arguments end where the model stopped.
    cut_inside_a_call = result.text.rfind(TOOL_CALL_OPEN) > result.text.rfind(TOOL_CALL_CLOSE)
    blocks = unparsed_tool_calls(result.text)
    botched = [
        _botched_call(block, closed=not (cut_inside_a_call and index == len(blocks) - 1))
        for index, block in enumerate(blocks)
    ]
    calls += [call for call in botched if call is not None]
    text = result.text
    if TOOL_CALL_OPEN in text:
        text = text[: text.index(TOOL_CALL_OPEN)].strip()
    elif calls and text.strip().startswith(("{", "[")):
        text = ""  # the whole reply was the call, as bare JSON
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    if calls and not cut_inside_a_call:
        return message, "tool_calls"
    return message, _end_reason(result)


def _end_reason(result: ChatResult) -> str:
    return "length" if result.finish_reason == "length" else "stop"


def _call(call_id: str | None, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id or f"call_{uuid.uuid4().hex[:24]}", "type": "function",
            "function": {"name": name, "arguments": arguments}}  # fmt: skip


def _botched_call(block: str, closed: bool) -> dict[str, Any] | None:
    """A `<tool_call>` block that does not parse, as a call with its arguments' raw text; None when not
    even the function's name was written. `closed`: the block has its closing tag (else it was cut)."""
    name = _BLOCK_NAME.search(block)
    if name is None:
        return None
    arguments = _BLOCK_ARGUMENTS.search(block)
    raw = arguments.group(1).strip() if arguments else ""
    if closed and raw.endswith("}}"):  # the last brace closes the call object, not the arguments
        raw = raw[:-1]
    try:
        function_name = json.loads(f'"{name.group(1)}"')
    except ValueError:
        function_name = name.group(1)
    return _call(None, function_name, raw)


def _usage(result: ChatResult) -> dict[str, int]:
    return {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
            "total_tokens": result.prompt_tokens + result.completion_tokens}  # fmt: skip


def _completion(result: ChatResult, completion_id: str, model_name: str, tools_offered: bool) -> dict:
    message, finish_reason = _message(result, tools_offered)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_name,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
        "usage": _usage(result),
    }


def _sse(
    items: Iterator[str | ChatResult],
    completion_id: str,
    model_name: str,
    log: RequestLog,
    json_mode: bool = False,
    tools_offered: bool = False,
    usage_chunk: bool = False,
) -> Iterator[str]:
    """Text pieces as they come; a call is sent whole at the end (its JSON is only known complete then).

    Usage comes as OpenAI sends it when `stream_options.include_usage` asks: a last chunk with no
    choices, every chunk before it carrying `"usage": null`; else on the finishing chunk (what clients
    that never ask read, the openai SDK's `.stream()` among them)."""
    created = int(time.time())
    body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model_name}

    def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        if usage_chunk:
            extra.setdefault("usage", None)
        return f"data: {json.dumps({**body, 'choices': [choice], **extra}, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    held = ""  # text not sent yet because it is, or may turn into, a `<tool_call>` block
    sent = finished = False
    try:
        for item in items:
            if isinstance(item, ChatResult):
                message, finish_reason = _message(item, tools_offered)
                if message.get("tool_calls"):
                    before = held.split(TOOL_CALL_OPEN, 1)[0].strip() if TOOL_CALL_OPEN in held else ""
                    if before:
                        yield chunk({"content": before})
                    calls = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
                    yield chunk({"tool_calls": calls})
                else:
                    rest = held.split(TOOL_CALL_OPEN, 1)[0] if tools_offered else held
                    if rest:
                        yield chunk({"content": rest})
                if usage_chunk:
                    yield chunk({}, finish_reason)
                    yield f"data: {json.dumps({**body, 'choices': [], 'usage': _usage(item)})}\n\n"
                else:
                    yield chunk({}, finish_reason, usage=_usage(item))
                log.write(item)
                finished = True
                break
            held += item
            holds_calls = tools_offered and not json_mode  # no tools: nothing in the text can be a call
            ready = _sendable(held, at_start=not sent) if holds_calls else len(held)
            if ready:
                yield chunk({"content": held[:ready]})
                held, sent = held[ready:], True
    except ServingError as exc:
        finished = True
        log.write(failure=str(exc))
        _, kind, code = _serving_error_kind(exc)
        body = {"error": {"message": str(exc), "type": kind, "param": None, "code": code}}
        yield f"data: {json.dumps(body)}\n\n"
    except Exception as exc:  # llama.cpp or a client library failing outright: an error event, logged
        finished = True
        current_app.logger.exception("A streamed API reply failed")
        reason = f"The model failed while writing ({type(exc).__name__})."
        log.write(failure=reason)
        body = {"error": {"message": reason, "type": "api_error", "param": None, "code": "model_error"}}
        yield f"data: {json.dumps(body)}\n\n"
    finally:
        getattr(items, "close", lambda: None)()  # a local model's lock goes at once
        if not finished:  # the client went away before the reply ended
            log.write(stopped=True)
    yield "data: [DONE]\n\n"


def _sendable(text: str, at_start: bool) -> int:
    """How much of the held `text` can go out as content now: all of it but a `<tool_call>` block and a
    tail that may still become one (the tag often arrives split, ".<" + "tool" + "_call>"). A reply
    that begins like a bare JSON call is held whole: only the end tells whether it was one."""
    start = text.lstrip()
    if at_start and (not start or start[0] in "{["):
        return 0
    if TOOL_CALL_OPEN in text:
        return text.index(TOOL_CALL_OPEN)
    for overlap in range(min(len(text), len(TOOL_CALL_OPEN) - 1), 0, -1):
        if TOOL_CALL_OPEN.startswith(text[-overlap:]):
            return len(text) - overlap
    return len(text)
