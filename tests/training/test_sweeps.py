"""Sweeps: the value lists and the grid as pure functions, then the start form (one queued run per
combination, all linted first, nothing written on a refusal), the sweep page, cancel / delete, isolation,
and two tiny runs through a real `flask worker --burst` compared on the sweep's page."""

from __future__ import annotations

import re

import pytest

from app.extensions import db
from app.models import BackgroundJob, TrainingConfig, TrainingRun, TrainingSweep
from app.training.sweeps import (
    AXES_BY_KEY,
    SweepError,
    apply_point,
    check_grid_size,
    grid,
    parse_axes,
    parse_values,
    point_label,
    pointless_axes,
)
from tests.conftest import csrf_token
from tests.training.test_pipeline import dataset_id, run_worker, save_config, setup  # noqa: F401

LR, RANK, EPOCHS = (
    AXES_BY_KEY[k] for k in ("training.learning_rate", "training.lora_r", "training.num_epochs")
)

# --- pure functions ---------------------------------------------------------------------------------


def test_values_are_read_in_order_once_each_with_any_separator():
    assert parse_values("1e-4, 2e-4 5e-4;1e-4", LR) == [1e-4, 2e-4, 5e-4]
    assert parse_values(" 8,16 , 8 ", RANK) == [8, 16]
    assert parse_values("1, 2.5", EPOCHS) == [1.0, 2.5]
    assert parse_values("  ", LR) == [] and parse_values(",,", RANK) == []


@pytest.mark.parametrize(
    ("text", "axis", "message"),
    [
        ("1e-4, abc", LR, "“abc” is not a learning rate: each value must be a positive number."),
        ("0", LR, "“0” is not a learning rate"),
        ("-1e-4", LR, "“-1e-4” is not a learning rate"),
        ("nan", LR, "“nan” is not a learning rate"),
        ("1e999", LR, "“1e999” is not a learning rate"),
        ("8.5", RANK, "“8.5” is not a LoRA rank: each value must be a whole number of at least 1."),
        ("0", RANK, "“0” is not a LoRA rank"),
        ("9" * 40, RANK, "“" + "9" * 19 + "…” is not a LoRA rank"),
        ("1 2 3 4 5 6 7 8 9", EPOCHS, "At most 8 values of epochs (9 given)."),
    ],
)
def test_a_wrong_value_is_named(text, axis, message):
    with pytest.raises(SweepError) as caught:
        parse_values(text, axis)
    assert message in str(caught.value)


def test_the_grid_varies_the_first_axis_slowest_and_is_bounded():
    axes = parse_axes(
        {"training.lora_r": "4 8", "training.learning_rate": "1e-4,3e-4", "training.num_epochs": ""}
    )
    assert list(axes) == ["training.learning_rate", "training.lora_r"]  # the form's order, empty ones out
    assert grid(axes) == [
        {"training.learning_rate": 1e-4, "training.lora_r": 4},
        {"training.learning_rate": 1e-4, "training.lora_r": 8},
        {"training.learning_rate": 3e-4, "training.lora_r": 4},
        {"training.learning_rate": 3e-4, "training.lora_r": 8},
    ]
    check_grid_size(axes)
    with pytest.raises(SweepError, match=r"at most 8 combinations; 3 × 3 makes 9"):
        check_grid_size({"a": [1, 2, 3], "b": [1, 2, 3]})
    with pytest.raises(SweepError, match="at least two values"):
        check_grid_size({"training.learning_rate": [1e-4]})


def test_a_point_changes_a_copy_of_the_config_and_names_itself():
    config = {"training": {"learning_rate": 2e-4, "lora_r": 16, "method": "sft"}, "seed": 1}
    changed = apply_point(config, {"training.learning_rate": 5e-4, "training.lora_r": 8})
    assert changed["training"] == {"learning_rate": 5e-4, "lora_r": 8, "method": "sft"}
    assert config["training"]["learning_rate"] == 2e-4  # the saved config is untouched
    assert point_label({"training.learning_rate": 5e-4, "training.lora_r": 8}) == "lr 0.0005 · r 8"
    assert point_label({"training.num_epochs": 2.0}) == "epochs 2"


def test_axes_that_would_change_nothing_are_refused():
    assert "without LoRA" in pointless_axes({"training": {"use_lora": False}}, {"training.lora_r": [4, 8]})
    assert "max_steps 50" in pointless_axes({"training": {"max_steps": 50}}, {"training.num_epochs": [1, 2]})
    assert pointless_axes({"training": {"max_steps": 50}}, {"training.learning_rate": [1e-4, 2e-4]}) is None


# --- the start form and the sweep page --------------------------------------------------------------


def start_sweep(client, config_id: int, dataset: int, **sweep):
    data = {
        "csrf_token": csrf_token(client, "/runs/"),
        "config_id": str(config_id),
        "dataset_id": str(dataset),
        "name": "lr hunt",
    } | sweep
    return client.post("/runs/", data=data)


def counts(app) -> tuple[int, int, int]:
    with app.app_context():
        return (
            db.session.query(TrainingSweep).count(),
            db.session.query(TrainingRun).count(),
            db.session.query(BackgroundJob).count(),
        )


def test_a_sweep_queues_one_linted_run_per_combination(app, setup):  # noqa: F811
    client, user = setup
    config_id = save_config(app, user, "tiny sft", "sft_toolbench", max_steps=3)
    response = start_sweep(
        client,
        config_id,
        dataset_id(app, "weather"),
        sweep_learning_rates="1e-4, 3e-4",
        sweep_lora_ranks="4 8",
    )
    assert response.status_code == 302 and "/runs/sweeps/" in response.headers["Location"]
    with app.app_context():
        sweep = db.session.execute(db.select(TrainingSweep)).scalar_one()
        assert sweep.owner_id == user.id and sweep.name == "lr hunt" and sweep.config_name == "tiny sft"
        assert sweep.axes == {"training.learning_rate": [1e-4, 3e-4], "training.lora_r": [4, 8]}
        runs = db.session.execute(db.select(TrainingRun).order_by(TrainingRun.id)).scalars().all()
        assert [(r.config["training"]["learning_rate"], r.config["training"]["lora_r"]) for r in runs] == [
            (1e-4, 4),
            (1e-4, 8),
            (3e-4, 4),
            (3e-4, 8),
        ]
        assert [r.name for r in runs][:2] == ["lr hunt · lr 0.0001 · r 4", "lr hunt · lr 0.0001 · r 8"]
        assert all(r.sweep_id == sweep.id and r.stage == "queued" for r in runs)
        assert runs[3].sweep_point == {"training.learning_rate": 3e-4, "training.lora_r": 8}
        assert all(r.config["data"]["dataset"] == "weather" for r in runs)
        jobs = [db.session.get(BackgroundJob, r.job_id) for r in runs]
        assert {(j.queue, j.status) for j in jobs} == {("train", "queued")}
        assert db.session.get(TrainingConfig, config_id).times_used == 4
        sweep_id = sweep.id

    page = client.get(f"/runs/sweeps/{sweep_id}").get_data(as_text=True)
    assert page.count('id="sweep-run-') == 4 and "every 3s" in page  # live while runs go on
    assert "learning rate 0.0001, 0.0003; LoRA rank 4, 8" in page
    listing = client.get("/runs/").get_data(as_text=True)
    assert listing.count(f'href="/runs/sweeps/{sweep_id}"') == 5  # the sweeps card and each run
    assert "0 done of 4" in listing and "learning rate × LoRA rank" in listing


def test_the_checks_panel_lists_every_combination(app, setup):  # noqa: F811
    client, user = setup
    config_id = save_config(app, user, "tiny sft", "sft_toolbench", max_steps=3)
    data = {
        "csrf_token": csrf_token(client, "/runs/"),
        "config_id": str(config_id),
        "dataset_id": str(dataset_id(app, "weather")),
        "sweep_learning_rates": "1e-4 2e-4 4e-4",
    }
    html = client.post("/runs/check", data=data).get_data(as_text=True)
    assert "A sweep of 3 runs" in html and "lr 0.0004: ready" in html and "Memory estimate" in html
    html = client.post("/runs/check", data=data | {"sweep_lora_ranks": "1 2 3"}).get_data(as_text=True)
    assert "3 × 3 makes 9" in html
    assert counts(app) == (0, 0, 0)


@pytest.mark.parametrize(
    ("template", "sweep", "message"),
    [
        ("sft_toolbench", {"sweep_learning_rates": "1e-4, fast"}, "“fast” is not a learning rate"),
        ("sft_toolbench", {"sweep_learning_rates": "1 2 3", "sweep_lora_ranks": "1 2 3"}, "3 × 3 makes 9"),
        ("sft_toolbench", {"sweep_epochs": "1 2"}, "max_steps 3: the epochs change nothing"),
        ("sft_toolbench", {"sweep_learning_rates": "1e-4"}, "at least two values"),
        ("dpo_basic", {"sweep_learning_rates": "1e-4 2e-4"}, "errors for this dataset at lr 0.0001"),
        ("sft_toolbench", {"sweep_learning_rates": "1e-4 2e-4", "name": "x" * 121}, "Field cannot be longer"),
    ],
)
def test_a_refused_sweep_says_why_and_writes_nothing(app, setup, template, sweep, message):  # noqa: F811
    client, user = setup
    config_id = save_config(app, user, "tiny", template, max_steps=3)
    response = start_sweep(client, config_id, dataset_id(app, "weather"), **sweep)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert counts(app) == (0, 0, 0)
    with app.app_context():
        assert db.session.get(TrainingConfig, config_id).times_used == 0


def test_a_refused_point_shows_its_full_report(app, setup):  # noqa: F811
    client, user = setup
    config_id = save_config(app, user, "tiny dpo", "dpo_basic", max_steps=3)
    response = start_sweep(client, config_id, dataset_id(app, "weather"), sweep_lora_ranks="4 8")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Checks for r 4" in html and "pick a preference dataset" in html
    assert 'id="sweep-fields" open' in html  # the typed values stay in view


def test_a_sweep_with_the_queue_down_leaves_no_run_waiting(app, setup):  # noqa: F811
    client, user = setup
    config_id = save_config(app, user, "tiny sft", "sft_toolbench", max_steps=3)
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    app.extensions.pop("toolsmith_redis", None)
    response = start_sweep(client, config_id, dataset_id(app, "weather"), sweep_learning_rates="1e-4 2e-4")
    assert response.status_code == 503
    assert "0 of the sweep&#39;s 2 runs were queued" in response.get_data(as_text=True)
    assert counts(app) == (0, 0, 0)
    response = start_sweep(client, config_id, dataset_id(app, "weather"))  # a single run, the same
    assert response.status_code == 503 and "job queue is unavailable" in response.get_data(as_text=True)
    assert counts(app) == (0, 0, 0)
    with app.app_context():
        assert db.session.get(TrainingConfig, config_id).times_used == 0


def test_cancel_stops_the_queued_runs_then_delete_removes_the_sweep(app, setup):  # noqa: F811
    client, user = setup
    config_id = save_config(app, user, "tiny sft", "sft_toolbench", max_steps=3)
    response = start_sweep(client, config_id, dataset_id(app, "weather"), sweep_learning_rates="1e-4 2e-4")
    sweep_url = response.headers["Location"]
    token = csrf_token(client, sweep_url)

    refused = client.post(f"{sweep_url}/delete", data={"csrf_token": token}, follow_redirects=True)
    assert "Cancel the sweep&#39;s runs before deleting it." in refused.get_data(as_text=True)
    assert counts(app)[:2] == (1, 2)

    assert client.post(f"{sweep_url}/cancel", data={}).status_code == 400  # CSRF
    page = client.post(f"{sweep_url}/cancel", data={"csrf_token": token}, follow_redirects=True)
    html = page.get_data(as_text=True)
    assert "Stopping 2 runs" in html and "every 3s" not in html  # all ended: the page stops polling
    with app.app_context():
        assert {r.stage for r in db.session.execute(db.select(TrainingRun)).scalars()} == {"cancelled"}

    gone = client.post(f"{sweep_url}/delete", data={"csrf_token": token}, follow_redirects=True)
    assert "Deleted the sweep and its 2 runs" in gone.get_data(as_text=True)
    assert counts(app)[:2] == (0, 0)
    assert client.get(sweep_url).status_code == 404


def test_another_users_sweep_is_indistinguishable_from_a_missing_one(app, setup, signed_in):  # noqa: F811
    client, user = setup
    config_id = save_config(app, user, "tiny sft", "sft_toolbench", max_steps=3)
    sweep_url = start_sweep(
        client, config_id, dataset_id(app, "weather"), sweep_learning_rates="1e-4 2e-4"
    ).headers["Location"]
    mallory, _ = signed_in("mallory@example.com")
    token = csrf_token(mallory, "/runs/")
    assert mallory.get(sweep_url).status_code == 404
    assert mallory.post(f"{sweep_url}/cancel", data={"csrf_token": token}).status_code == 404
    assert mallory.post(f"{sweep_url}/delete", data={"csrf_token": token}).status_code == 404
    assert "sweeps/" not in mallory.get("/runs/").get_data(as_text=True)
    with app.app_context():
        assert {r.stage for r in db.session.execute(db.select(TrainingRun)).scalars()} == {"queued"}


# --- through a real worker --------------------------------------------------------------------------


@pytest.mark.slow
def test_two_tiny_runs_train_and_the_page_marks_the_lower_eval_loss(app, setup, tmp_path):  # noqa: F811
    client, user = setup
    config_id = save_config(app, user, "tiny sft", "sft_toolbench", max_steps=4)
    with app.app_context():  # evaluate at the end of training; export the one GGUF the page needs
        row = db.session.get(TrainingConfig, config_id)
        config = dict(row.config)
        config["data"] = {**config["data"], "train_split": 0.9, "eval_split": 0.1}
        config["logging"] = {**config["logging"], "eval_steps": 4}
        config["export"] = {**config["export"], "quantization_types": ["F16"]}
        row.config = config
        db.session.commit()
    sweep_url = start_sweep(
        client, config_id, dataset_id(app, "weather"), sweep_learning_rates="1e-5 1e-3"
    ).headers["Location"]
    run_worker(app, tmp_path, timeout=400)

    with app.app_context():
        runs = db.session.execute(db.select(TrainingRun).order_by(TrainingRun.id)).scalars().all()
        assert [r.stage for r in runs] == ["done", "done"], [r.error for r in runs]
        assert [r.config["training"]["learning_rate"] for r in runs] == [1e-5, 1e-3]
        assert all(r.model_ids for r in runs)
        lowest = min(runs, key=lambda r: r.best_eval_loss if r.best_eval_loss is not None else _last_eval(r))
    html = client.get(sweep_url).get_data(as_text=True)
    assert "every 3s" not in html and html.count("badge-done") == 2 and "Delete the sweep" in html
    rows = dict(re.findall(r'<tr id="sweep-run-(\d+)">(.*?)</tr>', html, re.S))
    assert [run_id for run_id, cells in rows.items() if "best-eval-loss" in cells] == [str(lowest.id)]
    assert html.count("<path") >= 4  # a train and an eval curve per run
    model_ids = [model_id for run in runs for model_id in run.model_ids]
    assert "Evaluate the 2 registered models" in html
    assert f"Save the config of run #{lowest.id}" in html
    assert all(f"model_id={model_id}" in html for model_id in model_ids)


def _last_eval(run: TrainingRun) -> float:
    from app.models import RunMetric

    query = db.select(RunMetric.eval_loss).where(RunMetric.run_id == run.id, RunMetric.eval_loss.is_not(None))
    return db.session.execute(query.order_by(RunMetric.id.desc())).scalars().first()


def test_a_queued_run_says_how_many_jobs_wait_ahead_and_whether_a_worker_listens(app, setup):  # noqa: F811
    import redis
    from rq import Worker

    client, user = setup
    config_id = save_config(app, user, "tiny sft", "sft_toolbench", max_steps=3)
    start_sweep(client, config_id, dataset_id(app, "weather"), sweep_learning_rates="1e-4 2e-4 3e-4")
    with app.app_context():
        first, _, third = db.session.execute(db.select(TrainingRun.id).order_by(TrainingRun.id)).scalars()
    page = client.get(f"/runs/{third}?poll=1").get_data(as_text=True)
    assert "2 jobs ahead in the train queue" in page and "No worker listens on the train queue" in page
    assert "next in the train queue" in client.get(f"/runs/{first}?poll=1").get_data(as_text=True)

    # A worker registered on `train` (not working: it would take the runs) counts as listening.
    worker = Worker(["train"], connection=redis.Redis.from_url(app.config["REDIS_URL"]), name="idle-train")
    worker.register_birth()
    try:
        page = client.get(f"/runs/{third}?poll=1").get_data(as_text=True)
        assert "2 jobs ahead" in page and "No worker listens" not in page
    finally:
        worker.register_death()


def test_a_runs_config_is_saved_as_a_new_config_with_its_swept_values(app, setup, signed_in):  # noqa: F811
    client, user = setup
    config_id = save_config(app, user, "tiny sft", "sft_toolbench", max_steps=3)
    start_sweep(client, config_id, dataset_id(app, "weather"), sweep_lora_ranks="4 8")
    with app.app_context():
        run = db.session.execute(db.select(TrainingRun).order_by(TrainingRun.id.desc())).scalars().first()
        run_id, run_name = run.id, run.name
    token = csrf_token(client, f"/runs/{run_id}")
    assert client.post(f"/runs/{run_id}/save-config", data={}).status_code == 400  # CSRF
    response = client.post(f"/runs/{run_id}/save-config", data={"csrf_token": token})
    assert response.status_code == 302 and "/configs/" in response.headers["Location"]
    with app.app_context():
        saved = (
            db.session.execute(db.select(TrainingConfig).order_by(TrainingConfig.id.desc())).scalars().first()
        )
        assert saved.id != config_id and saved.owner_id == user.id
        assert saved.name == f"{run_name} (run #{run_id})" and saved.template_type == "sft_toolbench"
        assert saved.config["training"]["lora_r"] == 8 and saved.config["training"]["max_steps"] == 3

    from app.models import Dataset

    with app.app_context():  # the dataset is gone: the snapshot no longer lints, nothing is saved
        db.session.delete(
            db.session.execute(db.select(Dataset).where(Dataset.name == "weather")).scalar_one()
        )
        db.session.commit()
    page = client.post(f"/runs/{run_id}/save-config", data={"csrf_token": token}, follow_redirects=True)
    assert "no longer passes the linter: data.dataset: You have no dataset named" in page.get_data(
        as_text=True
    )
    with app.app_context():
        assert db.session.query(TrainingConfig).count() == 2

    mallory, _ = signed_in("mallory@example.com")
    mallory_token = csrf_token(mallory, "/runs/")
    assert mallory.post(f"/runs/{run_id}/save-config", data={"csrf_token": mallory_token}).status_code == 404


def test_a_queued_run_page_shows_no_position_when_redis_is_down(app, setup):  # noqa: F811
    client, user = setup
    config_id = save_config(app, user, "tiny sft", "sft_toolbench", max_steps=3)
    start_sweep(client, config_id, dataset_id(app, "weather"), sweep_learning_rates="1e-4 2e-4")
    with app.app_context():
        run_id = db.session.execute(db.select(TrainingRun.id).order_by(TrainingRun.id)).scalars().first()
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    app.extensions.pop("toolsmith_redis", None)
    response = client.get(f"/runs/{run_id}?poll=1")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "queued" in html
    assert 'id="queue-wait"' not in html and 'id="no-worker"' not in html
