"""Dataset pages: generate from Petstore (inline and as a job), import glaive, preview, download, delete."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from app.extensions import db
from app.models import BackgroundJob, Dataset, JobStatus
from tests.conftest import csrf_token, start_worker
from tests.specs.test_specs_and_nl_api import PETSTORE, spec_id_of, upload_spec

GLAIVE = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "fixtures"
    / "sft"
    / "glaive_toolcall_en_demo.json"
)

GOOD_LINE = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}'

pytestmark = pytest.mark.skipif(not GLAIVE.is_file(), reason="../shared/fixtures is not beside the repo")


def datasets(app) -> list[Dataset]:
    with app.app_context():
        rows = list(db.session.execute(db.select(Dataset).order_by(Dataset.id)).scalars())
        for row in rows:
            db.session.expunge(row)
        return rows


def upload_dataset(client, body: bytes, filename: str, name: str = ""):
    data = {
        "csrf_token": csrf_token(client, "/datasets/"),
        "name": name,
        "file": (io.BytesIO(body), filename),
    }
    return client.post("/datasets/upload", data=data, content_type="multipart/form-data")


def generate(client, spec_id: int, **fields):
    data = {
        "csrf_token": csrf_token(client, "/datasets/"),
        "spec_id": str(spec_id),
        "samples_per_operation": "20",
        "seed": "7",
        "eval_fraction": "0.1",
        "include_irrelevant": "y",
    }
    data.update({k: str(v) for k, v in fields.items()})
    return client.post("/datasets/generate", data=data)


def files_under(app) -> list[Path]:
    return [p for p in Path(app.config["DATASET_STORE"]).rglob("*") if p.is_file()]


def test_petstore_generates_a_varied_dataset_with_a_held_out_split(app, signed_in):
    client, _ = signed_in()
    assert upload_spec(client, PETSTORE, "petstore").status_code == 302
    spec_id = spec_id_of(app, "petstore")
    assert "Generate a training dataset" in client.get(f"/specs/{spec_id}").get_data(as_text=True)
    response = generate(client, spec_id, samples_per_operation=100)
    assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
    (dataset,) = datasets(app)
    assert dataset.status == "ready" and dataset.kind == "sft" and dataset.source == "generated"
    assert dataset.sample_count >= 2000 and 0 < dataset.eval_count < dataset.sample_count
    assert dataset.stats["with_call"] > 0 and dataset.stats["without_call"] > 0  # irrelevant requests
    assert dataset.stats["tools_offered"] == 20 and dataset.stats["estimated_tokens"] > 0
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert (
        f"Rows 1–20 of {dataset.sample_count}" in page
        and "tool-call-card" in page
        and str(dataset.sample_count) in page
    )
    download = client.get(f"/datasets/{dataset.id}/download")
    lines = download.get_data(as_text=True).splitlines()
    assert download.status_code == 200 and len(lines) == dataset.sample_count
    assert {json.loads(line)["split"] for line in lines} == {"train", "eval"}


def test_dpo_generation_makes_a_preference_dataset(app, signed_in):
    client, _ = signed_in()
    upload_spec(client, PETSTORE, "petstore")
    response = generate(client, spec_id_of(app, "petstore"), samples_per_operation=5, dpo="y")
    assert response.status_code == 302
    (dataset,) = datasets(app)
    assert dataset.kind == "dpo"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Chosen" in page and "Rejected" in page


def test_large_generation_runs_as_a_job_with_progress(app, signed_in, tmp_path):
    app.config["GENERATE_INLINE_ROWS"] = 100
    client, _ = signed_in()
    upload_spec(client, PETSTORE, "petstore")
    response = generate(client, spec_id_of(app, "petstore"), samples_per_operation=50)
    assert response.status_code == 302
    (dataset,) = datasets(app)
    assert dataset.status == "generating" and dataset.job_id
    assert 'hx-trigger="every 1s"' in client.get(f"/datasets/{dataset.id}").get_data(as_text=True)
    worker = start_worker(app, "default", "--burst", log_path=tmp_path / "worker.log")
    assert worker.wait(timeout=120) == 0, (tmp_path / "worker.log").read_text()[-3000:]
    (dataset,) = datasets(app)
    assert dataset.status == "ready" and dataset.sample_count >= 1000, dataset.error
    with app.app_context():
        assert db.session.get(BackgroundJob, dataset.job_id).status == JobStatus.SUCCEEDED
    assert "every 1s" not in client.get(f"/datasets/{dataset.id}").get_data(as_text=True)


def test_a_generation_cancelled_before_any_worker_ran_it_ends_failed_not_polling(app, signed_in):
    from tests.conftest import post_form

    app.config["GENERATE_INLINE_ROWS"] = 100
    client, _ = signed_in()
    upload_spec(client, PETSTORE, "petstore")
    generate(client, spec_id_of(app, "petstore"), samples_per_operation=50)
    (dataset,) = datasets(app)
    assert post_form(client, f"/jobs/{dataset.job_id}/cancel").status_code in (200, 302)
    # The job never runs, so nothing in it settles the dataset: the page does, from the job's end.
    poll = client.get(f"/datasets/{dataset.id}?poll=1", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "every 1s" not in poll and "Cancelled" in poll
    (dataset,) = datasets(app)
    assert dataset.status == "failed" and dataset.file_path is None


def test_glaive_sharegpt_imports_as_300_conversations_153_with_a_call(app, signed_in):
    client, _ = signed_in()
    response = upload_dataset(client, GLAIVE.read_bytes(), GLAIVE.name)
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    (dataset,) = datasets(app)
    assert dataset.name == "glaive_toolcall_en_demo" and dataset.source_format
    assert dataset.sample_count == 300 and dataset.stats["with_call"] == 153
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Rows 1–20 of 300." in page and "Page 1 of 15" in page


@pytest.mark.parametrize(
    ("body", "filename", "expected"),
    [
        (
            GOOD_LINE + b'\n{"messages": [',
            "broken.jsonl",
            "line 2",
        ),
        (bytes(range(256)) * 20, "model.bin", "UTF-8"),
        (b"", "empty.jsonl", ""),
    ],
)
def test_malformed_dataset_files_leave_no_row_and_no_file(app, signed_in, body, filename, expected):
    client, _ = signed_in()
    response = upload_dataset(client, body, filename)
    assert response.status_code == 422
    assert expected in response.get_data(as_text=True)
    assert datasets(app) == [] and files_under(app) == []


def test_oversized_dataset_upload_is_refused(app, signed_in):
    app.config["MAX_DATASET_UPLOAD_BYTES"] = 1024
    client, _ = signed_in()
    response = upload_dataset(client, GLAIVE.read_bytes(), GLAIVE.name)
    assert response.status_code == 422 and "the limit is" in response.get_data(as_text=True)
    assert datasets(app) == [] and files_under(app) == []


def test_datasets_are_private_and_delete_removes_the_file(app, signed_in):
    alice, _ = signed_in("alice@example.com")
    upload_dataset(alice, GLAIVE.read_bytes(), GLAIVE.name)
    (dataset,) = datasets(app)
    assert Path(dataset.file_path).is_file()
    bob, _ = signed_in("bob@example.com")
    token = csrf_token(bob, "/datasets/")
    assert bob.get(f"/datasets/{dataset.id}").status_code == 404
    assert bob.get(f"/datasets/{dataset.id}/download").status_code == 404
    assert bob.post(f"/datasets/{dataset.id}/delete", data={"csrf_token": token}).status_code == 404
    assert "glaive" not in bob.get("/datasets/").get_data(as_text=True)
    # Bob cannot generate from Alice's spec either.
    upload_spec(alice, PETSTORE, "petstore")
    assert generate(bob, spec_id_of(app, "petstore")).status_code in (404, 422)
    assert alice.post(f"/datasets/{dataset.id}/delete").status_code == 400  # no CSRF token
    assert (
        alice.post(
            f"/datasets/{dataset.id}/delete", data={"csrf_token": csrf_token(alice, "/datasets/")}
        ).status_code
        == 302
    )
    assert datasets(app) == [] and files_under(app) == []


def test_a_generated_dataset_feeds_the_config_linter(app, signed_in):
    """A DPO config needs a preference dataset: the generated SFT one is refused, the DPO one accepted."""
    from app.configs.templates import TEMPLATES_BY_KEY
    from tests.configs.test_pages import form_data

    client, _ = signed_in()
    upload_spec(client, PETSTORE, "petstore")
    spec_id = spec_id_of(app, "petstore")
    generate(client, spec_id, samples_per_operation=5, name="pets-sft")
    generate(client, spec_id, samples_per_operation=5, name="pets-dpo", dpo="y")
    config = TEMPLATES_BY_KEY["dpo_basic"].build()
    config["tokenizer"]["max_length"] = 4096  # every Petstore tool in each row: 512 would cut every answer
    for name, status in (("pets-sft", 422), ("pets-dpo", 302)):
        data = form_data(config, f"dpo on {name}", client)
        data["data__dataset"] = name
        assert client.post("/configs/new?template=dpo_basic", data=data).status_code == status
