"""Server-sent events framing (the wire format htmx's sse extension reads)."""

from __future__ import annotations


def sse_event(event: str, data: str) -> str:
    """One event; multi-line data becomes several `data:` lines, which the browser joins with newlines."""
    lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"
