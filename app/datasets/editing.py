"""Edit a ready dataset in place: delete, replace or append rows, move a row between train and eval.

Every edit locks the dataset's row, rewrites the file atomically and updates the figures the pages show,
so the file and the database row never disagree. The file is handled as raw lines: only the rows an
edit touches are parsed, and the figures are adjusted by those rows alone (a full recount only for
figures stored before they kept every count), so editing one row of a 180 MiB dataset costs a file copy,
not a parse of every row. A row is named by its number and its digest (see `browse.row_digest`): an edit
made from a page that is out of date changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.datasets.browse import row_digest
from app.datasets.rows import SPLITS, row_kind, validate_row
from app.datasets.services import DatasetError, DatasetProblem
from app.datasets.stats import adjusted_overlap, adjusted_stats, dataset_stats, request_overlap
from app.datasets.storage import read_lines, row_line, write_lines
from app.extensions import db
from app.models import Dataset, DatasetStatus
from app.row_lock import lock_row

Row = dict[str, Any]


@dataclass
class Edit:
    """The file's lines after an edit, and which rows left and came (the figures move by those)."""

    lines: list[str]
    removed: list[Row] = field(default_factory=list)
    added: list[Row] = field(default_factory=list)
    eval_count: int | None = None  # when the edit counted the held-out rows itself


def delete_row(dataset: Dataset, number: int, digest: str) -> Dataset:
    def change(lines: list[str]) -> Edit:
        old = _named(lines, number, digest)
        if len(lines) == 1:
            raise _error("This is the dataset's only row: delete the dataset instead.")
        return Edit(lines[: number - 1] + lines[number:], removed=[old])

    return _edit(dataset, change)


def set_row_split(dataset: Dataset, number: int, digest: str, split: str) -> Dataset:
    if split not in SPLITS:
        raise _error(f"The split must be one of {', '.join(SPLITS)}.")
    return _replace(dataset, number, digest, lambda old: {**old, "split": split})


def replace_row(dataset: Dataset, number: int, digest: str, row: Any) -> Dataset:
    """Put `row` (checked like an imported row, of the dataset's kind) in place of row `number`."""
    _check_rows(dataset, [row])
    return _replace(dataset, number, digest, lambda old: row)


def append_rows(dataset: Dataset, new_rows: list[Row]) -> Dataset:
    _check_rows(dataset, new_rows)
    return _edit(dataset, lambda lines: Edit(lines + [row_line(r) for r in new_rows], added=new_rows))


def draw_split(dataset: Dataset, eval_share: float, seed: int) -> Dataset:
    """Hold out `eval_share` of the rows for evaluation (seeded, the rest train), whatever they had."""
    from app.datasets.combine import resplit

    if not 0 <= eval_share <= 0.5:
        raise _error("The eval share must be between 0 and 0.5.")

    def change(lines: list[str]) -> Edit:
        rows = [json.loads(line) for line in lines]
        resplit(rows, eval_share, seed)
        # The split is not among the figures (calls, tools, tokens): only the counts move.
        return Edit([row_line(row) for row in rows], eval_count=_evals(rows))

    return _edit(dataset, change)


def drop_duplicates(dataset: Dataset) -> tuple[Dataset, int]:
    """Keep the first of rows that are the same (split and meta aside); how many were dropped."""
    from app.datasets.combine import same_row_key

    dropped: list[Row] = []

    def change(lines: list[str]) -> Edit:
        seen: set[str] = set()
        kept = []
        for line in lines:
            row = json.loads(line)
            key = same_row_key(row)
            if key in seen:
                dropped.append(row)
            else:
                seen.add(key)
                kept.append(line)
        return Edit(kept, removed=list(dropped))

    return _edit(dataset, change), len(dropped)


def _replace(dataset: Dataset, number: int, digest: str, new_row: Callable[[Row], Row]) -> Dataset:
    def change(lines: list[str]) -> Edit:
        old = _named(lines, number, digest)
        row = new_row(old)
        lines[number - 1] = row_line(row)
        return Edit(lines, removed=[old], added=[row])

    return _edit(dataset, change)


def _check_rows(dataset: Dataset, new_rows: list[Any]) -> None:
    problems = [
        DatasetProblem(problem if len(new_rows) == 1 else f"Row {index}: {problem}")
        for index, row in enumerate(new_rows, start=1)
        for problem in validate_row(row)
    ]
    wrong_kind = [row for row in new_rows if row_kind(row) != dataset.kind]
    if wrong_kind and not problems:
        problems.append(DatasetProblem(f"{dataset.name} holds {dataset.kind.upper()} rows only."))
    if problems:
        raise DatasetError(problems)


def _edit(dataset: Dataset, change: Callable[[list[str]], Edit]) -> Dataset:
    # One edit of a dataset at a time, on SQLite too: two at once would both rewrite the file from the
    # same old lines, and the later one would drop the earlier one's change.
    lock_row(Dataset, dataset.id)
    locked = db.session.get_one(Dataset, dataset.id)
    db.session.refresh(locked)
    path = Path(locked.file_path or "")
    if locked.status != DatasetStatus.READY.value or not path.is_file():
        db.session.rollback()
        raise _error("Only a ready dataset can be edited.")
    before = list(read_lines(path))
    try:
        edit = change(list(before))
    except DatasetError:
        db.session.rollback()
        raise
    write_lines(path, edit.lines)
    try:
        old = locked.stats or {}
        adjusted = adjusted_stats(old, edit.removed, edit.added, locked.kind)
        # A split drawn again moves every row: the overlap is recounted then (the rows are parsed anyway).
        overlap = (
            adjusted_overlap(old, edit.lines, edit.removed, edit.added) if edit.eval_count is None else None
        )
        if adjusted is not None and overlap is not None:
            locked.stats = adjusted | overlap
        else:
            rows = [json.loads(line) for line in edit.lines]
            locked.stats = (adjusted or dataset_stats(rows, locked.kind)) | request_overlap(rows)
        locked.sample_count = len(edit.lines)
        if edit.eval_count is None:
            locked.eval_count += _evals(edit.added) - _evals(edit.removed)
        else:
            locked.eval_count = edit.eval_count
        locked.train_count = locked.sample_count - locked.eval_count
        db.session.commit()
    except BaseException:
        db.session.rollback()
        write_lines(path, before)  # the file goes back to what the database row still describes
        raise
    return locked


def _evals(rows: list[Row]) -> int:
    return sum(1 for row in rows if row.get("split") == "eval")


def _named(lines: list[str], number: int, digest: str) -> Row:
    """Row `number`, parsed, if it is still the row the page showed."""
    row = json.loads(lines[number - 1]) if 1 <= number <= len(lines) else None
    if row is None or row_digest(row) != digest:
        raise _error("That row has changed since the page was loaded. Reload the page and try again.")
    return row


def _error(message: str) -> DatasetError:
    return DatasetError([DatasetProblem(message)])
