"""Browse a dataset's rows: search, filter by split and by call, one page at a time. Pure, no Flask.

The file is streamed once per page: only the matching rows of the page asked for are kept, so a large
dataset costs one pass over its file and no more memory than a page.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from app.datasets.rows import called_functions
from app.datasets.stats import request_key, row_lengths, row_text

PAGE_SIZE = 20
MAX_QUERY = 200
WITH_CALL, WITHOUT_CALL, INVALID_CALL, FUNCTION_PREFIX = "with", "without", "invalid", "fn:"
LENGTH_CHOICES = ("256", "512", "1024", "2048", "4096", "8192")


@dataclass(frozen=True)
class RowFilter:
    """`split`: "", "train", "eval" (rows without a split train) or "seen" (eval rows asking a request a
    training row asks: `with_train_requests` gathers those first). `call`: "", "with", "without",
    "invalid" (a call that breaks its tool's schema) or "fn:<name>" (rows whose answer calls that
    function). `query`: words that must all appear, any case. `longer`: rows longer than that many
    tokens (as the training chat template renders them, as the dataset's figures count them), 0 for any
    length."""

    query: str = ""
    split: str = ""
    call: str = ""
    longer: int = 0
    train_requests: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    @classmethod
    def from_args(cls, args: Any) -> RowFilter:
        """From request arguments, forgiving: an unknown value means "any", a long query is cut."""
        split, longer = args.get("split", ""), str(args.get("longer", ""))
        return cls(
            query=" ".join(str(args.get("q", "")).split())[:MAX_QUERY],
            split=split if split in ("train", "eval", "seen") else "",
            call=str(args.get("call", ""))[:200],
            longer=int(longer) if longer in LENGTH_CHOICES else 0,
        )

    def as_args(self) -> dict[str, str]:
        """The filter as URL arguments, empty ones left out."""
        args = {"q": self.query, "split": self.split, "call": self.call, "longer": str(self.longer or "")}
        return {key: value for key, value in args.items() if value}

    def with_train_requests(self, lines: Iterable[str]) -> RowFilter:
        """For the "seen" split, the same filter knowing the training rows' requests (one pass over
        `lines`); any other filter as it is."""
        if self.split != "seen":
            return self
        requests = set()
        for line in lines:
            row = json.loads(line)
            if row.get("split") != "eval":
                requests.add(request_key(row))
        return RowFilter(self.query, self.split, self.call, self.longer, frozenset(requests))

    @property
    def active(self) -> bool:
        return bool(self.query or self.split or self.call or self.longer)

    def may_match(self, line: str) -> bool:
        """False when the raw JSONL line cannot match, so it need not be parsed. Words with a quote or a
        backslash are spelt differently inside JSON strings: those are left to `matches`."""
        if self.split in ("eval", "seen") and '"eval"' not in line:
            return False
        if self.call.startswith(FUNCTION_PREFIX) and self.call[len(FUNCTION_PREFIX) :] not in line:
            return False
        words = [w for w in self.query.casefold().split() if '"' not in w and "\\" not in w]
        if words:
            folded = line.casefold()
            return all(word in folded for word in words)
        return True

    def matches(self, row: dict[str, Any], kind: str) -> bool:
        if self.split == "seen":
            if row.get("split") != "eval" or request_key(row) not in self.train_requests:
                return False
        elif self.split and (row.get("split") == "eval") != (self.split == "eval"):
            return False
        if self.call:
            called = called_functions(row)
            if self.call == WITH_CALL and not called:
                return False
            if self.call == WITHOUT_CALL and called:
                return False
            if self.call == INVALID_CALL and not call_problems(row, kind):
                return False
            if self.call.startswith(FUNCTION_PREFIX) and self.call[len(FUNCTION_PREFIX) :] not in called:
                return False
        if self.query:
            text = row_text(row, kind).casefold()
            if not all(word in text for word in self.query.casefold().split()):
                return False
        if self.longer:
            lengths = row_lengths([row], kind)  # the tokenizer last: the slowest test
            return lengths is not None and lengths[0] > self.longer
        return True


def call_problems(row: dict[str, Any], kind: str) -> list[str]:
    """What is wrong with the calls of the row's answer (SFT: every assistant turn; DPO: `chosen`) against
    the tools it offers: unknown function, missing or unexpected argument, wrong type, value not allowed.
    A row that offers no tools has nothing to check against."""
    from app.serving.tool_schema import call_problem_texts

    tools = row.get("tools") or []
    if not tools:
        return []
    problems = []
    for message in row.get("chosen" if kind == "dpo" else "messages") or []:
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        for call in message.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                continue
            problems.extend(call_problem_texts(tools, function.get("name"), function.get("arguments")))
    return problems


@dataclass
class RowPage:
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (row number from 1, row)
    matching: int = 0
    page: int = 1
    page_size: int = PAGE_SIZE
    problems: dict[int, list[str]] = field(default_factory=dict)  # row number → its calls' problems
    lengths: dict[int, int] = field(default_factory=dict)  # row number → its tokens (default tokenizer)

    @property
    def pages(self) -> int:
        return max(1, -(-self.matching // self.page_size))

    @property
    def first(self) -> int:
        return (self.page - 1) * self.page_size + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1 if self.rows else 0


def browse(lines: Iterable[str], kind: str, row_filter: RowFilter, page: int) -> RowPage:
    """The `page`-th page (from 1; past the end gives the last) of the rows `row_filter` keeps.

    `lines` are the file's JSONL lines. Only the page's rows and the rows a filter cannot rule out from
    the raw text are parsed: a dataset of 8 KB rows is mostly tool schemas nobody searches.
    """
    page = max(1, page)
    start = (page - 1) * PAGE_SIZE
    kept: list[tuple[int, str]] = []
    tail: list[tuple[int, str]] = []  # the last page seen, for a page number past the end
    matching = 0
    for number, line in enumerate(lines, start=1):
        if row_filter.active and not (
            row_filter.may_match(line) and row_filter.matches(json.loads(line), kind)
        ):
            continue
        if start <= matching < start + PAGE_SIZE:
            kept.append((number, line))
        if matching % PAGE_SIZE == 0:
            tail = []
        tail.append((number, line))
        matching += 1
    result = RowPage([], matching, page)
    if not kept and matching:
        kept, result.page = tail, result.pages
    result.rows = [(number, json.loads(line)) for number, line in kept]
    result.problems = {number: found for number, row in result.rows if (found := call_problems(row, kind))}
    lengths = row_lengths([row for _, row in result.rows], kind)
    if lengths is not None:
        result.lengths = {number: length for (number, _), length in zip(result.rows, lengths, strict=True)}
    return result


def matching_lines(lines: Iterable[str], kind: str, row_filter: RowFilter) -> Iterator[str]:
    """The raw lines of the rows `row_filter` keeps, in order (the filtered download)."""
    for line in lines:
        if not row_filter.active or (
            row_filter.may_match(line) and row_filter.matches(json.loads(line), kind)
        ):
            yield line


def row_digest(row: dict[str, Any]) -> str:
    """A short fingerprint: an edit names its row by number and digest, so a stale page edits nothing."""
    text = json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
