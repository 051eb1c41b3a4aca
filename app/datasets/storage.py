"""Dataset files: one JSONL per dataset under DATASET_STORE/<owner id>/, written atomically.

A file is written to a temporary name beside its final one and renamed only when complete, so a
crash or an error mid-write never leaves a half-written dataset where a reader could find it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any


def dataset_path(store: str | Path, owner_id: int, dataset_id: int) -> Path:
    return Path(store) / str(int(owner_id)) / f"{int(dataset_id)}.jsonl"


def write_rows(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows as JSONL; returns the byte size. The file appears only once complete."""
    return write_lines(path, (row_line(row) for row in rows))


def write_lines(path: Path, lines: Iterable[str]) -> int:
    """Write JSONL lines (each ending in a newline) atomically; returns the byte size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".part")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.writelines(lines)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path.stat().st_size


def row_line(row: dict[str, Any]) -> str:
    """A row as one JSONL line: compact, UTF-8 as is (what `browse` expects to find in the raw text)."""
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"


def read_rows(path: Path, limit: int | None = None) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for index, line in enumerate(handle):
            if limit is not None and index >= limit:
                return
            if line.strip():
                yield json.loads(line)


def read_lines(path: Path) -> Iterator[str]:
    """The file's rows as raw JSON text ending in a newline, blank lines skipped (numbered as `read_rows`
    numbers rows). The file is opened now, not at the first row: a file deleted meanwhile fails in the
    view (a 404), not halfway through a streamed download, and once open it reads to the end."""
    return _lines(path.open(encoding="utf-8"))


def _lines(handle: IO[str]) -> Iterator[str]:
    with handle:
        for line in handle:
            if line.strip():
                yield line if line.endswith("\n") else line + "\n"


def remove_file(path: str | Path | None) -> None:
    if path:
        Path(path).unlink(missing_ok=True)
