"""Chat fixtures: the default model registered, sessions created and replies streamed like a browser."""

from __future__ import annotations

import re
import time

from app.extensions import db
from app.models import ChatMessage
from tests.conftest import csrf_token

STREAM_URL = re.compile(r'sse-connect="/chat/messages/(\d+)/stream"')
# SmolLM2-135M answers this one correctly at temperature 0 (see ARCHITECTURE.md): pinned on purpose.
PINNED_PROMPT = "What is the capital of France? Answer in one sentence."


def htmx_post(client, path: str, data: dict | None = None, **kwargs):
    """An htmx POST: CSRF token in the header, as base.html's hx-headers sends it."""
    headers = {"HX-Request": "true", "X-CSRFToken": csrf_token(client, "/chat/")}
    return client.post(path, data=data or {}, headers=headers, **kwargs)


def new_session(client, model_id: int, mode: str = "chat", spec_id: int | None = None) -> int:
    data = {"csrf_token": csrf_token(client, "/chat/"), "model": str(model_id), "mode": mode}
    if spec_id is not None:
        data["spec"] = str(spec_id)
    response = client.post("/chat/new", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def save_settings(client, session_id: int, model_id: int, **fields) -> None:
    data = {
        "model": str(model_id),
        "temperature": "0",
        "top_p": "1",
        "max_tokens": "64",
        "tool_choice": "auto",
        "system_prompt": "",
        "constrained": "y",
    }
    data.update({k: str(v) for k, v in fields.items() if v is not None})
    if fields.get("constrained") is False:
        data.pop("constrained")
    response = htmx_post(client, f"/chat/{session_id}/settings", data)
    assert response.status_code == 200, response.get_data(as_text=True)


def send(client, session_id: int, text: str) -> int:
    """Send a message; returns the id of the pending reply the page will stream."""
    response = htmx_post(client, f"/chat/{session_id}/messages", {"content": text})
    assert response.status_code == 200, response.get_data(as_text=True)
    return int(STREAM_URL.search(response.get_data(as_text=True)).group(1))


def stream_events(client, message_id: int, on_event=None) -> list[tuple[float, str, str]]:
    """(arrival time, event, data) for each server-sent event, read as the bytes arrive.

    `on_event(event, data)` runs as each event arrives, while the generation is paused mid-stream.
    """
    response = client.get(f"/chat/messages/{message_id}/stream", buffered=False)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    events: list[tuple[float, str, str]] = []
    buffer = ""
    for chunk in response.response:
        buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            event = next((line[7:] for line in block.split("\n") if line.startswith("event: ")), "message")
            data = "\n".join(line[6:] for line in block.split("\n") if line.startswith("data: "))
            events.append((time.perf_counter(), event, data))
            if on_event is not None:
                on_event(event, data)
    response.close()
    return events


def message_row(app, message_id: int) -> ChatMessage:
    with app.app_context():
        row = db.session.get(ChatMessage, message_id)
        db.session.expunge(row)
        return row
