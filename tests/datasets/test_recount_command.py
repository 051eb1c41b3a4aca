"""`flask recount-datasets`: figures counted before the chat template counted are recounted, once."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from app.datasets.stats import LAST_BUCKET, LENGTH_BUCKET, LENGTH_COUNTING, dataset_stats, row_text
from app.extensions import db
from app.models import Dataset
from app.serving.token_count import count_tokens

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def weather_row(i: int) -> dict:
    call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": f"City {i}"}}}
    return {
        "messages": [
            {"role": "user", "content": f"What is the weather like in City {i} today?"},
            {"role": "assistant", "content": "", "tool_calls": [call]},
        ],
        "tools": [WEATHER],
    }


ROWS = [weather_row(i) for i in range(1, 9)]


def words_only(stats: dict, rows: list[dict]) -> dict:
    """`stats` as they were stored before the template and tools counted: words and calls alone."""
    lengths = [count_tokens(row_text(row, "sft")) for row in rows]
    buckets = Counter(min(length // LENGTH_BUCKET, LAST_BUCKET) for length in lengths)
    old = {key: value for key, value in stats.items() if key != "length_counting"}
    return old | {
        "estimated_tokens": sum(lengths),
        "mean_tokens": round(sum(lengths) / len(lengths)),
        "length_buckets": {str(bucket): count for bucket, count in sorted(buckets.items())},
    }


@pytest.fixture
def store(app, make_user):
    """Store a dataset of `rows` (figures `old_stats` instead of a fresh count, if given); its id."""
    from app.datasets.services import store_rows

    owner = make_user("alice@example.com")

    def factory(name: str, rows: list[dict] = ROWS, old_stats: bool = False) -> int:
        with app.app_context():
            dataset = store_rows(owner.id, name, "sft", rows, source="upload", source_format="toolsmith")
            if old_stats:
                dataset.stats = words_only(dataset.stats, rows)
                db.session.commit()
            return dataset.id

    return factory


def stored(app, dataset_id: int) -> Dataset:
    with app.app_context():
        dataset = db.session.get_one(Dataset, dataset_id)
        db.session.expunge(dataset)
        return dataset


def recount(rows: list[dict]) -> dict:
    return json.loads(json.dumps(dataset_stats(rows, "sft")))  # as the JSON column gives it back


def test_words_only_figures_are_recounted_with_the_template_and_tools(app, runner, store):
    old_id = store("old", old_stats=True)
    old = stored(app, old_id).stats
    assert "length_counting" not in old

    result = runner.invoke(args=["recount-datasets"])

    assert result.exit_code == 0, result.output
    after = stored(app, old_id).stats
    assert after == recount(ROWS) and after["length_counting"] == LENGTH_COUNTING
    assert after["estimated_tokens"] > old["estimated_tokens"] and after["mean_tokens"] > old["mean_tokens"]
    assert f"Recounted dataset {old_id} 'old' (8 rows): {old['mean_tokens']} → {after['mean_tokens']}" in (
        result.output
    )
    assert "Recounted 1 dataset(s); 0 changed meanwhile; 0 could not be read; 0 already" in result.output
    # Once is enough: a second run finds nothing left to recount.
    again = runner.invoke(args=["recount-datasets"])
    assert again.exit_code == 0 and "Recounted 0 dataset(s)" in again.output
    assert "1 already counted the current way" in again.output


def test_current_figures_are_left_alone_unless_all(app, runner, store):
    current_id = store("current")
    with app.app_context():  # figures of the current way but wrong: only --all would notice
        dataset = db.session.get_one(Dataset, current_id)
        dataset.stats = {**dataset.stats, "estimated_tokens": 1}
        db.session.commit()

    result = runner.invoke(args=["recount-datasets"])
    assert result.exit_code == 0
    assert "Recounted 0 dataset(s)" in result.output and "1 already counted the current way" in result.output
    assert stored(app, current_id).stats["estimated_tokens"] == 1

    everything = runner.invoke(args=["recount-datasets", "--all"])
    assert everything.exit_code == 0
    assert f"Recounted dataset {current_id} 'current'" in everything.output
    assert stored(app, current_id).stats == recount(ROWS)


def test_dry_run_lists_what_it_would_recount_and_changes_nothing(app, runner, store):
    old_id, current_id = store("old", old_stats=True), store("current")
    old = stored(app, old_id).stats

    result = runner.invoke(args=["recount-datasets", "--dry-run"])

    assert result.exit_code == 0
    assert f"Would recount dataset {old_id} 'old' (8 rows)." in result.output
    assert "'current'" not in result.output
    assert "Would recount 1 dataset(s); 1 already counted the current way. Nothing was changed." in (
        result.output
    )
    assert stored(app, old_id).stats == old and stored(app, current_id).stats == recount(ROWS)


def test_a_dataset_whose_rows_cannot_be_read_is_reported_and_the_rest_recounted(app, runner, store):
    broken_id, missing_id = store("broken", old_stats=True), store("missing", old_stats=True)
    old_id = store("old", old_stats=True)
    broken, missing = stored(app, broken_id), stored(app, missing_id)
    with Path(broken.file_path).open("a", encoding="utf-8") as handle:
        handle.write('{"messages": [\n')
    Path(missing.file_path).unlink()

    result = runner.invoke(args=["recount-datasets"])

    assert result.exit_code == 1
    assert f"Skipped dataset {broken_id} 'broken': its rows could not be read (line 9:" in result.output
    assert f"Skipped dataset {missing_id} 'missing': its file could not be read" in result.output
    assert f"2 could not be read ({broken_id}, {missing_id})" in result.output
    assert stored(app, broken_id).stats == broken.stats and stored(app, missing_id).stats == missing.stats
    assert stored(app, old_id).stats == recount(ROWS)  # after the broken ones, still recounted


def test_a_dataset_edited_while_it_was_counted_keeps_its_edit(app, store):
    from app.datasets.browse import row_digest
    from app.datasets.editing import delete_row
    from app.datasets.recount import count_dataset, store_counted

    old_id = store("old", old_stats=True)
    with app.app_context():
        counted = count_dataset(old_id)
        assert counted is not None and counted.error is None
        # Meanwhile a user deletes a row: the edit recounts the old figures itself.
        delete_row(db.session.get_one(Dataset, old_id), 1, row_digest(ROWS[0]))
        assert not store_counted(counted)
    after = stored(app, old_id)
    assert after.sample_count == 7 and after.stats == recount(ROWS[1:])


def test_figures_stored_without_lengths_are_recounted(app, runner, store):
    """Stored while the tokenizer could not load: the current marker, but no lengths to lint with."""
    dataset_id = store("no lengths")
    with app.app_context():
        dataset = db.session.get_one(Dataset, dataset_id)
        dataset.stats = {
            **dataset.stats,
            "length_buckets": None,
            "estimated_tokens": None,
            "mean_tokens": None,
        }
        db.session.commit()
    result = runner.invoke(args=["recount-datasets"])
    assert result.exit_code == 0, result.output
    assert stored(app, dataset_id).stats == recount(ROWS)
