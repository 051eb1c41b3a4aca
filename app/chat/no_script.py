"""Chat in a browser without JavaScript.

A reply is written by the request that opens its event stream, and a page without scripts never opens
one: the reply would wait for ever. So every form that starts replies carries a field inside
`<noscript>`, which a browser sends only when scripts are off, and the request it reaches writes the new
replies before it answers (the page then shows them finished). A reply still pending on a page (sent
from another tab, say) offers a button, also inside `<noscript>`, that writes it the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import sqlalchemy as sa
from flask import request

from app.chat.generation import claim, run_reply
from app.extensions import db, htmx
from app.models import ChatMessage, ChatSession, MessageStatus

NO_SCRIPT_FIELD = "no_script"
# Where the write button may send the browser back to: a chat page of this app, nothing else.
_CHAT_PAGE = re.compile(r"^/chat/[A-Za-z0-9/_-]*$")


def sent_without_script() -> bool:
    return not htmx and request.form.get(NO_SCRIPT_FIELD) == "1"


def write_pending_replies(sessions: Iterable[ChatSession | None]) -> None:
    """Write every pending reply of `sessions` here, one after another (Compare's models in turn).

    A reply another request has claimed meanwhile (a second tab with scripts) is left to it."""
    session_ids = [session.id for session in sessions if session is not None]
    pending = sa.select(ChatMessage.id).where(
        ChatMessage.session_id.in_(session_ids),
        ChatMessage.role == "assistant",
        ChatMessage.status == MessageStatus.PENDING,
    )
    for message_id in db.session.execute(pending.order_by(ChatMessage.id)).scalars().all():
        if not claim(message_id):
            continue
        message = db.session.get(ChatMessage, message_id)
        if message is not None:
            for _ in run_reply(message):
                pass


def chat_page(path: str | None) -> str | None:
    """`path` when it is one of this app's chat pages (the page a write button was on), else None."""
    return path if path and _CHAT_PAGE.fullmatch(path) else None
