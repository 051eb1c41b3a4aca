"""The start-a-run form picks the dataset the config names, else one of the kind its method trains on
(it used to pick the alphabetically first dataset: an SFT set under a DPO config, a wrong start)."""

from __future__ import annotations

import re

from app.extensions import db
from app.models import TrainingConfig
from tests.training.test_pipeline import dataset_id, dpo_rows, save_config, sft_rows


def picked_dataset(client, query: str) -> int | None:
    page = client.get(f"/runs/{query}").get_data(as_text=True)
    select = page.split('name="dataset_id"', 1)[1].split("</select>", 1)[0]
    chosen = re.search(r'<option selected value="(\d+)"|<option value="(\d+)" selected', select)
    return int(chosen.group(1) or chosen.group(2)) if chosen else None


def test_the_form_follows_the_config(app, signed_in):
    from app.datasets.services import store_rows

    client, user = signed_in()
    with app.test_request_context():
        for name, kind, rows in (("a-first", "sft", sft_rows(4)), ("b-named", "sft", sft_rows(4)),
                                 ("c-prefs", "dpo", dpo_rows(4))):  # fmt: skip
            store_rows(user.id, name, kind, rows, source="upload", source_format="toolsmith")
    sft_config = save_config(app, user, "sft", "sft_toolbench")
    dpo_config = save_config(app, user, "dpo", "dpo_basic")
    with app.app_context():
        row = db.session.get(TrainingConfig, sft_config)
        row.config = {**row.config, "data": {**row.config["data"], "dataset": "b-named"}}
        db.session.commit()

    assert picked_dataset(client, f"?config_id={sft_config}") == dataset_id(app, "b-named")
    assert picked_dataset(client, f"?config_id={dpo_config}") == dataset_id(app, "c-prefs")
    explicit = dataset_id(app, "a-first")  # a dataset's own link still picks that dataset
    assert picked_dataset(client, f"?config_id={dpo_config}&dataset_id={explicit}") == explicit

    # Another user's config id tells nothing of it: the form falls back as for no config.
    mallory, _ = signed_in("mallory@example.com")
    assert mallory.get(f"/runs/?config_id={sft_config}").status_code == 200
    assert "b-named" not in mallory.get(f"/runs/?config_id={sft_config}").get_data(as_text=True)


def test_an_id_past_any_row_falls_back_rather_than_failing(app, signed_in):
    client, _ = signed_in()
    for config_id in ("99999999999999999999", "3000000000", "-1", "0"):
        assert client.get(f"/runs/?config_id={config_id}").status_code == 200, config_id
    assert (
        client.get(
            "/configs/new?template=sft_openapi&dataset_id=3000000000&spec_id=99999999999999999999"
        ).status_code
        == 200
    )
