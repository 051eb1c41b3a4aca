"""Running one assistant reply: build the request, stream it, check its tool calls, store the figures.

The reply row is created `pending` by the send; the streaming request claims it (one atomic UPDATE, so a
reconnecting browser never starts a second generation), streams pieces to the page, and always leaves
the row final: complete, stopped (the stop button; the partial text is kept) or error (with the reason).
A page that goes away mid-reply (a reload) does not stop it: the rest is written unsent, and the page
that opens the reply again waits for it and shows it whole.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError

from app.extensions import db
from app.models import ChatMessage, ChatMode, ChatSession, MessageStatus, Provider, utcnow
from app.serving import ChatResult, SamplingParams, ServingError, stream_generate
from app.serving.tool_calls import unreadable_calls

STOP_POLL_SECONDS = 0.2


@dataclass
class ReplyPlan:
    """What goes to the model for one reply."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    params: SamplingParams
    tool_choice: str
    grammar: Any = None
    notes: list[str] = field(default_factory=list)

    @property
    def constrained(self) -> bool:
        return self.grammar is not None


def claim(message_id: int) -> bool:
    """Move a pending reply to streaming; False when another request already took it."""
    result = db.session.execute(
        sa.update(ChatMessage)
        .where(ChatMessage.id == message_id, ChatMessage.status == MessageStatus.PENDING)
        .values(status=MessageStatus.STREAMING, claimed_at=utcnow())
    )
    db.session.commit()
    return result.rowcount == 1


def session_tools(session: ChatSession) -> list[dict[str, Any]]:
    """Chat mode: the attached tools. NL → API mode: the spec's operations, always."""
    if session.mode == ChatMode.API and session.spec is not None:
        from app.openapi.normalise import NormalisedSpec
        from app.openapi.tools import spec_tools

        return spec_tools(NormalisedSpec.from_dict(session.spec.normalised))
    return list(session.tools or [])


def plan_reply(session: ChatSession, reply: ChatMessage) -> ReplyPlan:
    history = [m for m in session.messages if m.id < reply.id and not m.replaced]
    tools = session_tools(session)
    tool_choice = "required" if session.mode == ChatMode.API else session.tool_choice
    if tool_choice == "required" and history and history[-1].role == "tool":
        tool_choice = "auto"  # a result came back: let the model answer in words
    if tool_choice == "none":
        tools = []
    plan = ReplyPlan(
        messages=request_messages(session, history),
        tools=tools,
        params=SamplingParams(
            session.temperature,
            session.top_p,
            session.max_tokens,
            tool_choice=tool_choice if tools else None,  # remote models honour it natively
            # A forced call is the whole reply: a stop sequence could only cut it (NL → API mode too).
            stop=() if tools and tool_choice == "required" else tuple(session.stop_sequences or ()),
            presence_penalty=session.presence_penalty or 0.0,
            frequency_penalty=session.frequency_penalty or 0.0,
        ),
        tool_choice=tool_choice,
    )
    model = session.model
    if tools and session.constrained and model is not None and model.provider == Provider.LOCAL_GGUF:
        from app.serving.grammar import grammar_for

        plan.grammar = grammar_for(tools, "required" if tool_choice == "required" else "auto")
    return plan


def request_messages(session: ChatSession, history: list[ChatMessage]) -> list[dict[str, Any]]:
    """The system prompt and the turns of `history` the model should see, in the serving layer's shape."""
    messages: list[dict[str, Any]] = []
    if session.system_prompt.strip():
        messages.append({"role": "system", "content": session.system_prompt.strip()})
    messages.extend(_as_request_message(m) for m in history if _belongs_in_request(m))
    return _answered_calls_only(messages)


def _answered_calls_only(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each assistant turn keeps only the calls a tool result answers: the user may type on without
    giving every call of a turn its result, and OpenAI refuses a request with an unanswered call (a
    local model would read a call that went nowhere)."""
    for position, message in enumerate(messages):
        if message["role"] != "assistant" or not message.get("tool_calls"):
            continue
        answered = set()
        for later in messages[position + 1 :]:
            if later["role"] != "tool":
                break
            answered.add(later.get("tool_call_id"))
        kept = [call for call in message["tool_calls"] if call["id"] in answered]
        if kept:
            message["tool_calls"] = kept
        else:
            del message["tool_calls"]
            message["content"] = message.get("content") or ""
    return messages


def warm_session(session: ChatSession) -> int:
    """Have the session's local model read the conversation so far (system prompt, tools, turns) while
    the user types the next message; how many tokens it read."""
    from app.serving import warm

    if session.model is None or not session.model.enabled:
        return 0
    history = [m for m in session.messages if not m.replaced]
    tools = [] if session.tool_choice == "none" and session.mode != ChatMode.API else session_tools(session)
    return warm(session.model, request_messages(session, history), tools)


def _belongs_in_request(message: ChatMessage) -> bool:
    if message.role == "assistant":
        return message.status in (MessageStatus.COMPLETE, MessageStatus.STOPPED) and bool(
            message.content or message.tool_calls
        )
    return message.role in ("user", "tool")


def _as_request_message(message: ChatMessage) -> dict[str, Any]:
    """A stored turn in the OpenAI message shape the serving layer takes."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": message.content}
    calls = [call for call in message.tool_calls or [] if not call.get("unparsed")]
    if message.role == "assistant" and calls:
        from app.chat.examples import reply_text

        return {
            "role": "assistant",
            # The calls travel structured: the `<tool_call>` text beside them would make templates
            # that render both (Qwen 2.5, Hermes, llama.cpp's server) show every call twice.
            "content": reply_text(message.content) or None,
            "tool_calls": [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])},
                }
                for call in calls
            ],
        }
    return {"role": message.role, "content": message.content}


class StopPoller:
    """`should_stop` for the serving layer: reads the message's stop flag at most every 0.2 s.

    A fresh connection each time, so a stop committed by another request or process is seen at once.
    """

    def __init__(self, message_id: int, interval_s: float = STOP_POLL_SECONDS):
        self.message_id = message_id
        self.interval_s = interval_s
        self._checked_at = 0.0
        self._stopped = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self._stopped and now - self._checked_at >= self.interval_s:
            self._checked_at = now
            with db.engine.connect() as connection:
                flag = connection.execute(
                    sa.select(ChatMessage.stop_requested).where(ChatMessage.id == self.message_id)
                ).scalar()
            self._stopped = flag is None or bool(flag)  # a deleted reply stops too, freeing the model
        return self._stopped


class WriterHeartbeat:
    """While this request writes a reply, refresh its `claimed_at` every `interval_s` from a thread, so
    a page waiting on it (`await_other_writer`) can tell a slow writer (a long reply, a queue for the
    model) from one whose process died, and give up on the dead one within CHAT_STALE_REPLY_SECONDS.

    Every CHAT_PROGRESS_SECONDS it also stores the text written so far (`pieces`), so a page that opens
    the reply meanwhile (a reload, a second tab) shows it growing instead of a blank "generating…"."""

    def __init__(self, message_id: int, pieces: list[str] | None = None):
        self.message_id = message_id
        self.pieces = pieces if pieces is not None else []
        self.interval_s = current_app.config["CHAT_REPLY_HEARTBEAT_SECONDS"]
        self.progress_s = max(0.05, min(current_app.config["CHAT_PROGRESS_SECONDS"], self.interval_s))
        self._engine = db.engine
        self._logger = current_app.logger
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"reply-{message_id}-heartbeat", daemon=True)

    def __enter__(self) -> WriterHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._done.set()
        self._thread.join()

    def _beat(self) -> None:
        beaten_at = time.monotonic()
        stored = 0  # pieces already stored
        while not self._done.wait(self.progress_s):
            values: dict[str, Any] = {}
            if time.monotonic() - beaten_at >= self.interval_s:
                values["claimed_at"] = utcnow()
                beaten_at = time.monotonic()
            written = len(self.pieces)  # the generator only appends: read the count once, join that many
            if written > stored:
                values["content"] = "".join(self.pieces[:written])
                stored = written
            if not values:
                continue
            try:
                with self._engine.begin() as connection:
                    # Only while still streaming: the final text, committed meanwhile, is never overwritten.
                    still_writing = (ChatMessage.id == self.message_id) & (
                        ChatMessage.status == MessageStatus.STREAMING
                    )
                    connection.execute(sa.update(ChatMessage).where(still_writing).values(**values))
            except sa.exc.SQLAlchemyError:  # a missed beat only makes the reply look older
                self._logger.warning("Could not refresh reply %s's heartbeat", self.message_id, exc_info=True)


def run_reply(message: ChatMessage) -> Iterator[str]:
    """Generate the (claimed) reply, yielding text pieces; the row is final when this ends, however."""
    pieces: list[str] = []
    with WriterHeartbeat(message.id, pieces):
        yield from _write_reply(message, pieces)


def _write_reply(message: ChatMessage, pieces: list[str]) -> Iterator[str]:
    message_id = message.id  # read now: after a rollback, reading it loads the row, which may be gone
    session = message.session
    model = session.model
    finished = False
    if model is None or not model.enabled:
        _finish_error(message, "This session's model is gone or disabled: pick another one in Settings.")
        return
    if session.mode == ChatMode.API and session.spec is None:
        _finish_error(message, "This session's spec was deleted: start a new NL → API session.")
        return
    try:
        plan = plan_reply(session, message)
        message.model_id, message.model_name = model.id, model.name
        db.session.commit()
        items = stream_generate(
            model, plan.messages, plan.params, plan.tools, StopPoller(message.id), grammar=plan.grammar
        )
    except ServingError as exc:
        _finish_error(message, str(exc))
        return
    except Exception as exc:  # a bug must not leave the reply streaming forever
        db.session.rollback()
        if _deleted(message_id):  # its session was deleted before the reply started: nothing to record
            return
        current_app.logger.exception("Reply %s could not start", message.id)
        _finish_error(message, f"The reply could not start ({type(exc).__name__}).")
        return
    try:
        result: ChatResult | None = None
        page_left = False
        for item in items:
            if isinstance(item, ChatResult):
                result = item
                continue
            pieces.append(item)
            if page_left:
                continue
            try:
                yield item
            except GeneratorExit:
                # The page went away mid-reply (a reload, a closed tab): the rest is written all the
                # same, unsent, so the page that opens the reply again (it waits on this writer) shows it
                # whole rather than "stopped" for a Stop nobody pressed. Stop still ends it (StopPoller).
                page_left = True
        if result is None:
            raise ServingError("The model produced no result.")
        _finish(message, result, plan)
        finished = True
    except ServingError as exc:
        _finish_error(message, str(exc), "".join(pieces))
        finished = True
    except Exception as exc:  # llama.cpp or a client library failing outright: an error, with its kind
        db.session.rollback()
        finished = True
        if not _deleted(message_id):
            current_app.logger.exception("Reply %s failed", message_id)
            _finish_error(message, f"The model failed while writing ({type(exc).__name__}).", "".join(pieces))
    finally:
        items.close()  # releases the local model's lock at once, however this ended
        if not finished:
            _finish_stopped(message_id, "".join(pieces))


def _finish(message: ChatMessage, result: ChatResult, plan: ReplyPlan) -> None:
    from app.serving.tool_schema import check_tool_call

    message.content = result.text
    message.status = MessageStatus.STOPPED if result.stopped_early else MessageStatus.COMPLETE
    message.finish_reason = (result.finish_reason or "")[:16] or None
    message.prompt_tokens = result.prompt_tokens
    message.completion_tokens = result.completion_tokens
    message.tokens_estimated = result.usage_estimated
    if result.usage_estimated:
        _recount_tokens(message, plan, result)
    message.latency_ms = round(result.latency_s * 1000, 2)
    ttft = result.time_to_first_token_s
    message.ttft_ms = round(ttft * 1000, 2) if ttft is not None else None
    calls = []
    ids: set[str] = set()
    for index, call in enumerate(result.tool_calls):
        issues = check_tool_call(plan.tools, call.name, call.arguments) if plan.tools else []
        # Each call needs an id of its own for its result: a server that gave two calls one id (or none)
        # gets ours instead.
        own_id = call.id if call.id and call.id not in ids else f"call_{message.id}_{index}"
        ids.add(own_id)
        calls.append(
            {
                "id": own_id,
                "name": call.name,
                "arguments": call.arguments,
                "issues": [{"kind": i.kind, "path": i.path, "message": i.message} for i in issues],
            }
        )
    # A call the token limit cut off is reported as such on the card ("the call is lost"), not as unreadable.
    cut = result.finish_reason == "length"
    unreadable = (
        unreadable_calls(result.text, result.broken_tool_calls, include_cut=not cut) if plan.tools else []
    )
    for index, block in enumerate(unreadable, start=len(calls)):
        calls.append(
            {
                "id": f"call_{message.id}_{index}",
                "name": _name_in(block),
                "arguments": {},
                "issues": [{"kind": "invalid", "path": "", "message": f"Not a readable call: {block[:120]}"}],
                "unparsed": True,  # nothing to run, so no result to give it
            }
        )
    message.tool_calls = calls or None
    message.tool_calls_valid = all(not c["issues"] for c in calls) if calls else None
    message.constrained = plan.constrained if plan.tools else None
    if message.session.mode == ChatMode.API:
        _check_api_request(message)
    _close(message)


def _name_in(block: str) -> str:
    """The function name a broken call block still shows, for its card; "?" when none."""
    found = re.search(r'"name"\s*:\s*"([^"]{1,64})"', block)
    return found.group(1) if found else "?"


def _recount_tokens(message: ChatMessage, plan: ReplyPlan, result: ChatResult) -> None:
    """The provider reported no usage: count with a real tokenizer (still marked as estimated)."""
    from app.serving.token_count import count_tokens

    prompt = "\n".join(str(m.get("content") or "") for m in plan.messages)
    prompt_count = count_tokens(prompt)
    completion_count = count_tokens(result.text + "".join(json.dumps(c.arguments) for c in result.tool_calls))
    if prompt_count is not None and completion_count is not None:
        message.prompt_tokens = prompt_count + 4 * len(plan.messages)  # the template's per-turn tokens
        message.completion_tokens = completion_count


def _check_api_request(message: ChatMessage) -> None:
    """NL → API mode: the first call as an HTTP request, checked against the spec, check by check."""
    from app.openapi.errors import SpecError
    from app.openapi.http_check import check_tool_call as check_against_spec
    from app.openapi.normalise import NormalisedSpec
    from app.openapi.tools import tool_call_to_request

    spec = NormalisedSpec.from_dict(message.session.spec.normalised)
    if not message.tool_calls:
        message.api_request = {"error": "The model did not produce an API call.", "checks": []}
        message.api_request_valid = False
        return
    call = message.tool_calls[0]
    checks = check_against_spec(spec, call["name"], call["arguments"])
    record: dict[str, Any] = {"checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks]}
    try:
        request = tool_call_to_request(spec, call["name"], call["arguments"])
        record.update(
            method=request.method,
            url=request.url,
            headers=request.headers,
            body=request.body,
            operation_id=request.operation_id,
        )
    except (SpecError, ValueError, TypeError) as exc:
        record["error"] = str(exc)
    message.api_request = record
    message.api_request_valid = bool(checks) and all(c.ok for c in checks)


def await_other_writer(message_id: int) -> Iterator[str | None]:
    """A reply this request did not claim: another request is writing it (a second tab, or the request
    a reloaded page left writing), or was, in a process that has since died. Yield the text it stores as
    it grows (`WriterHeartbeat`), None between (a keep-alive), until the reply is final; mark it failed
    once its writer has not been heard from (`claimed_at`) for CHAT_STALE_REPLY_SECONDS, so the `done`
    event always carries a final card (a streaming one would connect again, for ever)."""
    limit = current_app.config["CHAT_STALE_REPLY_SECONDS"]
    poll_s = max(0.05, current_app.config["CHAT_PROGRESS_SECONDS"])
    shown = 0
    while True:
        db.session.rollback()  # a fresh read: the writer commits in another transaction
        message = db.session.get(ChatMessage, message_id)
        if message is None or message.is_final:
            return
        started = message.claimed_at or message.created_at
        if (utcnow() - started).total_seconds() > limit:
            _finish_error(message, "The reply was cut off: the server stopped while writing it.")
            return
        text = message.content or ""
        db.session.remove()  # hold no connection while waiting
        if len(text) > shown:
            yield text[shown:]
            shown = len(text)
        else:
            yield None
        time.sleep(poll_s)


def _finish_error(message: ChatMessage, reason: str, partial: str = "") -> None:
    message.status = MessageStatus.ERROR
    message.error = reason
    message.content = partial
    _close(message)


def _finish_stopped(message_id: int, partial: str) -> None:
    db.session.rollback()  # whatever was half-done when the generation was cut short
    message = db.session.get(ChatMessage, message_id)
    if message is None or message.is_final:
        return
    message.status = MessageStatus.STOPPED
    message.content = partial
    _close(message)


def _close(message: ChatMessage) -> None:
    message_id = sa.inspect(message).identity[0]  # without loading the row, which may be gone
    try:
        message.finished_at = utcnow()
        message.session.updated_at = message.finished_at
        db.session.commit()
    except (StaleDataError, ObjectDeletedError, IntegrityError):
        # The session was deleted while its reply was being written: the reply goes with it, quietly.
        db.session.rollback()
        if not _deleted(message_id):
            raise


def _deleted(message_id: int) -> bool:
    """True when the reply's row is gone (deleting a session takes its messages, mid-reply too)."""
    found = db.session.execute(sa.select(ChatMessage.id).where(ChatMessage.id == message_id)).first()
    return found is None
