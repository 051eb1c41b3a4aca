"""Browsing and editing a large dataset: Toolsmith's streamed page and adjusted figures against the
plain way (load every row, filter, slice; recount every row after an edit), side by side.

Usage:
    .venv/bin/python bench/dataset_rows.py [--per-operation 1000]

The dataset is generated from the Petstore fixture (20 operations x --per-operation rows, all tools
offered per row), written as JSONL. Printed: the time and peak Python memory of three pages (the first,
a search, the last) both ways, and the time to delete one row and refresh the page's figures both
ways (the token estimate is the slow part: the plain way runs the tokenizer on every row again).
Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PETSTORE = ROOT.parent / "shared" / "fixtures" / "openapi" / "petstore-v2.swagger2.0.yaml"


def measure(fn, *args):
    """(result, seconds, peak MiB): timed without tracing, then run again under tracemalloc for the peak
    (tracing slows Python down several times, so it must not touch the timing)."""
    started = time.perf_counter()
    result = fn(*args)
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, elapsed, peak / 2**20


def plain_page(path: Path, row_filter, page: int, kind: str):
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = [(n, row) for n, row in enumerate(rows, start=1) if row_filter.matches(row, kind)]
    return kept[(page - 1) * 20 : page * 20], len(kept)


def streamed_page(path: Path, row_filter, page: int, kind: str):
    from app.datasets.browse import browse
    from app.datasets.storage import read_lines

    return browse(read_lines(path), kind, row_filter, page)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-operation", type=int, default=1000)
    args = parser.parse_args()

    from app.datasets.browse import RowFilter
    from app.datasets.generation import GenerationOptions, generate_dataset
    from app.datasets.stats import adjusted_overlap, adjusted_stats, dataset_stats, request_overlap
    from app.datasets.storage import read_lines, read_rows, row_line, write_lines, write_rows
    from app.openapi.normalise import normalise
    from app.openapi.parsing import load_document

    spec = normalise(load_document(PETSTORE.read_text(), PETSTORE.name))
    rows = generate_dataset(spec, GenerationOptions(samples_per_operation=args.per_operation, seed=1)).rows
    kind = "sft"
    # One-time loads (the tokenizer's vocabulary, the compiled chat template) belong to no page.
    from app.datasets.stats import row_lengths

    row_lengths(rows[:1], kind)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rows.jsonl"
        size = write_rows(path, rows)
        print(f"{len(rows)} rows, {size / 2**20:.1f} MiB of JSONL")
        last = -(-len(rows) // 20)
        views = [("first page", RowFilter(), 1), ("search 'sold dog'", RowFilter(query="sold dog"), 1),
                 ("last page", RowFilter(), last)]  # fmt: skip
        header = f"{'page':<20} {'plain s':>8} {'streamed s':>10} {'speed-up':>8} {'plain MiB':>9}"
        print(f"{header} {'streamed MiB':>12}")
        for label, row_filter, page in views:
            (plain_rows, plain_total), plain_s, plain_peak = measure(plain_page, path, row_filter, page, kind)
            streamed, streamed_s, streamed_peak = measure(streamed_page, path, row_filter, page, kind)
            assert [n for n, _ in plain_rows] == [
                n for n, _ in streamed.rows
            ] and plain_total == streamed.matching
            print(
                f"{label:<20} {plain_s:8.3f} {streamed_s:10.3f} {plain_s / streamed_s:7.2f}x "
                f"{plain_peak:9.1f} {streamed_peak:12.2f}"
            )

        stats = dataset_stats(rows, kind)
        after = rows[:10] + rows[11:]
        started = time.perf_counter()
        recounted = dataset_stats(after, kind)
        recount_s = time.perf_counter() - started
        started = time.perf_counter()
        adjusted = adjusted_stats(stats, [rows[10]], [], kind)
        adjusted_s = time.perf_counter() - started
        # The held-out overlap: counted again over every parsed row, or adjusted from the touched request.
        after_lines = [row_line(row) for row in after]
        started = time.perf_counter()
        overlap_recount = request_overlap([json.loads(line) for line in after_lines])
        overlap_recount_s = time.perf_counter() - started
        started = time.perf_counter()
        overlap = adjusted_overlap(stats, after_lines, [rows[10]], [])
        overlap_s = time.perf_counter() - started
        assert overlap == overlap_recount, "the adjusted overlap must equal a recount"
        assert adjusted | overlap == recounted, "the adjusted figures must equal a recount"
        print(f"delete one row, figures: recount {recount_s:.2f} s, adjusted {adjusted_s:.3f} s "
              f"({recount_s / adjusted_s:.0f}x), identical figures")  # fmt: skip
        print(f"delete one row, held-out overlap: parse every row {overlap_recount_s:.2f} s, adjusted "
              f"{overlap_s:.2f} s ({overlap_recount_s / overlap_s:.0f}x), identical")  # fmt: skip

        started = time.perf_counter()
        parsed = list(read_rows(path))
        write_rows(path, parsed[:10] + parsed[11:])
        parsed_s = time.perf_counter() - started
        write_rows(path, rows)
        started = time.perf_counter()
        lines = list(read_lines(path))
        write_lines(path, lines[:10] + lines[11:])
        raw_s = time.perf_counter() - started
        print(f"delete one row, file: parse and rewrite every row {parsed_s:.2f} s, copy the raw lines "
              f"{raw_s:.2f} s ({parsed_s / raw_s:.0f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
