"""What a dataset page shows about its rows: counts, calls vs no-call rows, tools, estimated tokens."""

from __future__ import annotations

import functools
import json
from collections import Counter
from typing import Any

from app.serving.token_count import count_tokens

TOP_TOOLS = 50
LENGTH_BUCKET = 128  # tokens per band of the length distribution
LAST_BUCKET = 64  # 8,192 tokens or more share the last band


def _assistant_messages(row: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    messages = row.get("chosen", []) if kind == "dpo" else row.get("messages", [])
    return [m for m in messages if isinstance(m, dict) and m.get("role") == "assistant"]


def _called(row: dict[str, Any], kind: str) -> list[str]:
    names = []
    for message in _assistant_messages(row, kind):
        for call in message.get("tool_calls") or []:
            name = (call.get("function") or {}).get("name") if isinstance(call, dict) else None
            if isinstance(name, str):
                names.append(name)
    return names


def row_text(row: dict[str, Any], kind: str) -> str:
    """The conversation's words and calls (the tools' schemas are counted once per distinct set)."""
    parts: list[str] = []
    groups = ("prompt", "chosen", "rejected") if kind == "dpo" else ("messages",)
    for group in groups:
        for message in row.get(group, []):
            if isinstance(message, dict):
                parts.append(str(message.get("content") or ""))
                if message.get("tool_calls"):
                    parts.append(json.dumps(message["tool_calls"], ensure_ascii=False))
    return "\n".join(parts)


def request_key(row: dict[str, Any]) -> str:
    """What the row asks: its user messages, case and spacing aside. Rows with the same key ask the same
    request, whatever they answer."""
    messages = row.get("prompt") if "prompt" in row else row.get("messages")
    return "\n".join(
        " ".join(str(m.get("content") or "").casefold().split())
        for m in messages or []
        if isinstance(m, dict) and m.get("role") == "user"
    )


def request_overlap(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many distinct requests the rows ask, how many held-out rows ask one a training row asks
    word for word (their eval loss and accuracy then measure recall, not generalisation), and how many
    rows are marked for training (trained on whatever a config's train split: the step estimate needs
    it). The figures that move with the split, recounted when it is drawn again."""
    train = {request_key(row) for row in rows if row.get("split") != "eval"}
    seen: set[str] = set(train)
    in_train = 0
    for row in rows:
        if row.get("split") == "eval":
            key = request_key(row)
            in_train += key in train
            seen.add(key)
    return {
        "distinct_requests": len(seen),
        "eval_requests_in_train": in_train,
        "marked_train_rows": _marked_train(rows),
    }


def _marked_train(rows: list[dict[str, Any]]) -> int:
    return sum(1 for row in rows if row.get("split") == "train")


MAX_TOUCHED_REQUESTS = 32  # an edit touching more requests than this recounts the overlap in full


def adjusted_overlap(
    stats: dict[str, Any], lines: list[str], removed: list[dict[str, Any]], added: list[dict[str, Any]]
) -> dict[str, int] | None:
    """`request_overlap` after an edit, from the old figures and the rows asking the touched requests
    only: a raw line that lacks one of a request's words cannot ask it, so most lines are never parsed.
    None when the old figures lack the overlap or the edit touched too many requests (recount then)."""
    if not all(
        isinstance(stats.get(key), int)
        for key in ("distinct_requests", "eval_requests_in_train", "marked_train_rows")
    ):
        return None
    touched = {request_key(row) for row in removed + added}
    if len(touched) > MAX_TOUCHED_REQUESTS:
        return None
    # Only words spelt the same inside a JSON string (no quote, backslash or control character) rule out.
    words = {key: [w for w in key.split() if json.dumps(w, ensure_ascii=False)[1:-1] == w] for key in touched}
    after = {key: [0, 0] for key in touched}  # [training rows, held-out rows] asking it, after the edit
    for line in lines:
        folded = line.casefold()
        if not any(all(word in folded for word in words[key]) for key in touched):
            continue
        row = json.loads(line)
        key = request_key(row)
        if key in after:
            after[key][row.get("split") == "eval"] += 1
    before = {key: list(counts) for key, counts in after.items()}
    for row in added:
        before[request_key(row)][row.get("split") == "eval"] -= 1
    for row in removed:
        before[request_key(row)][row.get("split") == "eval"] += 1

    def asked(counts: list[int]) -> int:
        return int(counts[0] + counts[1] > 0)

    def seen(counts: list[int]) -> int:
        return counts[1] if counts[0] else 0

    return {
        "distinct_requests": stats["distinct_requests"]
        + sum(asked(after[key]) - asked(before[key]) for key in touched),
        "eval_requests_in_train": stats["eval_requests_in_train"]
        + sum(seen(after[key]) - seen(before[key]) for key in touched),
        "marked_train_rows": stats["marked_train_rows"] + _marked_train(added) - _marked_train(removed),
    }


def dataset_stats(rows: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    calls, offered = _row_counts(rows, kind)
    lengths = row_lengths(rows, kind)
    tokens = sum(lengths) if lengths is not None else None
    buckets = (_buckets(lengths), _buckets(_without_tools(rows, lengths))) if lengths is not None else None
    return _figures(len(rows), calls, offered, tokens, buckets) | request_overlap(rows)


def adjusted_stats(
    stats: dict[str, Any], removed: list[dict[str, Any]], added: list[dict[str, Any]], kind: str
) -> dict[str, Any] | None:
    """The figures after `removed` rows left and `added` rows came, from the old figures alone (an edit of
    one row then costs one row, not the dataset); None when the old figures cannot be adjusted."""
    known, stored_buckets = stats.get("estimated_tokens"), stats.get("length_buckets")
    if not isinstance(known, int) or not isinstance(stored_buckets, dict):
        return None
    if stats.get("length_counting") != LENGTH_COUNTING:
        return None  # counted another way: recounted in full
    if "call_rows" not in stats or "offered_rows" not in stats:
        return None
    stored_bare = stats.get("length_buckets_without_tools")
    if not isinstance(stored_bare, dict):
        return None  # figures from before they kept the rows without tools apart: recounted in full
    gone_lengths, new_lengths = row_lengths(removed, kind), row_lengths(added, kind)
    if gone_lengths is None or new_lengths is None:
        return None
    calls, offered = Counter(stats["call_rows"]), Counter(stats["offered_rows"])
    buckets = Counter({int(bucket): count for bucket, count in stored_buckets.items()})
    bare = Counter({int(bucket): count for bucket, count in stored_bare.items()})
    (gone_calls, gone_offered), (new_calls, new_offered) = (
        _row_counts(removed, kind),
        _row_counts(added, kind),
    )
    for counter, gone, new in (
        (calls, gone_calls, new_calls),
        (offered, gone_offered, new_offered),
        (buckets, _buckets(gone_lengths), _buckets(new_lengths)),
        (bare, _buckets(_without_tools(removed, gone_lengths)), _buckets(_without_tools(added, new_lengths))),
    ):
        counter.subtract(gone)
        counter.update(new)
    rows = stats["rows"] - len(removed) + len(added)
    tokens = known - sum(gone_lengths) + sum(new_lengths)
    return _figures(rows, +calls, +offered, tokens, (+buckets, +bare))  # unary + drops counts that fell to 0


def length_ranges(stats: dict[str, Any]) -> list[tuple[str, int]]:
    """The length bands folded into doubling ranges for the page: [("under 256", rows), ("256–511", …)]."""
    bands = stats.get("length_buckets")
    if not isinstance(bands, dict) or not bands:
        return []
    edges = [256 * 2**i for i in range(6)]  # 256 … 8,192 tokens, the last band's start
    counts = [0] * (len(edges) + 1)
    for band, count in bands.items():
        start = int(band) * LENGTH_BUCKET
        counts[sum(start >= edge for edge in edges)] += count
    labels = [f"under {edges[0]:,}"]
    labels += [f"{low:,}–{high - 1:,}" for low, high in zip(edges, edges[1:], strict=False)]
    labels.append(f"{edges[-1]:,} or more")
    last = max(i for i, count in enumerate(counts) if count)
    return list(zip(labels, counts, strict=True))[: last + 1]


# How row lengths are counted; stored with the figures, so an edit never mixes two ways of counting
# (figures from before are recounted in full instead). 2: as the training chat template renders rows;
# 3: and the bands of the rows offering no tools of their own kept apart (a config's tools go there).
LENGTH_COUNTING = 3


def row_lengths(rows: list[dict[str, Any]], kind: str) -> list[int] | None:
    """Each row's tokens as training reads it, with the default tokenizer; None without a tokenizer.

    The words and calls are counted as text, plus what the training chat template adds around them
    (role headers, the default system prompt, call tags), measured once per shape of conversation, and
    what offering the row's tools adds, once per distinct set. Counting the words and calls alone left
    out over a hundred tokens a row, so the max-length warning stayed quiet while every answer was cut;
    rendering and counting every row whole took 7-13 times as long. A preference row counts as its
    prompt and longer answer, as DPO reads each pair."""
    lengths = []
    tool_tokens: dict[str, int] = {}
    for row in rows:
        tokens = _conversation_tokens(row, kind)
        if tokens is None:
            return None
        tools = row.get("tools") or []
        if tools:
            key = json.dumps(tools, sort_keys=True, ensure_ascii=False)
            if key not in tool_tokens:
                tool_tokens[key] = _tools_tokens(tools, key)
            tokens += tool_tokens[key]
        lengths.append(tokens)
    return lengths


def _conversation_tokens(row: dict[str, Any], kind: str) -> int | None:
    if kind == "dpo":
        prompt = list(row.get("prompt") or [])
        sequences = [prompt + list(row.get("chosen") or []), prompt + list(row.get("rejected") or [])]
    else:
        sequences = [list(row.get("messages") or [])]
    counts = []
    for messages in sequences:
        words = count_tokens(row_text({"messages": messages}, "sft"))
        if words is None:
            return None
        counts.append(words + _template_tokens(_shape(messages)))
    return max(counts, default=0)


def _shape(messages: list[Any]) -> tuple[tuple[str, bool, int], ...]:
    """What the template's text around a conversation depends on: each turn's role, whether it has
    words, and how many calls it makes."""
    return tuple(
        (str(m.get("role")), bool(m.get("content")), len(m.get("tool_calls") or []))
        for m in messages
        if isinstance(m, dict)
    )


_CALL = {"type": "function", "function": {"name": "f", "arguments": {}}}


@functools.lru_cache(maxsize=4096)
def _template_tokens(shape: tuple[tuple[str, bool, int], ...]) -> int:
    """The tokens the training chat template adds to a conversation of this shape: a stand-in
    conversation rendered, less its own words and calls counted as `row_text` counts them."""
    stand_in = [
        {"role": role, "content": "x" if words else "", "tool_calls": [_CALL] * calls}
        if calls
        else {"role": role, "content": "x" if words else ""}
        for role, words, calls in shape
    ]
    try:
        rendered = _rendered_tokens(stand_in, None) or 0
    except Exception:  # a shape the template refuses (an odd role): the words alone, as before
        return 0
    return max(0, rendered - (count_tokens(row_text({"messages": stand_in}, "sft")) or 0))


def _rendered_tokens(messages: list[Any], tools: list[Any] | None) -> int | None:
    from app.configs.chat_template_check import render_conversation
    from app.serving.chat_template import TRAINING_TEMPLATE

    return count_tokens(render_conversation(TRAINING_TEMPLATE, messages, tools), special=True)


_PROBE = [{"role": "user", "content": "x"}]


def offered_tools_tokens(tools: list[Any]) -> int:
    """What offering `tools` adds to each row that gets them (a config's tools, measured once per set)."""
    if count_tokens("x") is None:
        return 0  # no tokenizer: nothing measured, and nothing cached that a later call could not redo
    # Keys in their own order: the template renders them so, and sorted ones count differently.
    return _cached_tools_tokens(json.dumps(tools, ensure_ascii=False))


@functools.lru_cache(maxsize=256)
def _cached_tools_tokens(text: str) -> int:
    return _tools_tokens(json.loads(text), text)


def _tools_tokens(tools: list[Any], text: str) -> int:
    """What offering `tools` adds to a prompt: their schemas and the template's words around them."""
    try:
        with_tools, without = _rendered_tokens(_PROBE, tools), _rendered_tokens(_PROBE, None)
        return max(0, (with_tools or 0) - (without or 0))
    except Exception:
        return count_tokens(text) or 0


def _row_counts(rows: list[dict[str, Any]], kind: str) -> tuple[Counter[str], Counter[str]]:
    """Per function: rows whose answer calls it (the empty name: rows with any call), rows offering it."""
    calls: Counter[str] = Counter()
    offered: Counter[str] = Counter()
    for row in rows:
        names = set(_called(row, kind))
        calls.update(names)
        if names:
            calls[""] += 1
        offered.update(
            {
                name
                for tool in row.get("tools") or []
                if isinstance(tool, dict)
                and isinstance(name := (tool.get("function") or {}).get("name"), str)
            }
        )
    return calls, offered


def _without_tools(rows: list[dict[str, Any]], lengths: list[int]) -> list[int]:
    """The lengths of the rows that offer no tools of their own: a config's `tools` are offered there
    (`jobs.training.data.with_config_tools`), so the linter adds theirs to these."""
    return [length for row, length in zip(rows, lengths, strict=True) if not row.get("tools")]


def _buckets(lengths: list[int]) -> Counter[int]:
    return Counter(min(length // LENGTH_BUCKET, LAST_BUCKET) for length in lengths)


def _figures(
    rows: int,
    calls: Counter[str],
    offered: Counter[str],
    tokens: int | None,
    buckets: tuple[Counter[int], Counter[int]] | None,  # every row's length bands, those without tools
) -> dict[str, Any]:
    with_call = calls.get("", 0)
    named = Counter({name: count for name, count in calls.items() if name})
    return {
        "rows": rows,
        "with_call": with_call,
        "without_call": rows - with_call,
        "tools_offered": len(offered),
        "tools_called": len(named),
        "top_calls": sorted(named.items(), key=lambda item: (-item[1], item[0]))[:TOP_TOOLS],
        "estimated_tokens": tokens,
        "mean_tokens": round(tokens / rows) if tokens is not None and rows else None,
        # Every count, not only the top ones: an edit adjusts these instead of reading every row again.
        "call_rows": dict(calls),
        "offered_rows": dict(offered),
        # Rows per length band of LENGTH_BUCKET tokens (the last band: that long or longer), for the
        # length chart and the linter's "rows longer than max_length" warning.
        "length_buckets": _bands(buckets[0]) if buckets is not None else None,
        "length_buckets_without_tools": _bands(buckets[1]) if buckets is not None else None,
        "length_counting": LENGTH_COUNTING,
    }


def _bands(buckets: Counter[int]) -> dict[str, int]:
    return {str(bucket): count for bucket, count in sorted(buckets.items())}
