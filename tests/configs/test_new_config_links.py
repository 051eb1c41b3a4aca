"""Starting a config: a dataset's page opens the right template with the dataset and its spec picked,
the editor names the template and offers a free name, and the lint panel says what errors block where
it is shown (saving in the editor, starting on the run form), with a readable time estimate."""

from __future__ import annotations

import re

from app.configs.templates import TEMPLATES_BY_KEY
from app.extensions import db
from app.models import Dataset, TrainingConfig, TrainingRun
from tests.configs.test_pages import form_data
from tests.conftest import csrf_token
from tests.datasets.test_combine import dpo, make, sft
from tests.specs.test_specs_and_nl_api import PETSTORE, pytestmark, spec_id_of, upload_spec  # noqa: F401
from tests.training.test_compare_runs import make_run


def generated_dataset(app, client, user, kind: str) -> tuple[int, int]:
    """A dataset of `kind` generated from the petstore spec: (dataset id, spec id)."""
    upload_spec(client, PETSTORE, "petstore")
    spec_id = spec_id_of(app, "petstore")
    rows = [sft(f"pets {i}") for i in range(4)] if kind == "sft" else [dpo(f"pets {i}") for i in range(4)]
    dataset_id = make(app, user.id, f"petstore {kind}", kind, rows)
    with app.app_context():
        db.session.get(Dataset, dataset_id).spec_id = spec_id
        db.session.commit()
    return dataset_id, spec_id


def config_link(page: str) -> str:
    found = re.search(r'id="new-config-link" href="([^"]+)"', page)
    assert found, "no New training config link"
    return found.group(1).replace("&amp;", "&")


def selected(page: str, field: str) -> str | None:
    select = re.search(rf'<select[^>]*name="{field}"[^>]*>(.*?)</select>', page, re.S)
    assert select, field
    chosen = re.search(r'<option selected value="([^"]*)"|<option value="([^"]*)" selected', select.group(1))
    return next((value for value in chosen.groups() if value is not None), None) if chosen else None


def test_a_datasets_link_opens_the_template_with_the_dataset_and_spec_picked(app, signed_in):
    client, user = signed_in()
    dataset_id, spec_id = generated_dataset(app, client, user, "sft")
    link = config_link(client.get(f"/datasets/{dataset_id}").get_data(as_text=True))
    assert (
        "template=sft_openapi" in link and f"dataset_id={dataset_id}" in link and f"spec_id={spec_id}" in link
    )
    editor = client.get(link).get_data(as_text=True)
    assert selected(editor, "data__dataset") == "petstore sft"
    assert selected(editor, "data__source_spec") == "petstore"


def test_a_preference_dataset_opens_the_dpo_template(app, signed_in):
    client, user = signed_in()
    dataset_id, _ = generated_dataset(app, client, user, "dpo")
    link = config_link(client.get(f"/datasets/{dataset_id}").get_data(as_text=True))
    assert "template=dpo_basic" in link
    editor = client.get(link).get_data(as_text=True)
    assert "from the DPO Basic template" in editor and selected(editor, "data__dataset") == "petstore dpo"


def test_someone_elses_or_garbage_ids_are_ignored(app, signed_in):
    alice, alice_user = signed_in("alice@example.com")
    dataset_id, spec_id = generated_dataset(app, alice, alice_user, "sft")
    bob, _ = signed_in("bob@example.com")
    for query in (
        f"dataset_id={dataset_id}&spec_id={spec_id}",
        "dataset_id=x&spec_id=-1",
        f"dataset_id={2**70}",
    ):
        response = bob.get(f"/configs/new?template=sft_openapi&{query}")
        page = response.get_data(as_text=True)
        assert response.status_code == 200, query
        assert "petstore" not in page and selected(page, "data__dataset") in (None, "")


def test_the_editor_names_the_template_and_offers_a_free_name(app, signed_in):
    client, user = signed_in()
    page = client.get("/configs/new?template=sft_openapi").get_data(as_text=True)
    assert "from the SFT from an OpenAPI spec template" in page and "from sft_openapi" not in page
    assert 'value="SFT from an OpenAPI spec"' in page
    with app.app_context():
        for name in ("DPO Basic", "DPO Basic (2)"):
            db.session.add(TrainingConfig(owner_id=user.id, name=name, template_type="dpo_basic", config={}))
        db.session.commit()
    assert 'value="DPO Basic (3)"' in client.get("/configs/new?template=dpo_basic").get_data(as_text=True)


def saved_config(app, user, template: str) -> int:
    with app.app_context():
        row = TrainingConfig(
            owner_id=user.id, name=template, template_type=template, config=TEMPLATES_BY_KEY[template].build()
        )
        db.session.add(row)
        db.session.commit()
        return row.id


def run_check(client, config_id: int, dataset_id: int) -> str:
    """The checks the start-a-run form shows for a config and a dataset."""
    data = {"csrf_token": csrf_token(client, "/runs/"), "config_id": config_id, "dataset_id": dataset_id}
    return client.post("/runs/check", data=data).get_data(as_text=True)


def test_on_the_run_form_errors_block_starting_in_the_editor_saving(app, signed_in):
    client, user = signed_in()
    dataset_id = make(app, user.id, "plain", "sft", [sft(str(i)) for i in range(20)])
    checks = run_check(client, saved_config(app, user, "dpo_basic"), dataset_id)  # DPO on SFT rows: an error
    assert "Errors block starting the run." in checks and "saving" not in checks

    data = form_data(TEMPLATES_BY_KEY["sft_toolbench"].build(), "bad", client)
    data["training__batch_size"] = "0"
    assert "Errors block saving and downloading." in client.post("/configs/lint", data=data).get_data(
        as_text=True
    )


def test_the_time_estimate_reads_in_minutes_below_an_hour(app, signed_in):
    client, user = signed_in()
    dataset_id = make(app, user.id, "plain", "sft", [sft(f"question {i}") for i in range(200)])
    run_id = make_run(app, user, "measured", "sft_toolbench", stage="done", tokens_per_second=1.0)
    config_id = saved_config(app, user, "sft_toolbench")
    tokens = int(
        re.search(r"~([\d,]+) tokens", run_check(client, config_id, dataset_id)).group(1).replace(",", "")
    )

    def estimate_taking(seconds: float) -> str:
        with app.app_context():  # the throughput a finished run measured sets the estimate
            db.session.get(TrainingRun, run_id).tokens_per_second = tokens / seconds
            db.session.commit()
        page = run_check(client, config_id, dataset_id)
        return re.search(r"<strong[^>]*>(About [^<]+|Under a minute)</strong>", page).group(1)

    assert estimate_taking(9 * 60 + 20) == "About 9 min"
    assert estimate_taking(3600 + 5 * 60 + 20) == "About 1 h 5 min"
    assert estimate_taking(20) == "Under a minute"
