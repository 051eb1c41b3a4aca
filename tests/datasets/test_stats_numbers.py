"""A dataset's statistics write big numbers with the thousands separator used across the app."""

from __future__ import annotations

from app.extensions import db
from app.models import Dataset
from tests.datasets.test_combine import make, sft


def test_tokens_per_row_has_a_thousands_separator(app, signed_in):
    client, user = signed_in()
    dataset_id = make(app, user.id, "long rows", "sft", [sft("a"), sft("b")])
    with app.app_context():  # as long rows measure: the page shows what the stats say
        dataset = db.session.get(Dataset, dataset_id)
        dataset.stats = {**dataset.stats, "mean_tokens": 2682, "estimated_tokens": 5364}
        db.session.commit()
    page = client.get(f"/datasets/{dataset_id}").get_data(as_text=True)
    assert "2,682 per row" in page and "5,364" in page
