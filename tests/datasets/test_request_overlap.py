"""Held-out rows that ask what training rows ask: counted in a dataset's figures (kept true through
edits), shown on its page, and avoided by drawing the split again (rows asking the same request stay on
one side); generated datasets hold their eval requests out already."""

from __future__ import annotations

import json
from pathlib import Path

from app.datasets.combine import resplit
from app.datasets.services import store_rows
from app.datasets.stats import request_key, request_overlap
from app.extensions import db
from app.models import Dataset
from tests.conftest import csrf_token
from tests.datasets.test_generation import generate
from tests.openapi.conftest import PETSTORE_V2


def sft(text: str, split: str | None = None, answer: str = "ok") -> dict:
    row = {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]}
    return {**row, "split": split} if split else row


def test_the_request_is_the_user_messages_case_and_spacing_aside():
    assert request_key(sft("  Weather in   OSLO? ")) == request_key(sft("weather in oslo?", answer="other"))
    assert request_key(sft("weather in oslo")) != request_key(sft("weather in lima"))
    dpo = {"prompt": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Hi"}]}
    assert request_key(dpo) == "hi"  # the system prompt is not the request
    assert request_key({"messages": "garbage"}) == request_key({}) == ""


def test_overlap_counts_held_out_rows_asking_a_training_request():
    rows = [sft("a"), sft("b"), sft("A", "eval"), sft("c", "eval"), sft("c", "eval"), sft("b ", "eval")]
    assert request_overlap(rows) == {
        "distinct_requests": 3,
        "eval_requests_in_train": 2,
        "marked_train_rows": 0,
    }
    assert request_overlap([]) == {
        "distinct_requests": 0,
        "eval_requests_in_train": 0,
        "marked_train_rows": 0,
    }


def test_a_split_drawn_again_keeps_each_request_on_one_side():
    rows = [sft(f"request {i % 25}") for i in range(100)]  # 25 requests, 4 rows each
    resplit(rows, 0.2, seed=7)
    held = [r for r in rows if r.get("split") == "eval"]
    assert len(held) == 20  # 5 whole groups
    assert request_overlap(rows)["eval_requests_in_train"] == 0
    again = [dict(r) for r in rows]
    resplit(again, 0.2, seed=7)
    assert [r.get("split") for r in again] == [r.get("split") for r in rows]

    uneven = [sft("big")] * 30 + [sft(f"small {i}") for i in range(10)]
    resplit(uneven, 0.1, seed=1)  # the 30-row group would overshoot 4: small ones are drawn
    assert sum(r.get("split") == "eval" for r in uneven) == 4
    assert all(r.get("split") is None for r in uneven if r["messages"][0]["content"] == "big")

    one_request = [sft("same") for _ in range(10)]
    resplit(one_request, 0.2, seed=0)  # holding it out would leave nothing to train on
    assert all("split" not in r for r in one_request)
    two_big = [sft("x")] * 6 + [sft("y")] * 4
    resplit(two_big, 0.1, seed=0)  # every group overshoots: the smallest one
    assert [r["messages"][0]["content"] for r in two_big if r.get("split")] == ["y"] * 4


def test_generated_rows_hold_their_eval_requests_out():
    rows = generate(PETSTORE_V2, samples_per_operation=20, seed=3).rows
    overlap = request_overlap(rows)
    assert overlap["eval_requests_in_train"] == 0 and overlap["distinct_requests"] == len(rows)


def _dataset(app, dataset_id: int) -> Dataset:
    with app.app_context():
        row = db.session.get(Dataset, dataset_id)
        db.session.expunge(row)
        return row


def test_the_page_warns_edits_keep_the_count_true_and_drawing_the_split_fixes_it(app, signed_in):
    client, user = signed_in()
    rows = [sft(f"weather in city {i % 10}") for i in range(40)] + [
        sft("weather in city 3", "eval"),
        sft("Weather in CITY 4", "eval"),
        sft("a fresh request", "eval"),
    ]
    with app.app_context():
        dataset_id = store_rows(user.id, "leaky", "sft", rows, source="upload", source_format="toolsmith").id
    assert _dataset(app, dataset_id).stats["eval_requests_in_train"] == 2
    page = client.get(f"/datasets/{dataset_id}").get_data(as_text=True)
    assert "11 distinct requests" in page
    assert "2 held-out rows ask a request that a training row asks word for word" in page

    seen = client.get(f"/datasets/{dataset_id}?split=seen").get_data(as_text=True)
    assert "Weather in CITY 4" in seen and "a fresh request" not in seen and "Rows 1–2 of 2" in seen
    download = client.get(f"/datasets/{dataset_id}/download?split=seen").get_data(as_text=True)
    assert [json.loads(line)["messages"][0]["content"] for line in download.splitlines()] == [
        "weather in city 3",
        "Weather in CITY 4",
    ]

    # The linter at submit says the same.
    from app.configs.templates import TEMPLATES_BY_KEY
    from app.models import TrainingConfig

    config = TEMPLATES_BY_KEY["sft_toolbench"].build()
    with app.app_context():
        saved = TrainingConfig(owner_id=user.id, name="c", template_type="sft_toolbench", config=config)
        db.session.add(saved)
        db.session.commit()
        config_id = saved.id
    token = csrf_token(client, "/runs/")
    check = client.post(
        "/runs/check", data={"csrf_token": token, "config_id": config_id, "dataset_id": dataset_id}
    ).get_data(as_text=True)
    assert "2 of the 3 held-out rows ask a request" in check

    # An edit (the last eval row moved to train) recounts.
    from app.datasets.browse import row_digest

    lines = Path(_dataset(app, dataset_id).file_path).read_text().splitlines()
    digest = row_digest(json.loads(lines[40]))
    token = csrf_token(client, f"/datasets/{dataset_id}")
    client.post(
        f"/datasets/{dataset_id}/rows/41/split",
        data={"csrf_token": token, "digest": digest, "to_split": "train"},
    )
    assert _dataset(app, dataset_id).stats["eval_requests_in_train"] == 1

    response = client.post(
        f"/datasets/{dataset_id}/split",
        data={"csrf_token": token, "eval_fraction": "0.2", "seed": "3"},
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    dataset = _dataset(app, dataset_id)
    assert dataset.stats["eval_requests_in_train"] == 0 and dataset.eval_count > 0
    assert "held-out rows ask a request" not in html and "held-out row asks" not in html


def test_edits_adjust_the_overlap_to_what_a_recount_gives():
    """Random deletes, moves and appends: the adjusted figures equal a recount after every edit."""
    import random

    from app.datasets.stats import adjusted_overlap
    from app.datasets.storage import row_line

    rng = random.Random(11)
    texts = ["Weather in Oslo", 'Say "hi"', "café au lait?", "tab\there", "x", "WEATHER  in oslo"]
    rows = [sft(rng.choice(texts), rng.choice([None, "eval"])) for _ in range(60)]
    figures = request_overlap(rows)
    for _ in range(200):
        action = rng.choice(["delete", "move", "append"])
        index = rng.randrange(len(rows))
        if action == "delete" and len(rows) > 1:
            removed, added = [rows.pop(index)], []
        elif action == "move":
            old = rows[index]
            rows[index] = {**old, "split": "eval"} if old.get("split") != "eval" else sft(request_text(old))
            removed, added = [old], [rows[index]]
        else:
            rows.append(sft(rng.choice(texts), rng.choice([None, "eval"])))
            removed, added = [], [rows[-1]]
        figures = adjusted_overlap(figures, [row_line(r) for r in rows], removed, added)
        assert figures == request_overlap(rows)
    assert adjusted_overlap({}, [], [], []) is None  # figures from before the overlap was kept: recount


def request_text(row: dict) -> str:
    return row["messages"][0]["content"]
