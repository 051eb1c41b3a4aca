"""The training pipeline through a real `flask worker --burst`: a tiny Llama trains a few LoRA SFT and DPO
steps, metrics are stored per step, the adapter is merged and exported to GGUFs that llama.cpp loads,
and the registered model answers in the chat layer; cancel and resume; QLoRA refused on CPU."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from app.configs.templates import TEMPLATES_BY_KEY
from app.extensions import db
from app.models import BackgroundJob, LLMModel, RunMetric, TrainingConfig, TrainingRun, User
from app.serving.gguf_header import read_gguf_header
from tests.conftest import csrf_token, start_worker

pytestmark = pytest.mark.slow

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
HUB_TOKEN = "hf_testtokenforthefakehub0123456789"
CITIES = ["Oslo", "Lima", "Paris", "Tokyo", "Cairo", "Quito", "Perth", "Dakar"]


def sft_rows(n: int = 48) -> list[dict]:
    return [
        {
            "messages": [
                {"role": "user", "content": f"What's the weather in {CITIES[i % len(CITIES)]}?"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": {"city": CITIES[i % 8]}},
                        }
                    ],
                },
            ],
            "tools": [WEATHER],
        }
        for i in range(n)
    ]


def dpo_rows(n: int = 24) -> list[dict]:
    rows = []
    for i in range(n):
        city = CITIES[i % len(CITIES)]
        call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": city}}}
        wrong = {"type": "function", "function": {"name": "get_weather", "arguments": {"town": city}}}
        rows.append(
            {
                "prompt": [{"role": "user", "content": f"Weather in {city}?"}],
                "chosen": [{"role": "assistant", "content": "", "tool_calls": [call]}],
                "rejected": [{"role": "assistant", "content": "", "tool_calls": [wrong]}],
                "tools": [WEATHER],
            }
        )
    return rows


@pytest.fixture
def setup(app, signed_in, tiny_model):
    """A user, the tiny model under MODEL_STORE/tiny, and one SFT and one DPO dataset."""
    from app.datasets.services import store_rows

    client, user = signed_in()
    shutil.copytree(tiny_model, Path(app.config["MODEL_STORE"]) / "tiny")
    with app.test_request_context():
        store_rows(user.id, "weather", "sft", sft_rows(), source="upload", source_format="toolsmith")
        store_rows(user.id, "weather-prefs", "dpo", dpo_rows(), source="upload", source_format="toolsmith")
    return client, user


def save_config(app, user, name: str, template: str, **training) -> int:
    config = TEMPLATES_BY_KEY[template].build()
    config["model"]["name"] = "tiny"
    config["tokenizer"]["max_length"] = 384
    config["training"].update({"batch_size": 4, "logging_steps": 1} | training)
    config["training"].pop("logging_steps")
    config["logging"]["logging_steps"] = 1
    config["export"]["quantization_types"] = ["Q4_K_M", "F16"]
    with app.app_context():
        row = TrainingConfig(owner_id=user.id, name=name, template_type=template, config=config)
        db.session.add(row)
        db.session.commit()
        return row.id


def dataset_id(app, name: str) -> int:
    from app.models import Dataset

    with app.app_context():
        return db.session.execute(db.select(Dataset.id).where(Dataset.name == name)).scalar_one()


def start(client, config_id: int, dataset: int):
    data = {
        "csrf_token": csrf_token(client, "/runs/"),
        "config_id": str(config_id),
        "dataset_id": str(dataset),
    }
    return client.post("/runs/", data=data)


def the_run(app, run_id: int) -> TrainingRun:
    with app.app_context():
        row = db.session.get(TrainingRun, run_id)
        db.session.expunge(row)
        return row


def run_worker(app, tmp_path, timeout: int = 300) -> None:
    worker = start_worker(app, "train", "export", "--burst", log_path=tmp_path / "worker.log")
    assert worker.wait(timeout=timeout) == 0, (tmp_path / "worker.log").read_text()[-4000:]


def test_sft_run_trains_exports_registers_pushes_and_the_model_answers(app, setup, tmp_path, monkeypatch):
    from tests.hub_server import fake_hub

    client, user = setup
    config_id = save_config(app, user, "tiny sft", "sft_toolbench", max_steps=5)
    with app.app_context():
        row = db.session.get(TrainingConfig, config_id)
        export = {"push_to_hub": True, "hub_repo_id": "alice/tiny-weather", "hub_private": True}
        row.config = {**row.config, "export": {**row.config["export"], **export}}
        db.session.get(type(user), user.id).set_hub_token(HUB_TOKEN)
        db.session.commit()
    response = start(client, config_id, dataset_id(app, "weather"))
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    run_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    assert 'hx-trigger="every 2s"' in client.get(f"/runs/{run_id}").get_data(as_text=True)
    with fake_hub(token=HUB_TOKEN) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)  # the worker's huggingface_hub talks to the fake Hub
        run_worker(app, tmp_path)
    pushed = hub.repos["alice/tiny-weather"]
    assert pushed["private"] and {"README.md", "config.json", "run1-Q4_K_M.gguf", "run1-F16.gguf"} <= set(
        pushed["files"]
    )
    assert b"tool-call accuracy" in pushed["files"]["README.md"]
    run = the_run(app, run_id)
    assert run.stage == "done", run.error
    assert run.step == 5 and run.total_steps == 5 and run.loss is not None
    with app.app_context():
        metrics = db.session.execute(db.select(RunMetric).where(RunMetric.run_id == run_id)).scalars().all()
        assert len([m for m in metrics if m.loss is not None]) == 5
        models = db.session.execute(db.select(LLMModel).where(LLMModel.id.in_(run.model_ids))).scalars().all()
        assert {m.quantization for m in models} >= {"Q4_K_M"} and len(models) == 2
        for model in models:
            assert (
                model.owner_id == user.id
                and model.training_method == "sft"
                and model.training_run_id == run_id
            )
            assert model.lora_config["r"] == 16 and model.training_dataset == "weather"
            template = read_gguf_header(model.gguf_path).metadata["tokenizer.chat_template"]
            assert "tools" in template and "<tool_call>" in template
        from app.serving import generate
        from app.serving.types import SamplingParams

        reply = generate(
            models[0],
            [{"role": "user", "content": "Weather in Oslo?"}],
            SamplingParams(temperature=0.0, max_tokens=8),
            tools=[WEATHER],
        )
        assert reply.completion_tokens > 0
        assert set(run.evaluation) >= {"tool_call_accuracy", "valid_call_rate", "eval_rows"}
        assert run.evaluation["eval_rows"] > 0 and models[0].evaluation_metrics == run.evaluation
        config = db.session.get(TrainingConfig, config_id)
        assert config.times_used == 1 and config.last_used_at is not None
        jobs = (
            db.session.execute(
                db.select(BackgroundJob).where(BackgroundJob.owner_id == user.id).order_by(BackgroundJob.id)
            )
            .scalars()
            .all()
        )
        assert [(j.kind, j.queue, j.status) for j in jobs] == [
            ("training", "train", "succeeded"),
            ("export", "export", "succeeded"),
        ]
        assert run.job_id == jobs[-1].id
        assert (
            run.hub_push["repo"] == "alice/tiny-weather"
            and run.hub_push["url"]
            and "error" not in run.hub_push
        )
    page = client.get(f"/runs/{run_id}?answers=all").get_data(as_text=True)
    assert "every 2s" not in page and "Registered models" in page and "<svg" in page
    assert "Held-out answers" in page and f"All {run.evaluation['eval_rows']}" in page  # one per row
    assert page.count("Sample at step 5:") >= 2  # the model's answers to held-out requests, in the log
    # The log tail: the trainer's steps, the export's stages, the registration.
    assert "step 5/5" in page and "Export: converting" in page and "Registered model(s)" in page


def test_dpo_run_trains_and_exports(app, setup, tmp_path):
    client, user = setup
    # Early stopping on but too patient to stop 5 steps: the best evaluation's weights are kept.
    config_id = save_config(
        app, user, "tiny dpo", "dpo_basic", max_steps=5, batch_size=2, early_stopping_patience=10
    )
    with app.app_context():
        row = db.session.get(TrainingConfig, config_id)
        row.config = {**row.config, "logging": {**row.config["logging"], "eval_steps": 2}}
        db.session.commit()
    response = start(client, config_id, dataset_id(app, "weather-prefs"))
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    run_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    run_worker(app, tmp_path)
    run = the_run(app, run_id)
    assert run.stage == "done", run.error
    assert run.step == 5 and len(run.model_ids) == 2
    with app.app_context():
        rows = db.session.execute(db.select(RunMetric).where(RunMetric.run_id == run_id)).scalars().all()
        evaluated = {m.step: m.eval_loss for m in rows if m.eval_loss is not None}
    assert set(evaluated) >= {2, 4} and not run.stopped_early  # every 2 steps, and the last one
    assert run.best_eval_loss == min(evaluated.values()) == evaluated[run.best_step]
    # Evaluated like an SFT run: each held-out pair's prompt, its chosen call expected.
    assert run.evaluation["eval_rows"] > 0 and "tool_call_accuracy" in run.evaluation


def test_a_full_fine_tune_exports_its_trained_weights_not_the_base(app, setup, tmp_path):
    import numpy as np
    from gguf import GGUFReader
    from safetensors.numpy import load_file

    from app.training.files import run_dir

    client, user = setup
    config_id = save_config(app, user, "tiny full", "sft_toolbench", max_steps=2, use_lora=False)
    with app.app_context():
        row = db.session.get(TrainingConfig, config_id)
        training = {**row.config["training"], "learning_rate": 1e-2}  # big steps: changes survive f16
        row.config = {
            **row.config,
            "training": training,
            "export": {"quantization_types": ["F16"]},
            # Only the eval loss: the export generates no held-out answers.
            "evaluation": {"metrics": ["eval_loss"]},
        }
        db.session.commit()
    response = start(client, config_id, dataset_id(app, "weather"))
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    run_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    run_worker(app, tmp_path)
    run = the_run(app, run_id)
    assert run.stage == "done" and len(run.model_ids) == 1, run.error
    assert set(run.evaluation) == {"eval_loss"} and run.evaluation["eval_loss"] > 0
    assert "No held-out answers to generate" in (tmp_path / "worker.log").read_text()
    with app.app_context():
        model = db.session.get(LLMModel, run.model_ids[0])
        trained_dir = run_dir(user.id, run_id) / "trainer" / "adapter"
        assert model.training_method == "sft" and model.lora_config is None
    name = "model.layers.0.mlp.down_proj.weight"
    base = load_file(str(next(Path(app.config["MODEL_STORE"], "tiny").glob("*.safetensors"))))[name]
    trained = load_file(str(next(trained_dir.glob("*.safetensors"))))[name]
    exported = next(t for t in GGUFReader(model.gguf_path).tensors if t.name == "blk.0.ffn_down.weight")
    exported = np.asarray(exported.data, dtype=np.float32).reshape(trained.shape)
    assert not np.allclose(base, trained, atol=1e-3)  # training moved the weights...
    assert np.allclose(exported, trained, atol=1e-2)  # ...and those are the weights in the GGUF


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_failed_export_registers_nothing_and_resume_redoes_only_the_export(
    app, setup, tmp_path, monkeypatch
):
    from app.training.files import run_dir

    client, user = setup
    config_id = save_config(app, user, "tiny export", "sft_toolbench", max_steps=3)
    with app.app_context():  # pushing to a Hub that is unreachable must not fail the run
        row = db.session.get(TrainingConfig, config_id)
        export = {"push_to_hub": True, "hub_repo_id": "alice/tiny-export"}
        row.config = {**row.config, "export": {**row.config["export"], **export}}
        db.session.get(type(user), user.id).set_hub_token(HUB_TOKEN)
        db.session.commit()
    response = start(client, config_id, dataset_id(app, "weather"))
    run_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    worker = start_worker(app, "train", "--burst", log_path=tmp_path / "train.log")  # no export worker
    assert worker.wait(timeout=300) == 0, (tmp_path / "train.log").read_text()[-4000:]
    trained = the_run(app, run_id)
    assert trained.stage == "exporting" and trained.step == 3
    with app.app_context():
        weights = run_dir(user.id, run_id) / "trainer" / "adapter" / "adapter_model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(b"not a safetensors file")
    run_worker(app, tmp_path)
    failed = the_run(app, run_id)
    assert failed.stage == "failed" and failed.error and not failed.model_ids, failed.error
    with app.app_context():
        assert db.session.query(LLMModel).filter_by(training_run_id=run_id).count() == 0
        export_dir = run_dir(user.id, run_id) / "export"
    assert not list(export_dir.glob("*.gguf")) and not list(export_dir.glob(".export-*"))
    page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "Resume the export" in page and "Export failed" in page
    weights.write_bytes(good)
    token = csrf_token(client, f"/runs/{run_id}")
    assert client.post(f"/runs/{run_id}/resume", data={"csrf_token": token}).status_code == 302
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    run_worker(app, tmp_path)
    done = the_run(app, run_id)
    assert done.stage == "done" and len(done.model_ids) == 2, done.error
    assert "unreachable" in done.hub_push["error"] and "url" not in done.hub_push
    assert "Not pushed to alice/tiny-export" in client.get(f"/runs/{run_id}").get_data(as_text=True)
    with app.app_context():
        kinds = [
            j.kind for j in db.session.execute(db.select(BackgroundJob).order_by(BackgroundJob.id)).scalars()
        ]
    assert kinds == ["training", "export", "export"]  # the resume did not train again


def test_dpo_config_on_an_sft_dataset_is_refused_at_submit(app, setup):
    client, user = setup
    config_id = save_config(app, user, "tiny dpo", "dpo_basic", max_steps=5)
    response = start(client, config_id, dataset_id(app, "weather"))
    assert response.status_code == 422 and "preference" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(TrainingRun).count() == 0


def test_what_the_linter_only_warns_about_fails_the_run_in_the_worker_with_the_reason(app, setup, tmp_path):
    """An empty training split and LoRA targets the model lacks pass submit (warnings) and stop the job
    before any training, the run failed with a reason the user can act on."""
    client, user = setup
    empty = save_config(app, user, "tiny empty split", "sft_toolbench", max_steps=2)
    typo = save_config(app, user, "tiny typo", "sft_toolbench", max_steps=2, lora_target_modules=["c_attn"])
    with app.app_context():
        row = db.session.get(TrainingConfig, empty)
        row.config = {**row.config, "data": {**row.config["data"], "train_split": 0.001}}  # 48 rows: 0.05
        db.session.commit()
    run_ids = []
    for config_id in (empty, typo):
        response = start(client, config_id, dataset_id(app, "weather"))
        assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
        run_ids.append(int(response.headers["Location"].rstrip("/").split("/")[-1]))
    run_worker(app, tmp_path)
    empty_run, typo_run = (the_run(app, run_id) for run_id in run_ids)
    assert empty_run.stage == typo_run.stage == "failed"
    assert "The split leaves no training row: 48 rows at a train split of 0.001" in empty_run.error
    assert "c_attn" in typo_run.error and "q_proj" in typo_run.error  # names the model's real modules
    assert empty_run.step == typo_run.step == 0 and not empty_run.model_ids and not typo_run.model_ids


def test_a_run_whose_owner_lost_admin_never_runs_a_repositorys_code(app, setup, tmp_path):
    """trust_remote_code passed the linter while its owner was an admin; the job checks again."""
    client, user = setup
    config_id = save_config(app, user, "tiny trusted", "sft_toolbench", max_steps=2)
    response = start(client, config_id, dataset_id(app, "weather"))
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    run_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    with app.app_context():
        run = db.session.get(TrainingRun, run_id)
        run.config = {**run.config, "model": {**run.config["model"], "trust_remote_code": True}}
        db.session.get(User, user.id).is_admin = False
        db.session.commit()
    run_worker(app, tmp_path)
    run = the_run(app, run_id)
    assert run.stage == "failed" and "Only an admin may run a model repository's own code" in run.error
    assert run.step == 0


def test_qlora_on_a_cpu_worker_is_refused_at_submit_with_the_reason(app, setup):
    client, user = setup
    config_id = save_config(app, user, "tiny qlora", "sft_toolbench", max_steps=5, use_qlora=True)
    response = start(client, config_id, dataset_id(app, "weather"))
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "QLoRA needs a CUDA worker" in html
    with app.app_context():
        assert db.session.query(TrainingRun).count() == 0


def test_cancel_keeps_a_checkpoint_and_resume_continues_from_it(app, setup, tmp_path):
    client, user = setup
    config_id = save_config(app, user, "tiny long", "sft_toolbench", max_steps=400, batch_size=2)
    with app.app_context():  # save often so the cancel has a checkpoint to keep
        row = db.session.get(TrainingConfig, config_id)
        row.config = {**row.config, "logging": {**row.config["logging"], "logging_steps": 2}}
        db.session.commit()
    response = start(client, config_id, dataset_id(app, "weather"))
    run_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    worker = start_worker(app, "train", "export", "--burst", log_path=tmp_path / "worker.log")
    try:
        deadline = time.monotonic() + 180
        while the_run(app, run_id).step < 12:
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.5)
        token = csrf_token(client, f"/runs/{run_id}")
        asked = time.monotonic()
        assert client.post(f"/runs/{run_id}/cancel", data={"csrf_token": token}).status_code == 302
        assert worker.wait(timeout=60) == 0
        assert time.monotonic() - asked < 30
    finally:
        if worker.poll() is None:
            worker.kill()
    cancelled = the_run(app, run_id)
    assert cancelled.stage == "cancelled" and cancelled.last_checkpoint
    with app.app_context():  # the Jobs page agrees (it said "succeeded")
        assert db.session.get(BackgroundJob, cancelled.job_id).status == "cancelled"
    stopped_at = int(cancelled.last_checkpoint.rsplit("-", 1)[-1])
    assert 10 <= stopped_at < 400
    with app.app_context():  # finish quickly on resume
        row = db.session.get(TrainingRun, run_id)
        row.config = {**row.config, "training": {**row.config["training"], "max_steps": stopped_at + 4}}
        db.session.commit()
    token = csrf_token(client, f"/runs/{run_id}")
    assert client.post(f"/runs/{run_id}/resume", data={"csrf_token": token}).status_code == 302
    run_worker(app, tmp_path)
    resumed = the_run(app, run_id)
    assert resumed.stage == "done", resumed.error
    assert resumed.resumed_from_step == cancelled.step and resumed.step == stopped_at + 4


def test_a_killed_worker_leaves_the_run_failed_with_a_reason_and_resumable(app, setup, tmp_path):
    import os
    import signal
    import subprocess

    from app.models import BackgroundJob
    from tests.conftest import PROJECT_ROOT, flask_command, worker_environment

    client, user = setup
    config_id = save_config(app, user, "tiny doomed", "sft_toolbench", max_steps=400, batch_size=2)
    response = start(client, config_id, dataset_id(app, "weather"))
    run_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    worker = start_worker(app, "train", "export", log_path=tmp_path / "worker.log")
    try:
        deadline = time.monotonic() + 180
        while the_run(app, run_id).step < 12:
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.5)
        with app.app_context():
            horse = db.session.get(BackgroundJob, the_run(app, run_id).job_id).worker_pid
        os.kill(horse, signal.SIGKILL)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    time.sleep(app.config["JOB_STALE_SECONDS"] + 1)
    subprocess.run(
        flask_command("reconcile"),
        cwd=PROJECT_ROOT,
        env=worker_environment(app),
        check=True,
        capture_output=True,
    )
    page = client.get(f"/runs/{run_id}").get_data(as_text=True)  # the page settles the run
    failed = the_run(app, run_id)
    assert failed.stage == "failed" and failed.error and failed.last_checkpoint, failed.error
    assert "Resume from step" in page
    with app.app_context():
        row = db.session.get(TrainingRun, run_id)
        stopped_at = int(row.last_checkpoint.rsplit("-", 1)[-1])
        row.config = {**row.config, "training": {**row.config["training"], "max_steps": stopped_at + 2}}
        db.session.commit()
    token = csrf_token(client, f"/runs/{run_id}")
    assert client.post(f"/runs/{run_id}/resume", data={"csrf_token": token}).status_code == 302
    run_worker(app, tmp_path)
    resumed = the_run(app, run_id)
    assert resumed.stage == "done", resumed.error
    assert resumed.step == stopped_at + 2


def test_teacher_mode_writes_the_targets_before_training(app, setup, default_model_id, tmp_path):
    """The registry's default model (a real GGUF through llama.cpp) is the teacher for a few rows."""
    client, user = setup
    config_id = save_config(app, user, "tiny teacher", "teacher_mode", max_steps=2)
    with app.app_context():
        row = db.session.get(TrainingConfig, config_id)
        row.config = {**row.config, "data": {**row.config["data"], "max_samples": 4}}
        db.session.commit()
    response = start(client, config_id, dataset_id(app, "weather"))
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    run_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    run_worker(app, tmp_path)
    run = the_run(app, run_id)
    assert run.stage == "done", run.error
    teacher = run.evaluation["teacher"]
    assert teacher["model"] == "SmolLM2-135M-Instruct" and teacher["rows"] == 4
    assert teacher["rewritten"] + teacher["failed"] == 4 and teacher["rewritten"] >= 1
