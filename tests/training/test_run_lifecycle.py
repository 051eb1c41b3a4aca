"""A run's edges, without training: whose folders a run may start from, which checkpoint is resumable,
what retry and delete leave of registered models, two clicks on Resume, a job whose run moved on, a
cancel during the export's evaluation, and held-out rows too long for the context."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.configs.templates import TEMPLATES_BY_KEY
from app.extensions import db
from app.model_store import model_folder
from app.models import BackgroundJob, JobStatus, LLMModel, Provider, RunStage, TrainingRun, User
from app.training.files import last_checkpoint, run_dir

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def hf_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    return path


# --- which folders a run may train from -------------------------------------------------------------


def test_a_user_trains_from_shared_folders_and_their_own_runs_only(tmp_path):
    store = tmp_path / "store"
    shared = hf_folder(store / "curated" / "tiny")
    own = hf_folder(store / "runs" / "1" / "5" / "export" / "merged")
    other = hf_folder(store / "runs" / "2" / "6" / "export" / "merged")
    hf_folder(store / "uploads" / "m")
    hf_folder(tmp_path / "outside")
    (store / "loop").symlink_to(store / "loop")  # an admin's mistake: resolving it never ends

    assert model_folder(store, "curated/tiny", 1) == shared.resolve()
    assert model_folder(store, " runs/1/5/export/merged ", 1) == own.resolve()
    assert model_folder(store, "runs/2/6/export/merged", 1) is None  # another user's trained weights
    assert model_folder(store, "runs/1/../2/6/export/merged", 1) is None
    assert model_folder(store, "runs/2/6/export/merged", 2) == other.resolve()
    assert model_folder(store, "uploads/m", 1) is None
    assert model_folder(store, "runs", 1) is None
    for hostile in (
        "../outside",
        str(tmp_path / "outside"),
        "",
        "curated",
        "a\x00b",
        "x" * 300,
        "a/" + "y" * 400,
        "loop",
        "loop/sub",
    ):
        assert model_folder(store, hostile, 1) is None, hostile


def test_the_job_does_not_resolve_another_users_run_as_a_base(app, tmp_path, dead_port):
    from jobs.training.base_model import BaseModelError, resolve_base_model

    store = tmp_path / "store"
    hf_folder(store / "runs" / "2" / "6" / "export" / "merged")
    app.config["HF_ENDPOINT"] = f"http://127.0.0.1:{dead_port}"
    with app.app_context():
        with pytest.raises(BaseModelError, match="neither a folder under the model store"):
            resolve_base_model("runs/2/6/export/merged", store, owner_id=1)
        assert resolve_base_model("runs/2/6/export/merged", store, owner_id=2).name == "merged"


@pytest.mark.usefixtures("no_ambient_hub_settings")
def test_a_hub_base_model_is_fetched_with_the_owners_token_never_the_workers(
    app, signed_in, tmp_path, monkeypatch
):
    """The worker's own credentials (`HF_TOKEN`, a cached login) would let any user train from models
    only the server's account may read."""
    from jobs.training.base_model import BaseModelError, resolve_base_model
    from tests.llama_server import HTTPAnswer, serve_http

    monkeypatch.setenv("HF_TOKEN", "hf_OPERATORSECRET0123456789")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    _, alice = signed_in()
    _, bob = signed_in("bob@example.com")
    with app.app_context():
        db.session.get(User, bob.id).set_hub_token("hf_BOBSOWNTOKEN0123456789")
        db.session.commit()
    seen = []
    with serve_http(lambda request: HTTPAnswer(404, "{}", {"Content-Type": "application/json"}), seen) as url:
        app.config["HF_ENDPOINT"] = url
        with app.app_context():
            for owner in (alice.id, bob.id):
                with pytest.raises(BaseModelError):
                    resolve_base_model("operator-org/private-model", tmp_path / "store", owner_id=owner)
    sent = [request.headers.get("authorization") for request in seen]
    assert sent, "the Hub was never asked"
    assert not any("OPERATORSECRET" in (header or "") for header in sent)
    assert None in sent and "Bearer hf_BOBSOWNTOKEN0123456789" in sent  # alice: none; bob: his own
    assert not resolve_base_model_names_a_cache(tmp_path / "store")


def resolve_base_model_names_a_cache(store) -> bool:
    """Whether a Hub cache path under the store passes as a base model folder (it must not: it would
    skip the owner's token)."""
    from app.model_store import model_folder

    hf_folder(store / "hub" / ".user-2" / "models--org--m" / "snapshots" / "abc")
    return model_folder(store, "hub/.user-2/models--org--m/snapshots/abc", 1) is not None


def test_the_linter_reads_no_facts_from_another_users_run(app, signed_in):
    from app.configs.services import model_facts

    client, alice = signed_in()
    store = Path(app.config["MODEL_STORE"])
    config = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128}
    config["vocab_size"] = 100
    for owner in (alice.id, alice.id + 1):
        folder = store / "runs" / str(owner) / "3" / "export" / "merged"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps(config))
    with app.test_request_context():
        from flask_login import login_user

        login_user(db.session.get(User, alice.id))
        assert model_facts(f"runs/{alice.id}/3/export/merged") is not None
        assert model_facts(f"runs/{alice.id + 1}/3/export/merged") is None
        assert model_facts("a\x00b") is None and model_facts("x" * 300) is None


# --- checkpoints --------------------------------------------------------------------------------------


def test_a_checkpoint_cut_short_is_never_resumed_from_nor_prunes_a_complete_one(tmp_path):
    for step, complete in ((2, True), (4, True), (6, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "adapter_model.safetensors").write_bytes(b"x")
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-4"
    assert (tmp_path / "checkpoint-2").is_dir()  # two complete ones are kept


def test_pruning_keeps_the_best_checkpoint_of_early_stopping(tmp_path):
    for step in (2, 4, 6, 8):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        best = str(tmp_path / "checkpoint-2")  # transformers writes the path it saved to
        (folder / "trainer_state.json").write_text(json.dumps({"best_model_checkpoint": best}))
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-8"
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["checkpoint-2", "checkpoint-6", "checkpoint-8"]


# --- retry, delete and a registered model's files ---------------------------------------------------


def export_name_of(folder: Path, run_id: int) -> str:
    from jobs.export import export_name

    return export_name(folder, run_id)


def test_a_new_export_never_takes_a_registered_files_name(tmp_path):
    assert export_name_of(tmp_path, 7) == "run7"
    (tmp_path / "run7-Q4_K_M.gguf").write_bytes(b"GGUF")
    assert export_name_of(tmp_path, 7) == "run7-2"
    (tmp_path / "run7-2-F16.gguf").write_bytes(b"GGUF")
    assert export_name_of(tmp_path, 7) == "run7-3"
    assert export_name_of(tmp_path, 70) == "run70"


@pytest.fixture
def finished_run(app, signed_in):
    """A done run of alice's with one registered GGUF in its export folder, and a checkpoint."""
    client, alice = signed_in()
    with app.app_context():
        run = TrainingRun(
            owner_id=alice.id,
            name="done run",
            config=TEMPLATES_BY_KEY["sft_toolbench"].build(),
            dataset_name="d",
            stage=RunStage.DONE.value,
            step=5,
            total_steps=5,
        )
        db.session.add(run)
        db.session.flush()
        folder = run_dir(alice.id, run.id)
        gguf = folder / "export" / f"run{run.id}-Q4_K_M.gguf"
        gguf.parent.mkdir(parents=True)
        gguf.write_bytes(b"GGUF registered")
        checkpoint = folder / "trainer" / "checkpoint-5"
        checkpoint.mkdir(parents=True)
        (checkpoint / "trainer_state.json").write_text("{}")
        model = LLMModel(
            owner_id=alice.id,
            name="done run Q4_K_M",
            provider=Provider.LOCAL_GGUF,
            gguf_path=str(gguf),
            training_run_id=run.id,
        )
        db.session.add(model)
        db.session.flush()
        run.model_ids = [model.id]
        run.evaluation = {"eval_rows": 4, "tool_call_accuracy": 0.75, "valid_call_rate": 1.0}
        run.evaluation |= {"right_tool_rate": 1.0, "model": gguf.name}
        db.session.commit()
        return client, alice, run.id, model.id, gguf


def test_retry_keeps_the_registered_gguf_and_detaches_its_model(app, finished_run):
    from app.training.services import retry_run

    client, alice, run_id, model_id, gguf = finished_run
    with app.test_request_context():
        run = db.session.get(TrainingRun, run_id)
        retry_run(run)
        assert run.stage == RunStage.QUEUED.value and run.model_ids == [] and run.evaluation == {}
        assert db.session.get(LLMModel, model_id).training_run_id is None
        assert not (run_dir(alice.id, run_id) / "trainer").exists()
    assert gguf.read_bytes() == b"GGUF registered"
    assert export_name_of(gguf.parent, run_id) == f"run{run_id}-2"  # the new export writes beside it


def test_a_retry_the_queue_cannot_take_leaves_the_finished_run_as_it_was(app, finished_run, monkeypatch):
    import redis

    from tests.conftest import csrf_token
    from tests.training.test_pipeline import closed_port

    client, alice, run_id, model_id, gguf = finished_run
    token = csrf_token(client, f"/runs/{run_id}")
    down = redis.Redis(port=closed_port(), socket_connect_timeout=1)  # a real Redis client, no server
    monkeypatch.setattr("app.queueing.redis_connection", lambda: down)
    page = client.post(f"/runs/{run_id}/retry", data={"csrf_token": token}, follow_redirects=True)
    assert "job queue is unavailable" in page.get_data(as_text=True)
    with app.app_context():
        run = db.session.get(TrainingRun, run_id)
        assert run.stage == RunStage.DONE.value and run.model_ids == [model_id] and run.step == 5
        assert run.evaluation["tool_call_accuracy"] == 0.75
        assert db.session.get(LLMModel, model_id).training_run_id == run_id
        assert db.session.query(BackgroundJob).count() == 0
        assert (run_dir(alice.id, run_id) / "trainer" / "checkpoint-5").is_dir()


def test_a_retry_whose_queue_dies_after_the_wipe_is_failed_not_an_empty_done_run(
    app, finished_run, monkeypatch
):
    import redis

    from app.queueing import EnqueueError
    from app.training.services import retry_run

    class AnswersThenRefuses:  # Redis answering the ping, then gone before the job is pushed
        connection = redis.Redis()

        def enqueue(self, *args, **kwargs):
            raise redis.ConnectionError("Connection refused")

    client, alice, run_id, model_id, gguf = finished_run
    monkeypatch.setattr("app.queueing.get_queue", lambda name: AnswersThenRefuses())
    with app.test_request_context():
        with pytest.raises(EnqueueError):
            retry_run(db.session.get(TrainingRun, run_id))
        db.session.expire_all()
        run = db.session.get(TrainingRun, run_id)
        assert run.stage == RunStage.FAILED.value and "could not be queued" in run.error
        assert run.model_ids == [] and run.step == 0 and run.is_final  # retryable again
        assert db.session.query(BackgroundJob).count() == 0


def test_deleting_a_run_keeps_its_models_files_and_no_later_run_adopts_them(app, finished_run):
    from app.training.services import delete_run

    client, alice, run_id, model_id, gguf = finished_run
    with app.test_request_context():
        delete_run(db.session.get(TrainingRun, run_id))
        model = db.session.get(LLMModel, model_id)
        assert model is not None and model.training_run_id is None
    assert gguf.is_file() and not (gguf.parent.parent / "trainer").exists()


def test_a_run_retried_from_another_tab_is_not_deleted_under_it(app, finished_run):
    from app.training.services import RunRefused, delete_run

    client, alice, run_id, model_id, gguf = finished_run
    with app.test_request_context():
        run = db.session.get(TrainingRun, run_id)
        assert run.is_final  # read as final: the check in delete_run passes
        db.session.execute(
            db.update(TrainingRun)
            .where(TrainingRun.id == run_id)
            .values(stage=RunStage.QUEUED.value)
            .execution_options(synchronize_session=False)
        )  # another tab's Retry claimed it meanwhile
        with pytest.raises(RunRefused, match="meanwhile"):
            delete_run(run)
        db.session.expire_all()
        assert db.session.get(TrainingRun, run_id) is not None
        assert db.session.get(LLMModel, model_id).training_run_id == run_id  # the detach rolled back
        assert (run_dir(alice.id, run_id) / "trainer" / "checkpoint-5").is_dir()


def test_a_retry_forgets_the_earlier_attempts_figures_and_push(app, finished_run):
    from app.training.services import retry_run

    client, alice, run_id, model_id, gguf = finished_run
    with app.test_request_context():
        run = db.session.get(TrainingRun, run_id)
        run.hub_push = {"repo": "alice/done", "url": "https://huggingface.co/alice/done", "files": 2}
        run.best_step, run.best_eval_loss, run.stopped_early = 4, 0.25, True
        run.epoch, run.learning_rate, run.tokens_per_second, run.eta_seconds = 1.0, 1e-4, 99.0, 0.0
        db.session.commit()
        retry_run(run)
        db.session.expire_all()
        run = db.session.get(TrainingRun, run_id)
        assert run.hub_push == {} and (run.best_step, run.best_eval_loss, run.stopped_early) == (
            None,
            None,
            False,
        )
        assert (run.epoch, run.learning_rate, run.tokens_per_second, run.eta_seconds) == (None,) * 4
    assert "Pushed" not in client.get(f"/runs/{run_id}").get_data(as_text=True)


def test_cancel_on_a_run_that_already_ended_says_so(app, finished_run):
    from tests.conftest import csrf_token

    client, alice, run_id, model_id, gguf = finished_run
    token = csrf_token(client, f"/runs/{run_id}")
    page = client.post(f"/runs/{run_id}/cancel", data={"csrf_token": token}, follow_redirects=True)
    text = page.get_data(as_text=True)
    assert "already ended (done)" in text and "Stopping the run" not in text


def test_the_run_page_lists_only_its_own_models_when_an_id_is_reused(app, finished_run, make_user):
    client, alice, run_id, model_id, gguf = finished_run
    bob = make_user("bob@example.com")
    with app.app_context():
        run = db.session.get(TrainingRun, run_id)
        gone = model_id + 1
        run.model_ids = [model_id, gone]  # a second model, since deleted: SQLite gives its id away
        db.session.add(
            LLMModel(id=gone, owner_id=bob.id, name="bobs secret model", provider=Provider.LOCAL_GGUF)
        )
        db.session.commit()
    page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "done run Q4_K_M" in page and "bobs secret model" not in page


def test_of_two_resumes_at_once_only_one_enqueues(app, finished_run):
    from app.training.services import RunRefused, resume_run

    client, alice, run_id, model_id, gguf = finished_run
    with app.test_request_context():
        run = db.session.get(TrainingRun, run_id)
        run.stage, run.step, run.total_steps = RunStage.FAILED.value, 3, 5
        run.last_checkpoint = str(run_dir(alice.id, run_id) / "trainer" / "checkpoint-5")
        db.session.commit()
        jobs_before = db.session.query(BackgroundJob).count()
        assert run.stage == RunStage.FAILED.value  # read: the check in resume_run will pass
        # Another request resumed it a moment ago: this one still holds the run as it was read.
        db.session.execute(
            db.update(TrainingRun)
            .where(TrainingRun.id == run_id)
            .values(stage=RunStage.QUEUED.value)
            .execution_options(synchronize_session=False)
        )
        with pytest.raises(RunRefused, match="already"):
            resume_run(run)
        assert db.session.query(BackgroundJob).count() == jobs_before
        assert run.stage == RunStage.QUEUED.value


def test_the_page_refuses_a_second_retry_of_the_same_run(app, finished_run):
    from tests.conftest import csrf_token

    client, alice, run_id, model_id, gguf = finished_run
    token = csrf_token(client, f"/runs/{run_id}")
    assert client.post(f"/runs/{run_id}/retry", data={"csrf_token": token}).status_code == 302
    page = client.post(f"/runs/{run_id}/retry", data={"csrf_token": token}, follow_redirects=True)
    assert "still going" in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(BackgroundJob).filter_by(kind="training").count() == 1


# --- jobs that lost their run, and cancel during the evaluation --------------------------------------


def queued_job(owner_id: int, kind: str) -> int:
    job = BackgroundJob(owner_id=owner_id, kind=kind, title=kind, func="x", queue="train")
    db.session.add(job)
    db.session.commit()
    return job.id


@pytest.mark.parametrize("kind", ["training", "export"])
def test_a_job_whose_run_was_resumed_since_stops_and_leaves_the_run_alone(app, finished_run, kind):
    import jobs.export
    import jobs.train
    from jobs.training.run_record import RunHandedOver

    client, alice, run_id, model_id, gguf = finished_run
    with app.app_context():
        stale, newer = queued_job(alice.id, kind), queued_job(alice.id, kind)
        run = db.session.get(TrainingRun, run_id)
        run.stage, run.job_id = RunStage.QUEUED.value, newer
        db.session.commit()
        with pytest.raises(RunHandedOver, match=f"job {newer}"):
            if kind == "training":
                jobs.train.run(stale, run_id, True)
            else:
                jobs.export.run(stale, run_id)
        run = db.session.get(TrainingRun, run_id)
        assert run.stage == RunStage.QUEUED.value and run.job_id == newer and not run.error
        assert db.session.get(BackgroundJob, stale).status == JobStatus.FAILED


def eval_row(city: str, extra: str = "") -> dict:
    call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": city}}}
    return {
        "messages": [
            {"role": "user", "content": f"{extra}What's the weather in {city}?"},
            {"role": "assistant", "content": "", "tool_calls": [call]},
        ],
        "tools": [WEATHER],
    }


def test_a_held_out_row_too_long_for_the_context_is_left_out_not_fatal():
    from app.serving.default_model import default_gguf_path
    from jobs.training.evaluate import evaluate_gguf

    rows = [eval_row("Oslo"), eval_row("Lima", "Please read this first. " * 200)]
    report = evaluate_gguf(default_gguf_path(), rows, n_ctx=512, threads=2)
    assert report.rows == 1 and report.skipped == 1 and "context" in report.skip_reason
    assert report.metrics()["skipped_rows"] == 1 and len(report.items) == 1
    assert "skipped_rows" not in evaluate_gguf(default_gguf_path(), rows[:1], threads=2).metrics()


def test_cancel_during_the_exports_evaluation_stops_it(app, finished_run):
    from app.serving.default_model import default_gguf_path
    from jobs.export import _evaluate
    from jobs.progress import JobCancelled, Progress

    client, alice, run_id, model_id, gguf = finished_run
    with app.app_context():
        job_id = queued_job(alice.id, "export")
        run = db.session.get(TrainingRun, run_id)
        run.stage, run.job_id, run.cancel_requested = RunStage.EXPORTING.value, job_id, True
        db.session.commit()
        folder = run_dir(alice.id, run_id)
        log = __import__("logging").getLogger("test")
        with pytest.raises(JobCancelled):
            _evaluate(
                run_id,
                folder,
                {"Q4_K_M": default_gguf_path()},
                [eval_row("Oslo")],
                ["tool_call_accuracy"],
                1024,
                Progress(job_id),
                log,
            )


def test_only_an_adapter_marked_trained_lets_resume_skip_to_the_export(app, finished_run):
    """The step count reaches the last step before the final weights are saved, and a cancel saves an
    adapter too: only the marker written after a whole save means "trained"."""
    from app.training.files import mark_trained
    from app.training.services import training_finished

    client, alice, run_id, model_id, gguf = finished_run
    with app.app_context():
        run = db.session.get(TrainingRun, run_id)
        adapter = run_dir(alice.id, run_id) / "trainer" / "adapter"
        adapter.mkdir(parents=True)
        (adapter / "adapter_model.safetensors").write_bytes(b"a cancel's weights")
        assert run.step >= run.total_steps and not training_finished(run)
        mark_trained(adapter, step=3)  # early stopping ended it before the planned last step
        run.step = 3
        assert training_finished(run)
        assert not [p for p in adapter.iterdir() if p.name.endswith(".part")]


def test_an_export_attempt_clears_ggufs_earlier_attempts_left_unregistered(app, finished_run):
    import logging

    from jobs.export import _remove_unregistered_ggufs, export_name

    client, alice, run_id, model_id, gguf = finished_run
    left = gguf.parent / f"run{run_id}-2-F16.gguf"  # an attempt cancelled during its evaluation
    left.write_bytes(b"GGUF never registered")
    with app.app_context():
        _remove_unregistered_ggufs(gguf.parent, alice.id, logging.getLogger("test"))
    assert gguf.read_bytes() == b"GGUF registered" and not left.exists()
    assert export_name(gguf.parent, run_id) == f"run{run_id}-2"  # still never the registered file's name


def test_a_queued_run_that_never_got_a_job_cancels_at_once_and_can_be_deleted(app, signed_in):
    from tests.conftest import csrf_token

    client, alice = signed_in()
    with app.app_context():
        run = TrainingRun(owner_id=alice.id, name="orphan", config=TEMPLATES_BY_KEY["sft_toolbench"].build(),
                          dataset_name="d", stage="queued", job_id=None)  # fmt: skip
        db.session.add(run)
        db.session.commit()
        run_id = run.id
    token = csrf_token(client, f"/runs/{run_id}")
    client.post(f"/runs/{run_id}/cancel", data={"csrf_token": token})
    with app.app_context():
        assert db.session.get(TrainingRun, run_id).stage == RunStage.CANCELLED.value
    client.post(f"/runs/{run_id}/delete", data={"csrf_token": token})
    with app.app_context():
        assert db.session.get(TrainingRun, run_id) is None


def test_compare_lists_only_the_models_each_run_registered(app, signed_in):
    client, alice = signed_in()
    with app.app_context():
        ids = []
        for name in ("a", "b"):
            run = TrainingRun(owner_id=alice.id, name=name, config=TEMPLATES_BY_KEY["sft_toolbench"].build(),
                              dataset_name="d", stage="done")  # fmt: skip
            db.session.add(run)
            db.session.flush()
            ids.append(run.id)
        mine = LLMModel(
            owner_id=alice.id, name="run a Q4", provider=Provider.LOCAL_GGUF, training_run_id=ids[0]
        )
        db.session.add(mine)
        db.session.flush()
        reused = mine.id + 1  # a deleted model's id, now another (global) model's
        db.session.get(TrainingRun, ids[0]).model_ids = [mine.id, reused]
        db.session.add(
            LLMModel(id=reused, owner_id=None, name="unrelated global model", provider=Provider.LOCAL_GGUF)
        )
        db.session.commit()
    page = client.get("/runs/compare", query_string={"run": [str(i) for i in ids]}).get_data(as_text=True)
    assert "run a Q4" in page and "unrelated global model" not in page


@pytest.mark.parametrize("trained", [False, True], ids=["resume training", "resume the export"])
def test_a_resumed_run_shows_no_eta_from_its_earlier_attempt(app, finished_run, trained):
    from app.training.files import mark_trained
    from app.training.services import resume_run

    client, alice, run_id, model_id, gguf = finished_run
    with app.app_context():
        run = db.session.get(TrainingRun, run_id)
        run.stage, run.eta_seconds, run.step = RunStage.CANCELLED.value, 1234.0, 3
        if trained:
            adapter = run_dir(alice.id, run_id) / "trainer" / "adapter"
            adapter.mkdir(parents=True)
            mark_trained(adapter, step=3)
        run.last_checkpoint = str(run_dir(alice.id, run_id) / "trainer" / "checkpoint-5")
        db.session.commit()
        resume_run(run)
        run = db.session.get(TrainingRun, run_id)
        assert run.stage == (RunStage.EXPORTING.value if trained else RunStage.QUEUED.value)
        assert run.eta_seconds is None
    assert "ETA" not in client.get(f"/runs/{run_id}").get_data(as_text=True)


def test_a_trained_run_that_asked_for_no_export_finishes_on_resume_without_making_one(app, finished_run):
    from app.training.files import mark_trained

    client, alice, run_id, model_id, gguf = finished_run
    with app.app_context():
        run = db.session.get(TrainingRun, run_id)
        run.config = {**run.config, "export": {**run.config["export"], "quantization_types": []}}
        run.stage, run.error = RunStage.FAILED.value, "Writing the held-out rows failed."
        adapter = run_dir(alice.id, run_id) / "trainer" / "adapter"
        adapter.mkdir(parents=True)
        mark_trained(adapter, step=5)
        db.session.commit()
    page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "Finish the run (no export asked for)" in page
    from tests.conftest import csrf_token

    client.post(f"/runs/{run_id}/resume", data={"csrf_token": csrf_token(client, f"/runs/{run_id}")})
    with app.app_context():
        run = db.session.get(TrainingRun, run_id)
        assert run.stage == RunStage.DONE.value and run.error is None and run.job_id is None
