"""Model output as safe HTML: Markdown with raw HTML disabled, so `<script>` in a reply stays text."""

from __future__ import annotations

from functools import lru_cache

from markupsafe import Markup


@lru_cache(maxsize=1)
def _renderer():
    from markdown_it import MarkdownIt

    # CommonMark with `html` off: raw tags are escaped; markdown-it also refuses javascript:, vbscript:,
    # file: and data: (except images) link targets. Tables and strikethrough are on for model answers.
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": True}).enable(
        ["table", "strikethrough"]
    )


def render_markdown(text: str) -> Markup:
    return Markup(_renderer().render(text or ""))  # noqa: S704  (markdown-it escapes; html is off)
