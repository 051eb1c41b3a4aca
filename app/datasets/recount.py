"""Recount the stored figures of datasets counted another way (`flask recount-datasets`).

Figures stored before the current way of counting row lengths (`LENGTH_COUNTING`: the chat template
and the tools counted, the rows without tools kept apart for a config's tools) keep the old lengths
until the dataset is next edited, so the config linter's max-length warning stays too quiet for them.
This counts each such dataset's rows again, as an edit's full recount would.

The rows are counted with no transaction open (a large dataset takes a while, and SQLite would hold its
one write lock throughout); the dataset's row is then locked as an edit locks it, and the figures are
written only if the file is still the one counted. A dataset edited meanwhile is left to its edit,
which recounts old figures in full itself.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from app.datasets.stats import LENGTH_COUNTING, dataset_stats
from app.extensions import db
from app.models import Dataset, DatasetStatus
from app.row_lock import lock_row
from app.serving.token_count import count_tokens

DIGEST_CHUNK = 1024**2


@dataclass
class Counted:
    """A dataset's rows counted anew, and what they were counted from (to tell a later edit apart)."""

    dataset_id: int
    old_stats: dict[str, Any]
    stats: dict[str, Any] | None = None
    file_path: str = ""
    digest: str = ""
    error: str | None = None  # why the rows could not be read; nothing is stored then


@dataclass(frozen=True)
class Listed:
    id: int
    name: str
    rows: int


@dataclass
class Candidates:
    """Ready datasets to recount (oldest first), and how many were left as already counted this way."""

    datasets: list[Listed] = field(default_factory=list)
    current: int = 0


def counted_current_way(stats: dict[str, Any] | None) -> bool:
    """Whether `stats` were counted the way row lengths are counted now, lengths and all (figures stored
    while the tokenizer could not load carry the marker but no lengths)."""
    stats = stats or {}
    return stats.get("length_counting") == LENGTH_COUNTING and isinstance(stats.get("length_buckets"), dict)


def can_count_tokens() -> bool:
    """Whether the tokenizer loads: without it a recount would store no lengths at all."""
    return count_tokens("x") is not None


def datasets_to_recount(everything: bool = False) -> Candidates:
    """Ready datasets whose figures were counted another way; every ready dataset with `everything`."""
    found = Candidates()
    query = sa.select(Dataset.id, Dataset.name, Dataset.sample_count, Dataset.stats)
    query = query.where(Dataset.status == DatasetStatus.READY.value).order_by(Dataset.id)
    for dataset_id, name, rows, stats in db.session.execute(query):
        if everything or not counted_current_way(stats):
            found.datasets.append(Listed(dataset_id, name, rows))
        else:
            found.current += 1
    db.session.rollback()  # no read transaction left open while the rows are counted
    return found


def count_dataset(dataset_id: int) -> Counted | None:
    """Dataset `dataset_id`'s figures counted from its file (nothing stored); None when it is no longer
    a ready dataset."""
    dataset = db.session.get(Dataset, dataset_id)
    if dataset is None or dataset.status != DatasetStatus.READY.value:
        db.session.rollback()
        return None
    counted = Counted(dataset.id, dict(dataset.stats or {}))
    counted.file_path, kind = dataset.file_path or "", dataset.kind
    db.session.close()  # counting a large dataset takes a while: no transaction held meanwhile
    if not counted.file_path:
        counted.error = "it has no file"
        return counted
    try:
        rows, counted.digest = _read_rows(Path(counted.file_path))
        counted.stats = dataset_stats(rows, kind)
    except OSError as error:
        counted.error = f"its file could not be read ({error.strerror or error})"
    except ValueError as error:  # not JSON, not UTF-8, not an object
        counted.error = f"its rows could not be read ({error})"
    except Exception as error:  # rows an edit would fail on too: the other datasets are still counted
        counted.error = f"its rows could not be counted ({type(error).__name__}: {error})"
    return counted


def store_counted(counted: Counted) -> bool:
    """Store `counted`'s figures if the dataset is still as it was counted (committed); False when it
    changed meanwhile (an edit, a delete), which leaves it as that change left it."""
    if counted.stats is None:
        return False
    lock_row(Dataset, counted.dataset_id)  # as an edit does: no edit rewrites the file until the commit
    dataset = db.session.get(Dataset, counted.dataset_id)
    if dataset is not None:
        db.session.refresh(dataset)
    unchanged = (
        dataset is not None
        and dataset.status == DatasetStatus.READY.value
        and dataset.file_path == counted.file_path
        and (dataset.stats or {}) == counted.old_stats
        and _file_digest(Path(counted.file_path)) == counted.digest
    )
    if not unchanged:
        db.session.rollback()
        return False
    dataset.stats = counted.stats
    db.session.commit()
    return True


def _read_rows(path: Path) -> tuple[list[dict[str, Any]], str]:
    """The file's rows as `storage.read_rows` reads them, and the digest of the very bytes read (an edit
    replaces the file, so one open handle reads one version of it)."""
    digest = hashlib.sha256()
    rows = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            digest.update(line)
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as error:
                raise ValueError(f"line {number}: {error}") from None
            if not isinstance(row, dict):
                raise ValueError(f"line {number}: not a JSON object")
            rows.append(row)
    return rows, digest.hexdigest()


def _file_digest(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(DIGEST_CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()
