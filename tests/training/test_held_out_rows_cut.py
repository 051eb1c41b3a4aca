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


def run_now(app, user, tiny_model, rows: list[dict]) -> TrainingRun:
    """A run of `rows` at MAX_LENGTH, its job run here and now (in the caller's app context); the run as
    it ended."""
    import jobs.train
    from app.datasets.services import store_rows

    shutil.copytree(tiny_model, Path(app.config["MODEL_STORE"]) / "tiny", dirs_exist_ok=True)
    config = {
        "model": {"name": "tiny", "torch_dtype": "float32"},
        "tokenizer": {"max_length": MAX_LENGTH},
        "data": {"dataset": "weather", "train_split": 0.99, "eval_split": 0.0},
        "training": {"method": "sft", "max_steps": 2, "batch_size": 4, "early_stopping_patience": 2},
        "logging": {"logging_steps": 1, "eval_steps": 1},
        "evaluation": {"enabled": False},
        "export": {"quantization_types": []},
    }
    dataset = store_rows(user.id, "weather", "sft", rows, source="upload", source_format="toolsmith")
    job = BackgroundJob(owner_id=user.id, kind="training", title="t", func="jobs.train.run", queue="train")
    db.session.add(job)
    db.session.flush()
    run = TrainingRun(owner_id=user.id, name="cut", config=config, dataset_id=dataset.id, dataset_name="t")
    run.job_id = job.id
    db.session.add(run)
    db.session.commit()
    job_id, run_id = job.id, run.id
    try:
        jobs.train.run(job_id, run_id)
    except Exception:  # a failed job raises, for RQ: the run and the job row say how it ended
        pass
    return db.session.get(TrainingRun, run_id)


def test_held_out_rows_all_past_the_max_length_are_named_as_such_and_the_run_finishes(
    app, signed_in, tiny_model
):
    _, user = signed_in()
    with app.test_request_context():
        run = run_now(app, user, tiny_model, sft_rows(8) + [long_question(row) for row in sft_rows(3)])
        assert run.stage == RunStage.DONE.value and run.step == 2 and run.best_eval_loss is None
        log = run_log_path(user.id, run.id).read_text()
    assert "8 training rows, 3 held out" in log
    assert f"3 of 3 held-out rows have no answer within the max length ({MAX_LENGTH} tokens)" in log
    assert (
        f"Early stopping was off: all 3 held-out rows have no answer within the max length ({MAX_LENGTH} "
        "tokens)" in log
    )
    assert "no row is held out" not in log


def test_a_refused_run_says_why_in_words_not_with_the_exceptions_module_path(app, signed_in, tiny_model):
    _, user = signed_in()
    with app.test_request_context():
        rows = [{**long_question(row), "split": "train"} for row in sft_rows(4)]
        run = run_now(app, user, tiny_model, rows)
        job = db.session.get(BackgroundJob, run.job_id)
        assert run.stage == RunStage.FAILED.value
        said = "No training row has an assistant answer within the max length"
        assert run.error.startswith(said), run.error
        assert job.error == run.error and "jobs.training" not in job.error


def test_the_planned_step_count_shows_while_the_base_model_is_prepared(
    app, signed_in, tiny_model, monkeypatch
):
    """Preparing a base model can take a minute: the run page said "step 0 / ?" all along."""
    import jobs.training.base_model

    seen = []
    resolve = jobs.training.base_model.resolve_base_model

    def resolve_and_look(*args, **kwargs):
        db.session.expire_all()
        seen.append(db.session.execute(db.select(TrainingRun.total_steps)).scalar_one())
        return resolve(*args, **kwargs)

    monkeypatch.setattr(jobs.training.base_model, "resolve_base_model", resolve_and_look)
    _, user = signed_in()
    with app.test_request_context():
        run = run_now(app, user, tiny_model, sft_rows(8))
        assert run.stage == RunStage.DONE.value
    assert seen == [2]  # the config's max_steps, known before the model is
