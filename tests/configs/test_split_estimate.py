"""The step count and time estimate train on the rows the trainer trains on: rows marked `split` keep
their side whatever the shares say, the shares cut the unmarked rows, and max_samples cuts the training
side after the split (`jobs.training.data.split_rows`)."""

from __future__ import annotations

import contextlib
import itertools
import json
from pathlib import Path

import pytest

from app.configs.estimates import split_sizes
from app.configs.linter import DatasetFacts, LintContext, Throughput, lint
from app.configs.templates import TEMPLATES_BY_KEY
from jobs.training.data import split_rows


def row(text: str, split: str | None = None) -> dict:
    messages = [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}]
    return {"messages": messages, "split": split} if split else {"messages": messages}


def dataset(unmarked: int, marked_train: int = 0, marked_eval: int = 0) -> list[dict]:
    """Every row asks its own request (rows asking one request move together, which no count can tell)."""
    return (
        [row(f"train {i}", "train") for i in range(marked_train)]
        + [row(f"eval {i}", "eval") for i in range(marked_eval)]
        + [row(f"free {i}") for i in range(unmarked)]
    )


SHAPES = [(1000, 0, 0), (0, 900, 100), (0, 30, 0), (0, 0, 12), (200, 50, 20), (7, 3, 0), (1, 0, 0), (2, 0, 5)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_the_estimated_split_is_the_trainers_split(shape):
    rows = dataset(*shape)
    for train_split, eval_split, max_samples, seed in itertools.product(
        (0.05, 0.1, 0.33, 0.5, 0.9, 0.999), (0.0, 0.05, 0.1, 0.4), (None, 1, 5, 100, 5000), (0, 7)
    ):
        if train_split + eval_split > 1:
            continue
        splits = split_rows(rows, train_split, eval_split, seed, max_samples)
        sizes = split_sizes(*shape, train_split, eval_split, max_samples)
        assert (sizes.train, sizes.eval) == (len(splits.train), len(splits.eval)), (
            shape,
            train_split,
            eval_split,
            max_samples,
        )


def toolbench(**data) -> dict:
    config = TEMPLATES_BY_KEY["sft_toolbench"].build()
    config["data"].update(dataset="rows", **data)
    config["training"].update(batch_size=8, num_epochs=3.0)
    return config


def estimated_steps(config: dict, facts: DatasetFacts) -> int:
    context = LintContext(datasets={"rows": facts}, throughput=Throughput(1000.0, run_id=1))
    report = lint(config, context)
    assert report.time is not None, report.findings
    return report.time.steps


def test_rows_marked_train_are_trained_on_whatever_the_train_split():
    generated = DatasetFacts("sft", 1000, eval_rows=100, marked_train_rows=900, mean_tokens=100)
    config = toolbench(train_split=0.1, eval_split=0.0)
    assert len(split_rows(dataset(0, 900, 100), 0.1, 0.0, seed=42).train) == 900
    assert estimated_steps(config, generated) == 3 * 113  # 900 rows, 8 a step, 3 epochs
    report = lint(config, LintContext(datasets={"rows": generated}))
    assert not {"too_few_steps", "empty_train_split"} & report.rules()


def test_max_samples_cuts_the_training_side_after_the_split():
    imported = DatasetFacts("sft", 1000, mean_tokens=100)
    assert len(split_rows(dataset(1000), 0.5, 0.1, seed=42, max_samples=100).train) == 100
    assert estimated_steps(toolbench(train_split=0.5, max_samples=100), imported) == 3 * 13


def test_datasets_counted_before_they_kept_the_train_marks_count_none():
    old = DatasetFacts("sft", 1000, eval_rows=100, mean_tokens=100)  # marked_train_rows unknown: None
    assert old.marked_train_rows is None
    assert estimated_steps(toolbench(train_split=0.5), old) == 3 * 57  # round(900 × 0.5) = 450 rows


def test_a_split_rounding_to_no_row_warns_only_when_no_row_is_marked_for_training():
    config = toolbench(train_split=0.1, eval_split=0.0)
    marked = lint(config, LintContext(datasets={"rows": DatasetFacts("sft", 4, marked_train_rows=4)}))
    assert "empty_train_split" not in marked.rules()
    unmarked = lint(config, LintContext(datasets={"rows": DatasetFacts("sft", 4)}))
    assert "empty_train_split" in unmarked.rules()


# --- the count of rows marked train, kept in the dataset's figures ------------------------------------


@contextlib.contextmanager
def signed_in_request(app, user_id: int):
    from flask_login import login_user

    from app.extensions import db
    from app.models import User

    with app.test_request_context():
        login_user(db.session.get(User, user_id))
        yield


def test_the_figures_count_rows_marked_train_through_edits_and_a_new_draw(app, make_user):
    from app.configs.services import user_datasets
    from app.datasets import editing
    from app.datasets.browse import row_digest
    from app.datasets.services import store_rows
    from app.datasets.stats import dataset_stats
    from app.extensions import db
    from app.models import Dataset

    rows = dataset(6, marked_train=3, marked_eval=2)
    assert dataset_stats(rows, "sft")["marked_train_rows"] == 3
    user = make_user("split@example.com")
    with signed_in_request(app, user.id):
        stored = store_rows(user.id, "rows", "sft", rows, source="upload", source_format="toolsmith")
        assert user_datasets()["rows"].marked_train_rows == 3

        stored = editing.set_row_split(stored, 8, row_digest(rows[7]), "train")  # an unmarked row
        assert stored.stats["marked_train_rows"] == 4
        stored = editing.delete_row(stored, 1, row_digest(rows[0]))  # a marked one
        assert stored.stats["marked_train_rows"] == 3
        stored = editing.append_rows(stored, [row("new", "train")])
        assert stored.stats["marked_train_rows"] == 4
        stored = editing.draw_split(stored, 0.2, seed=1)  # rows not drawn lose their marks
        assert stored.stats["marked_train_rows"] == 0
        assert user_datasets()["rows"].marked_train_rows == 0

        # Figures stored before the count was kept: unknown, and the next edit counts it again.
        old = db.session.get(Dataset, stored.id)
        old.stats = {k: v for k, v in old.stats.items() if k != "marked_train_rows"}
        db.session.commit()
        assert user_datasets()["rows"].marked_train_rows is None
        first = json.loads(Path(old.file_path).read_text().splitlines()[0])
        stored = editing.set_row_split(old, 1, row_digest(first), "train")
        assert stored.stats["marked_train_rows"] == 1
