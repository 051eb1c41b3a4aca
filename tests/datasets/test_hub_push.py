"""Pushing a dataset to the Hub as a dataset repo, through a real `flask worker default --burst` and the
real huggingface_hub client against a fake Hub on loopback: splits as files, a card that names them,
refusals as sentences, the outcome on the dataset's page."""

from __future__ import annotations

import json

import pytest

from app.extensions import db
from app.models import BackgroundJob, Dataset
from tests.conftest import csrf_token, start_worker
from tests.training.test_pipeline import sft_rows

TOKEN = "hf_datasetpushtoken0123456789abcdef"
pytestmark = [pytest.mark.worker, pytest.mark.usefixtures("no_ambient_hub_settings")]


def weather_dataset(app, user) -> int:
    from app.datasets.services import store_rows

    rows = sft_rows(10)
    for row in rows[:3]:
        row["split"] = "eval"
    with app.test_request_context():
        return store_rows(
            user.id, "weather calls", "sft", rows, source="upload", source_format="toolsmith"
        ).id


def push(client, dataset_id: int, repo_id: str, private: bool = True, token: str | None = None):
    data = {"csrf_token": token or csrf_token(client, f"/datasets/{dataset_id}"), "repo_id": repo_id}
    if private:
        data["private"] = "y"
    return client.post(f"/datasets/{dataset_id}/push", data=data, follow_redirects=True)


def queued(app) -> int:
    with app.app_context():
        return db.session.execute(db.select(db.func.count()).select_from(BackgroundJob)).scalar()


def the_dataset(app, dataset_id: int) -> Dataset:
    with app.app_context():
        row = db.session.get(Dataset, dataset_id)
        db.session.expunge(row)
        return row


def test_a_dataset_becomes_a_hub_dataset_repo_with_its_splits(app, signed_in, tmp_path, monkeypatch):
    from tests.hub_server import fake_hub

    client, user = signed_in()
    dataset_id = weather_dataset(app, user)
    assert "Push to the Hugging Face Hub" in client.get(f"/datasets/{dataset_id}").get_data(as_text=True)
    assert "Save a Hugging Face token" in push(client, dataset_id, "alice/weather").get_data(as_text=True)
    with app.app_context():
        db.session.get(type(user), user.id).set_hub_token(TOKEN)
        db.session.commit()
    assert push(client, dataset_id, "x/y", token="forged").status_code == 400
    assert "owner/name" in push(client, dataset_id, "not a repo").get_data(as_text=True)
    assert queued(app) == 0

    page = push(client, dataset_id, " alice/weather-calls ").get_data(as_text=True)
    assert "Pushing to alice/weather-calls" in page and queued(app) == 1
    assert "already under way" in push(client, dataset_id, "alice/other").get_data(as_text=True)
    mallory, _ = signed_in("mallory@example.com")
    assert push(mallory, dataset_id, "mallory/stolen").status_code == 404

    with fake_hub(token=TOKEN) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        worker = start_worker(app, "default", "--burst", log_path=tmp_path / "worker.log")
        assert worker.wait(timeout=120) == 0, (tmp_path / "worker.log").read_text()[-3000:]
    repo = hub.repos["datasets/alice/weather-calls"]
    assert repo["private"] and set(repo["files"]) == {"data/train.jsonl", "data/test.jsonl", "README.md"}
    train = [json.loads(line) for line in repo["files"]["data/train.jsonl"].decode().splitlines()]
    test = [json.loads(line) for line in repo["files"]["data/test.jsonl"].decode().splitlines()]
    assert (len(train), len(test)) == (7, 3) and all(row["split"] == "eval" for row in test)
    card = repo["files"]["README.md"].decode()
    assert "split: test\n    path: data/test.jsonl" in card and "7 train, 3 test rows" in card
    dataset = the_dataset(app, dataset_id)
    assert (
        dataset.hub_push["url"].endswith("/datasets/alice/weather-calls") and dataset.hub_push["rows"] == 10
    )
    page = client.get(f"/datasets/{dataset_id}").get_data(as_text=True)
    assert "Pushed 10 rows to" in page and 'value="alice/weather-calls"' in page


def test_an_unreachable_hub_leaves_the_reason_on_the_dataset(app, signed_in, tmp_path, monkeypatch):
    from tests.training.test_pipeline import closed_port

    client, user = signed_in()
    dataset_id = weather_dataset(app, user)
    with app.app_context():
        db.session.get(type(user), user.id).set_hub_token(TOKEN)
        db.session.commit()
    push(client, dataset_id, "alice/weather")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    worker = start_worker(app, "default", "--burst", log_path=tmp_path / "worker.log")
    assert worker.wait(timeout=120) == 0, (tmp_path / "worker.log").read_text()[-3000:]
    dataset = the_dataset(app, dataset_id)
    assert "unreachable" in dataset.hub_push["error"] and TOKEN not in dataset.hub_push["error"]
    assert "Not pushed to alice/weather" in client.get(f"/datasets/{dataset_id}").get_data(as_text=True)


def test_of_two_pushes_at_once_only_one_queues_and_a_stale_claim_expires(app, signed_in):
    from datetime import timedelta

    from flask_login import login_user

    from app.datasets.hub import push_dataset
    from app.datasets.services import DatasetError
    from app.models import User, utcnow

    _, user = signed_in()
    dataset_id = weather_dataset(app, user)
    with app.test_request_context():
        login_user(db.session.get(User, user.id))
        current_user_row = db.session.get(User, user.id)
        current_user_row.set_hub_token(TOKEN)
        dataset = db.session.get(Dataset, dataset_id)
        db.session.commit()
        assert not dataset.hub_push  # read: no push under way
        # Another tab's push claimed it a moment ago, before its job was queued.
        claim = {"repo": "alice/first", "pushing": True, "claimed": utcnow().isoformat()}
        db.session.execute(db.update(Dataset).where(Dataset.id == dataset_id).values(hub_push=claim))
        db.session.commit()
        with pytest.raises(DatasetError, match="already under way"):
            push_dataset(dataset, "alice/second", True)
        assert queued(app) == 0 and db.session.get(Dataset, dataset_id).hub_push == claim

        # A claim whose request died before queueing its job does not block the dataset for ever.
        old = {**claim, "claimed": (utcnow() - timedelta(minutes=10)).isoformat()}
        db.session.execute(db.update(Dataset).where(Dataset.id == dataset_id).values(hub_push=old))
        db.session.commit()
        job = push_dataset(db.session.get(Dataset, dataset_id), "alice/second", True)
        stored = db.session.get(Dataset, dataset_id).hub_push
        assert queued(app) == 1 and stored["job"] == job.id and stored["repo"] == "alice/second"


def test_a_push_job_adopts_an_unrecorded_claim_and_never_wipes_a_later_one(app, signed_in):
    from jobs.dataset_push import _adopt_claim, _record

    _, user = signed_in()
    dataset_id = weather_dataset(app, user)

    def hub_push() -> dict:
        return the_dataset(app, dataset_id).hub_push

    with app.app_context():
        claim = {"repo": "alice/a", "pushing": True, "claimed": "2026-11-25T12:00:00"}
        db.session.get(Dataset, dataset_id).hub_push = claim
        db.session.commit()
        _adopt_claim(dataset_id, 7)  # its request died before recording the job
    assert hub_push() == {**claim, "job": 7}
    with app.app_context():
        _record(dataset_id, 7, {"repo": "alice/a", "url": "https://hub/alice/a"})
    assert hub_push() == {"repo": "alice/a", "url": "https://hub/alice/a"}
    with app.app_context():
        later = {"repo": "alice/b", "pushing": True, "claimed": "2026-11-25T12:05:00", "job": 8}
        db.session.get(Dataset, dataset_id).hub_push = later
        db.session.commit()
        _record(dataset_id, 7, {"repo": "alice/a", "error": "late"})  # job 7's crash path, after job 8 began
    assert hub_push() == later
