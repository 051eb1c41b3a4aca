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
    """In place: `eval_share` of the rows, drawn with `seed`, marked eval; the others lose any split."""
    held_out = set(random.Random(seed).sample(range(len(rows)), round(len(rows) * eval_share)))
    for index, row in enumerate(rows):
        row.pop("split", None)
        if index in held_out:
            row["split"] = "eval"
