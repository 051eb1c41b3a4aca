"""The trainer's train / eval split: marked rows keep their side, the rest split a request at a time."""

from __future__ import annotations

from collections import Counter

from app.datasets.stats import request_key
from jobs.training.data import split_rows


def row(request: str, answer: str = "ok", split: str | None = None) -> dict:
    item = {"messages": [{"role": "user", "content": request}, {"role": "assistant", "content": answer}]}
    if split:
        item["split"] = split
    return item


def test_unique_requests_split_by_the_shares_with_the_seed():
    rows = [row(f"request {i}") for i in range(100)]
    first = split_rows(rows, 0.9, 0.1, seed=3)
    assert (len(first.train), len(first.eval)) == (90, 10)
    assert split_rows(rows, 0.9, 0.1, seed=3) == first  # the seed decides
    assert split_rows(rows, 0.9, 0.1, seed=4).eval != first.eval


def test_rows_asking_one_request_never_straddle_the_split():
    rows = [row(f"Request {i % 30}", answer=f"answer {i}") for i in range(120)]  # each request 4 times
    rows += [row(f"  request {i % 30} ", answer="spacing and case aside") for i in range(3)]
    for seed in range(5):
        splits = split_rows(rows, 0.8, 0.2, seed=seed)
        train = {request_key(r) for r in splits.train}
        held = {request_key(r) for r in splits.eval}
        assert not train & held
        assert len(splits.train) + len(splits.eval) == len(rows)
        assert 0.7 < len(splits.train) / len(rows) < 0.9  # the shares, to within a group


def test_an_unmarked_row_follows_a_marked_row_asking_the_same_request():
    rows = [row("held out", split="eval"), row("trained", split="train")]
    rows += [row("held out", answer="again")] * 5 + [row("trained", answer="again")] * 5
    rows += [row(f"other {i}") for i in range(40)]
    splits = split_rows(rows, 0.5, 0.5, seed=0)
    keys = Counter(request_key(r) for r in splits.eval)
    assert keys["held out"] == 6 and "trained" not in keys
    assert Counter(request_key(r) for r in splits.train)["trained"] == 6


def test_a_few_requests_asked_many_times_still_hold_one_out_but_never_the_only_one():
    from tests.training.test_pipeline import sft_rows

    splits = split_rows(sft_rows(48), 0.9, 0.1, seed=42)  # 8 cities, 6 rows each
    assert (len(splits.train), len(splits.eval)) == (42, 6)
    assert len({request_key(r) for r in splits.eval}) == 1
    only = [row("the same thing")] * 10
    alone = split_rows(only, 0.9, 0.1, seed=0)
    assert (len(alone.train), len(alone.eval)) == (10, 0)


def test_shares_below_one_leave_the_rest_out_and_max_samples_caps():
    rows = [row(f"request {i}") for i in range(50)]
    splits = split_rows(rows, 0.5, 0.2, seed=1)
    assert (len(splits.train), len(splits.eval)) == (25, 10)
    capped = split_rows(rows, 0.8, 0.2, seed=1, max_samples=20)
    assert (len(capped.train), len(capped.eval)) == (20, 2)
