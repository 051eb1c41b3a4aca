"""Combine datasets: the rows of several datasets of one kind in one new dataset. Pure, no Flask.

Typical use: a spec-generated dataset, the corrections saved from the chat and an imported public set
trained together. Exact duplicates (the same row, split aside) can be dropped, and the eval split can be
kept as each source had it or drawn again with a seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from app.datasets.browse import row_digest
from app.datasets.stats import request_key


@dataclass
class Combined:
    rows: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0  # rows dropped as exact copies of an earlier one


def combine_rows(
    sources: Iterable[Iterable[dict[str, Any]]],
    *,
    drop_duplicates: bool = True,
    eval_share: float | None = None,
    seed: int = 0,
) -> Combined:
    """Every row of every source, in order. `eval_share` None keeps each row's split; a number draws
    that share of rows (seeded) for eval and puts the rest in train."""
    result = Combined()
    seen: set[str] = set()
    for rows in sources:
        for row in rows:
            if drop_duplicates:
                key = same_row_key(row)
                if key in seen:
                    result.duplicates += 1
                    continue
                seen.add(key)
            result.rows.append(row)
    if eval_share is not None:
        resplit(result.rows, eval_share, seed)
    return result


def same_row_key(row: dict[str, Any]) -> str:
    """Rows with the same key are the same example: everything but their split and meta is equal."""
    return row_digest({k: v for k, v in row.items() if k not in ("split", "meta")})


def resplit(rows: list[dict[str, Any]], eval_share: float, seed: int) -> None:
    """In place: about `eval_share` of the rows, drawn with `seed`, marked eval; the others lose any split.

    Rows asking the same request stay on one side, so no held-out request was trained on word for word:
    whole groups are drawn, skipping a group that would overshoot the share (when every group would, the
    smallest one is held out, unless it is every row).
    """
    groups: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        groups.setdefault(request_key(row), []).append(index)
    target = round(len(rows) * eval_share)
    order = list(groups.values())
    random.Random(seed).shuffle(order)
    held_out: set[int] = set()
    for members in order:
        if len(held_out) >= target:
            break
        if len(held_out) + len(members) <= target:
            held_out.update(members)
    if not held_out and target and len(order) > 1:  # every group is larger than the share: the smallest
        held_out.update(min(order, key=len))
    for index, row in enumerate(rows):
        row.pop("split", None)
        if index in held_out:
            row["split"] = "eval"
