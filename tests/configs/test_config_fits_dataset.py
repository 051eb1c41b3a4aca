"""A config opened from a dataset's page fits the dataset: Petstore's generated rows carry every tool
(about 2,700 tokens), and the template's 768-token max length cut every answer, so the new user's first
config started with an error and the run was refused."""

from __future__ import annotations

import re

from app.configs.templates import TEMPLATES_BY_KEY
from app.extensions import db
from app.models import Dataset
from tests.configs.test_new_config_links import config_link
from tests.datasets.test_pages import generate
from tests.specs.test_specs_and_nl_api import PETSTORE, spec_id_of, upload_spec


def field_value(page: str, name: str) -> int:
    found = re.search(rf'name="{name}"[^>]*value="(\d+)"|value="(\d+)"[^>]*name="{name}"', page)
    assert found, name
    return int(found.group(1) or found.group(2))


def test_a_config_from_a_generated_datasets_page_fits_its_rows_and_the_worker(app, signed_in):
    client, _ = signed_in()
    upload_spec(client, PETSTORE, "petstore")
    generated = generate(client, spec_id_of(app, "petstore"), samples_per_operation=3, name="pets")
    assert generated.status_code == 302
    with app.app_context():
        dataset = db.session.execute(db.select(Dataset).where(Dataset.name == "pets")).scalar_one()
        dataset_id, mean_tokens = dataset.id, dataset.stats["mean_tokens"]
    template = TEMPLATES_BY_KEY["sft_openapi"].build()
    assert mean_tokens > template["tokenizer"]["max_length"]  # what the template alone would cut

    editor = client.get(config_link(client.get(f"/datasets/{dataset_id}").get_data(as_text=True)))
    page = editor.get_data(as_text=True)
    max_length = field_value(page, "tokenizer__max_length")
    assert max_length >= mean_tokens and max_length % 128 == 0
    assert "every answer is cut" not in page and "fits 95% of them" not in page  # 95% fit: no advice left
    batch = field_value(page, "training__batch_size")
    accumulation = field_value(page, "training__gradient_accumulation_steps")
    effective = template["training"]["batch_size"] * template["training"]["gradient_accumulation_steps"]
    assert batch * accumulation >= effective  # the effective batch kept
    assert "Needs about" not in page  # the estimate fits the worker's memory at that batch
