"""Held-out rows that truncation leaves no answer: the run trains without an eval loss, and its log says
the rows were held out and cut away, not that none was held out."""

from __future__ import annotations

import shutil
from pathlib import Path

from app.extensions import db
from app.models import BackgroundJob, RunStage, TrainingRun
from app.training.files import run_log_path
from tests.training.test_pipeline import sft_rows

MAX_LENGTH = 256


def long_question(row: dict) -> dict:
    """The row with a request far past MAX_LENGTH tokens before its answer, held out."""
    question = {**row["messages"][0], "content": "Please tell me, " * 100 + row["messages"][0]["content"]}
    return {**row, "messages": [question, *row["messages"][1:]], "split": "eval"}


def test_held_out_rows_all_past_the_max_length_are_named_as_such_and_the_run_finishes(
    app, signed_in, tiny_model
):
    import jobs.train
    from app.datasets.services import store_rows

    _, user = signed_in()
    shutil.copytree(tiny_model, Path(app.config["MODEL_STORE"]) / "tiny")
    rows = sft_rows(8) + [long_question(row) for row in sft_rows(3)]
    config = {
        "model": {"name": "tiny", "torch_dtype": "float32"},
        "tokenizer": {"max_length": MAX_LENGTH},
        "data": {"dataset": "weather", "train_split": 0.99, "eval_split": 0.0},
        "training": {"method": "sft", "max_steps": 2, "batch_size": 4, "early_stopping_patience": 2},
        "logging": {"logging_steps": 1, "eval_steps": 1},
        "evaluation": {"enabled": False},
        "export": {"quantization_types": []},
    }
    with app.test_request_context():
        dataset = store_rows(user.id, "weather", "sft", rows, source="upload", source_format="toolsmith")
        job = BackgroundJob(
            owner_id=user.id, kind="training", title="t", func="jobs.train.run", queue="train"
        )
        db.session.add(job)
        db.session.flush()
        run = TrainingRun(
            owner_id=user.id, name="cut", config=config, dataset_id=dataset.id, dataset_name="weather"
        )
        run.job_id = job.id
        db.session.add(run)
        db.session.commit()
        job_id, run_id = job.id, run.id

        jobs.train.run(job_id, run_id)

        run = db.session.get(TrainingRun, run_id)
        assert run.stage == RunStage.DONE.value and run.step == 2 and run.best_eval_loss is None
        log = run_log_path(user.id, run_id).read_text()
    assert "8 training rows, 3 held out" in log
    assert f"3 of 3 held-out rows have no answer within the max length ({MAX_LENGTH} tokens)" in log
    assert (
        f"Early stopping was off: all 3 held-out rows have no answer within the max length ({MAX_LENGTH} "
        "tokens)" in log
    )
    assert "no row is held out" not in log
