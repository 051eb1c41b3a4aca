"""Evaluations through the pages and a real `flask worker`: BFCL and dataset cases, local and remote
models side by side, a provider that is down, cancel, validation and isolation."""

from __future__ import annotations

import csv
import io
import re
import time

import pytest
from markupsafe import escape

from app.extensions import db
from app.models import Evaluation, EvaluationItem, EvaluationResult, LLMModel
from tests.conftest import LLAMA_SERVER_ALIAS, csrf_token, post_form, start_worker
from tests.datasets.test_pages import datasets, generate
from tests.registry.conftest import add_model, model_rows
from tests.specs.test_specs_and_nl_api import PETSTORE, spec_id_of, upload_spec


def start(client, **fields):
    data = {
        "csrf_token": csrf_token(client, "/evaluations/new"),
        "benchmark": "bfcl",
        "categories": ["simple_python", "irrelevance"],
        "cases": "2",
    }
    data.update(fields)
    return client.post("/evaluations/new", data=data)


def evaluations(app) -> list[Evaluation]:
    with app.app_context():
        rows = list(db.session.execute(db.select(Evaluation).order_by(Evaluation.id)).scalars())
        for row in rows:
            _ = row.results
            db.session.expunge(row)
        return rows


def results(app, evaluation_id: int) -> list[EvaluationResult]:
    with app.app_context():
        query = db.select(EvaluationResult).where(EvaluationResult.evaluation_id == evaluation_id)
        rows = list(db.session.execute(query.order_by(EvaluationResult.position)).scalars())
        for row in rows:
            db.session.expunge(row)
        return rows


def items_of(app, result_id: int) -> list[EvaluationItem]:
    with app.app_context():
        query = db.select(EvaluationItem).where(EvaluationItem.result_id == result_id)
        rows = list(db.session.execute(query.order_by(EvaluationItem.position)).scalars())
        for row in rows:
            db.session.expunge(row)
        return rows


def run_worker(app, tmp_path, timeout: int = 240) -> None:
    worker = start_worker(app, "eval", "--burst", log_path=tmp_path / "worker.log")
    assert worker.wait(timeout=timeout) == 0, (tmp_path / "worker.log").read_text()[-3000:]


def add_endpoint(client, name: str, base_url: str) -> int:
    response = add_model(
        client,
        {"provider": "openai_compatible", "name": name, "base_url": base_url, "model_id": LLAMA_SERVER_ALIAS},
    )
    assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
    return model_rows(client.application)[-1].id


def test_bfcl_local_and_remote_side_by_side_and_a_dead_endpoint_fails_alone(
    app, signed_in, default_model_id, llama_server_url, tmp_path, dead_port
):
    admin, _ = signed_in("admin@example.com")  # loopback endpoints are for admins
    served = add_endpoint(admin, "llama.cpp server", llama_server_url)
    dead = add_endpoint(admin, "dead server", f"http://127.0.0.1:{dead_port}/v1")
    page = admin.get("/evaluations/new").get_data(as_text=True)
    assert "SmolLM2" in page and "llama.cpp server" in page and "Parallel multiple" in page
    response = start(admin, model_ids=[str(default_model_id), str(served), str(dead)])
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    (evaluation,) = evaluations(app)
    assert evaluation.status == "queued" and evaluation.benchmark == "bfcl"
    assert 'hx-trigger="every 2s"' in admin.get(response.headers["Location"]).get_data(as_text=True)

    run_worker(app, tmp_path)

    (evaluation,) = evaluations(app)
    assert evaluation.status == "done", evaluation.error
    local, remote, down = results(app, evaluation.id)
    for result in (local, remote):
        assert result.status == "done" and result.cases == 4 and result.errors == 0
        assert set(result.per_category) == {"simple_python", "irrelevance"}
        assert sum(entry["correct"] for entry in result.per_category.values()) == result.correct
        assert result.latency_s > 0 and result.completion_tokens > 0
        scored = items_of(app, result.id)
        assert [item.position for item in scored] == [0, 1, 2, 3]
        for item in scored:
            assert item.prompt and item.expected and item.got and item.latency_s > 0
            assert item.correct or item.reason  # every miss says why
    # The remote model's four requests went out together; its items still come back in the cases' order.
    assert [i.case_id for i in items_of(app, remote.id)] == [i.case_id for i in items_of(app, local.id)]
    assert down.status == "failed" and "3 failed requests in a row" in down.error
    assert down.errors == 3 and down.correct == 0
    page = admin.get(f"/evaluations/{evaluation.id}").get_data(as_text=True)
    assert 'id="leaderboard"' in page and "every 2s" not in page
    assert "Qwen3-0.6B" in page and "published, full sets" in page  # BFCL's own board beside ours
    assert "dead server" in page and "failed requests in a row" in page
    poll = admin.get(f"/evaluations/{evaluation.id}?poll=1", headers={"HX-Request": "true"})
    assert poll.headers.get("HX-Refresh") == "true"
    listing = admin.get("/evaluations/").get_data(as_text=True)
    assert evaluation.title in listing
    download = admin.get(f"/evaluations/{evaluation.id}/cases.csv")
    rows = list(csv.reader(io.StringIO(download.get_data(as_text=True))))
    assert download.mimetype == "text/csv"
    assert rows[0][:5] == ["model", "case", "category", "prompt", "correct"]
    assert len(rows) == 1 + 4 + 4 + 3 and {row[0] for row in rows[1:]} == {
        "SmolLM2-135M-Instruct",
        "llama.cpp server",
        "dead server",
    }
    again = admin.get(f"/evaluations/new?benchmark=bfcl&model_id={served}&model_id={dead}").get_data(
        as_text=True
    )
    ticked = re.findall(r'<input checked[^>]*name="model_ids"[^>]*value="(\d+)"', again)
    assert sorted(ticked) == sorted([str(served), str(dead)])  # "New evaluation like this" keeps the models
    model_page = admin.get(f"/models/{served}").get_data(as_text=True)
    assert "Your evaluations of this model" in model_page and f"/evaluations/{evaluation.id}" in model_page


def test_dataset_held_out_rows_with_constrained_calls(app, signed_in, default_model_id, tmp_path):
    client, _ = signed_in()
    upload_spec(client, PETSTORE, "petstore")
    generate(client, spec_id_of(app, "petstore"), samples_per_operation=5, eval_fraction=0.2, tools_per_row=3)
    (dataset,) = datasets(app)
    assert dataset.eval_count > 3
    form = client.get(f"/evaluations/new?dataset_id={dataset.id}").get_data(as_text=True)
    assert "held-out rows" in form
    response = start(
        client,
        benchmark="dataset",
        dataset_id=str(dataset.id),
        cases="3",
        constrained="y",
        model_ids=[str(default_model_id)],
    )
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    run_worker(app, tmp_path)
    (evaluation,) = evaluations(app)
    (result,) = results(app, evaluation.id)
    assert evaluation.status == "done" and result.status == "done" and result.cases == 3
    assert set(result.per_category) <= {"call", "no_call"}
    for item in items_of(app, result.id):
        if item.got != "no call":
            assert item.valid, item.got  # the grammar only lets valid calls through
    page = client.get(f"/evaluations/{evaluation.id}?show=all").get_data(as_text=True)
    assert "Makes a call" in page and dataset.name in page
    assert all(str(escape(item.prompt)) in page for item in items_of(app, result.id))  # each request shown


def test_cancel_stops_a_running_evaluation_and_keeps_its_scores(app, signed_in, default_model_id, tmp_path):
    client, _ = signed_in()
    response = start(client, categories=["simple_python"], cases="400", model_ids=[str(default_model_id)])
    assert response.status_code == 302
    (evaluation,) = evaluations(app)
    worker = start_worker(app, "eval", log_path=tmp_path / "worker.log")
    try:
        deadline = time.monotonic() + 120
        while not results(app, evaluation.id)[0].cases:
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.5)
        assert post_form(client, f"/evaluations/{evaluation.id}/cancel").status_code == 302
        deadline = time.monotonic() + 30
        while evaluations(app)[0].status != "cancelled":
            assert time.monotonic() < deadline
            client.get(f"/evaluations/{evaluation.id}")  # the page settles it once the job has ended
            time.sleep(0.5)
    finally:
        worker.kill()
        worker.wait()
    (result,) = results(app, evaluation.id)
    assert (
        result.status == "stopped"
        and 0 < result.cases < 400
        and len(items_of(app, result.id)) == result.cases
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"model_ids": []}, "Pick at least one model."),
        ({"cases": "0"}, "Number must be between 1 and 400."),
        ({"cases": "100000"}, "Number must be between 1 and 400."),
        ({"cases": "lots"}, "Not a valid integer value."),
        ({"categories": []}, "Pick at least one category."),
        ({"categories": ["../../etc/passwd"]}, "not a valid choice"),
        ({"benchmark": "mmlu"}, "Not a valid choice"),
        ({"benchmark": "dataset"}, "Pick a dataset."),
        ({"benchmark": "dataset", "dataset_id": "999"}, "Not a valid choice"),
        ({"model_ids": ["999"]}, "not a valid choice"),
        ({"model_ids": ["x"]}, "Invalid choice"),
    ],
)
def test_bad_requests_are_refused_with_the_reason_and_store_nothing(
    app, signed_in, default_model_id, fields, message
):
    client, _ = signed_in()
    response = start(client, **{"model_ids": [str(default_model_id)], **fields})
    assert response.status_code == 422
    assert message.lower() in response.get_data(as_text=True).lower()
    assert evaluations(app) == []


def test_csrf_is_required(app, signed_in, default_model_id):
    client, _ = signed_in()
    response = client.post(
        "/evaluations/new", data={"benchmark": "bfcl", "model_ids": [str(default_model_id)]}
    )
    assert response.status_code == 400 and evaluations(app) == []


def test_another_users_models_datasets_and_evaluations_are_out_of_reach(app, signed_in, default_model_id):
    bob, bob_user = signed_in("bob@example.com")
    upload_spec(bob, PETSTORE, "petstore")
    generate(bob, spec_id_of(app, "petstore"), samples_per_operation=2)
    (bobs_dataset,) = datasets(app)
    with app.app_context():
        private = LLMModel(
            owner_id=bob_user.id, name="bob's model", provider="local_gguf", gguf_path="/x.gguf"
        )
        db.session.add(private)
        db.session.commit()
        private_id = private.id
    assert start(bob, model_ids=[str(default_model_id)]).status_code == 302
    (bobs,) = evaluations(app)

    alice, _ = signed_in("alice@example.com")
    form = alice.get("/evaluations/new").get_data(as_text=True)
    assert "bob&#39;s model" not in form and "bob's model" not in form and bobs_dataset.name not in form
    assert start(alice, model_ids=[str(private_id)]).status_code == 422
    assert (
        start(
            alice, benchmark="dataset", dataset_id=str(bobs_dataset.id), model_ids=[str(default_model_id)]
        ).status_code
        == 422
    )
    assert alice.get(f"/evaluations/{bobs.id}").status_code == 404
    assert post_form(alice, f"/evaluations/{bobs.id}/cancel").status_code == 404
    assert post_form(alice, f"/evaluations/{bobs.id}/delete").status_code == 404
    assert bobs.title not in alice.get("/evaluations/").get_data(as_text=True)
    assert len(evaluations(app)) == 1

    # Bob deletes his queued evaluation: its job is cancelled, the rows are gone.
    assert post_form(bob, f"/evaluations/{bobs.id}/delete").status_code == 302
    assert evaluations(app) == []


def test_the_board_ranks_by_accuracy_not_by_how_many_cases_were_answered(app, signed_in):
    client, user = signed_in()
    with app.app_context():
        evaluation = Evaluation(owner_id=user.id, title="t", benchmark="bfcl", status="cancelled")
        evaluation.results = [
            EvaluationResult(model_name="weak-but-finished", provider="local", cases=10, correct=3),
            EvaluationResult(model_name="not-started", provider="local", cases=0, correct=0),
            EvaluationResult(model_name="strong-but-stopped", provider="local", cases=2, correct=2),
        ]
        db.session.add(evaluation)
        db.session.commit()
        evaluation_id = evaluation.id
    page = client.get(f"/evaluations/{evaluation_id}").get_data(as_text=True)
    board = page[page.index('id="leaderboard"') :]
    order = [board.index(name) for name in ("strong-but-stopped", "weak-but-finished", "not-started")]
    assert order == sorted(order)


def test_a_new_evaluation_not_yet_given_its_job_is_not_called_lost_but_an_old_one_is(app, signed_in):
    from datetime import timedelta

    from app.models import utcnow

    client, user = signed_in()
    with app.app_context():
        evaluation = Evaluation(owner_id=user.id, title="t", benchmark="bfcl")  # enqueue still in flight
        db.session.add(evaluation)
        db.session.commit()
        evaluation_id = evaluation.id
    assert client.get(f"/evaluations/{evaluation_id}").status_code == 200
    assert [e.status for e in evaluations(app)] == ["queued"]
    with app.app_context():
        db.session.get(Evaluation, evaluation_id).created_at = utcnow() - timedelta(minutes=5)
        db.session.commit()
    client.get(f"/evaluations/{evaluation_id}")
    (evaluation,) = evaluations(app)
    assert evaluation.status == "failed" and evaluation.error == "The evaluation job was lost."
