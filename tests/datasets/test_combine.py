"""Combining datasets: rows of several datasets of one kind in a new one, duplicates dropped, the split
kept or drawn again; refusals for mixed kinds, too few picks and other users' datasets."""

from __future__ import annotations

import json
from pathlib import Path

from app.datasets.combine import combine_rows
from app.datasets.services import store_rows
from app.extensions import db
from app.models import Dataset
from tests.conftest import csrf_token


def sft(text: str, split: str | None = None) -> dict:
    row = {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}]}
    return {**row, "split": split} if split else row


def dpo(text: str) -> dict:
    return {
        "prompt": [{"role": "user", "content": text}],
        "chosen": [{"role": "assistant", "content": "yes"}],
        "rejected": [{"role": "assistant", "content": "no"}],
    }


def test_duplicates_are_dropped_whatever_their_split_and_the_split_is_kept():
    first = [sft("a"), sft("b", "eval")]
    second = [sft("b"), sft("c", "eval"), {**sft("a"), "meta": {"source": "chat"}}]
    combined = combine_rows([first, second])
    assert [r["messages"][0]["content"] for r in combined.rows] == ["a", "b", "c"]
    assert combined.duplicates == 2 and [r.get("split") for r in combined.rows] == [None, "eval", "eval"]
    assert len(combine_rows([first, second], drop_duplicates=False).rows) == 5


def test_the_split_drawn_again_holds_out_the_share_asked_with_a_seed():
    rows = [sft(str(i), "eval" if i % 2 else None) for i in range(100)]
    once = combine_rows([[dict(r) for r in rows]], eval_share=0.2, seed=3)
    again = combine_rows([[dict(r) for r in rows]], eval_share=0.2, seed=3)
    assert sum(r.get("split") == "eval" for r in once.rows) == 20
    assert [r.get("split") for r in once.rows] == [r.get("split") for r in again.rows]
    assert all(r.get("split") in (None, "eval") for r in once.rows)


def make(app, owner_id: int, name: str, kind: str, rows: list[dict]) -> int:
    with app.app_context():
        return store_rows(owner_id, name, kind, rows, source="upload", source_format="toolsmith").id


def all_datasets(app) -> list[Dataset]:
    with app.app_context():
        rows = list(db.session.execute(db.select(Dataset).order_by(Dataset.id)).scalars())
        for row in rows:
            db.session.expunge(row)
    return rows


def combine(client, ids, **fields):
    data = {"csrf_token": csrf_token(client, "/datasets/"), "datasets": [str(i) for i in ids], "name": "all"}
    data.update(fields)
    return client.post("/datasets/combine", data=data)


def test_combining_two_datasets_makes_a_third_and_leaves_them_alone(app, signed_in):
    client, user = signed_in()
    generated = make(app, user.id, "generated", "sft", [sft("a"), sft("b", "eval")])
    chat = make(app, user.id, "chat", "sft", [sft("b"), sft("c")])
    form = client.get(f"/datasets/combine?dataset={chat}").get_data(as_text=True)
    assert f'<input checked id="datasets-0" name="datasets" type="checkbox" value="{chat}">' in form
    response = combine(client, [generated, chat], drop_duplicates="y")
    assert response.status_code == 302, response.get_data(as_text=True)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Combined 2 datasets into 3 rows, 1 duplicate dropped." in page
    assert "from generated (2 rows), chat (2 rows)" in page
    *_, combined = all_datasets(app)
    assert (combined.name, combined.source, combined.sample_count, combined.eval_count) == (
        "all",
        "combined",
        3,
        1,
    )
    lines = [json.loads(line) for line in Path(combined.file_path).read_text().splitlines()]
    assert [r["messages"][0]["content"] for r in lines] == ["a", "b", "c"]
    assert [d.sample_count for d in all_datasets(app)[:2]] == [2, 2]


def test_refusals_say_why_and_create_nothing(app, signed_in):
    client, user = signed_in()
    first = make(app, user.id, "one", "sft", [sft("a")])
    pairs = make(app, user.id, "pairs", "dpo", [dpo("a")])
    mallory, other = signed_in("mallory@example.com")
    theirs = make(app, other.id, "theirs", "sft", [sft("z")])
    cases = [
        ([first], {}, "Pick at least two datasets to combine."),
        ([first, pairs], {}, "Datasets of one kind only"),
        ([first, theirs], {}, "is not a valid choice"),
        ([first, first], {}, "Pick at least two datasets to combine."),
        ([first, "abc"], {}, "Invalid choice"),
        ([], {}, "Pick at least two datasets to combine."),
        ([first, pairs], {"name": ""}, "Name the new dataset."),
        ([first, pairs], {"resplit": "y", "eval_fraction": "0.9"}, "0.5"),
    ]
    for ids, fields, expected in cases:
        response = combine(client, ids, **fields)
        assert response.status_code == 422, (ids, fields)
        assert expected in response.get_data(as_text=True), (ids, fields, expected)
    assert [d.name for d in all_datasets(app)] == ["one", "pairs", "theirs"]
    assert "theirs" not in client.get("/datasets/combine").get_data(as_text=True)
    assert "one (SFT" not in mallory.get("/datasets/combine").get_data(as_text=True)


def test_a_dataset_page_links_to_a_run_with_it_chosen(app, signed_in):
    client, user = signed_in()
    make(app, user.id, "first", "sft", [sft("a")])
    chosen = make(app, user.id, "second", "sft", [sft("b")])
    page = client.get(f"/datasets/{chosen}").get_data(as_text=True)
    assert f'href="/runs/?dataset_id={chosen}"' in page
    form = client.get(f"/runs/?dataset_id={chosen}").get_data(as_text=True)
    assert f'<option selected value="{chosen}">second' in form
    assert client.get("/runs/?dataset_id=abc&config_id=-1").status_code == 200


def test_the_split_of_a_dataset_is_drawn_again_with_a_seed(app, signed_in):
    client, user = signed_in()
    dataset_id = make(app, user.id, "imported", "sft", [sft(str(i)) for i in range(40)])
    token = csrf_token(client, f"/datasets/{dataset_id}")
    response = client.post(
        f"/datasets/{dataset_id}/split", data={"csrf_token": token, "eval_fraction": "0.25"}
    )
    assert "10 rows held out for evaluation, 30 for training." in client.get(
        response.headers["Location"]
    ).get_data(as_text=True)
    (dataset,) = all_datasets(app)
    lines = [json.loads(line) for line in Path(dataset.file_path).read_text().splitlines()]
    first = [i for i, row in enumerate(lines) if row.get("split") == "eval"]
    assert (dataset.eval_count, dataset.train_count, len(first)) == (10, 30, 10)
    client.post(
        f"/datasets/{dataset_id}/split", data={"csrf_token": token, "eval_fraction": "0.25", "seed": "0"}
    )
    again = [i for i, line in enumerate(Path(dataset.file_path).read_text().splitlines()) if '"eval"' in line]
    assert again == first  # the same seed draws the same rows
    for bad in ("0.9", "abc", "0"):
        client.post(f"/datasets/{dataset_id}/split", data={"csrf_token": token, "eval_fraction": bad})
        (unchanged,) = all_datasets(app)
        assert unchanged.eval_count == 10, bad
    assert client.post(f"/datasets/{dataset_id}/split", data={"eval_fraction": "0.1"}).status_code == 400
    mallory, _ = signed_in("mallory@example.com")
    other_token = csrf_token(mallory, "/datasets/")
    refused = mallory.post(
        f"/datasets/{dataset_id}/split", data={"csrf_token": other_token, "eval_fraction": "0.5"}
    )
    assert refused.status_code == 404 and all_datasets(app)[0].eval_count == 10


def test_the_run_check_warns_when_rows_are_longer_than_max_length(app, signed_in):
    from app.configs.templates import TEMPLATES_BY_KEY
    from app.models import TrainingConfig

    client, user = signed_in()
    long_row = sft("word " * 900)  # ~900 tokens of words: past a 512-token max length
    dataset_id = make(app, user.id, "long", "sft", [long_row] + [sft(str(i)) for i in range(19)])
    with app.app_context():
        config = TrainingConfig(
            owner_id=user.id,
            name="c",
            template_type="sft_toolbench",
            config=TEMPLATES_BY_KEY["sft_toolbench"].build(),
        )
        config.config["tokenizer"]["max_length"] = 512
        db.session.add(config)
        db.session.commit()
        config_id = config.id
    data = {
        "csrf_token": csrf_token(client, "/runs/"),
        "config_id": str(config_id),
        "dataset_id": str(dataset_id),
    }
    text = client.post("/runs/check", data=data).get_data(as_text=True)
    assert "About 1 of the dataset&#39;s 20 rows (5%) are longer than 512 tokens" in text


def test_duplicates_are_removed_from_a_dataset(app, signed_in):
    from app.datasets.stats import dataset_stats

    client, user = signed_in()
    rows = [sft("a"), sft("b"), sft("a", "eval"), sft("c"), {**sft("b"), "meta": {"source": "chat"}}]
    dataset_id = make(app, user.id, "dups", "sft", rows)
    token = csrf_token(client, f"/datasets/{dataset_id}")
    response = client.post(f"/datasets/{dataset_id}/deduplicate", data={"csrf_token": token})
    assert "Removed 2 duplicate rows." in client.get(response.headers["Location"]).get_data(as_text=True)
    (dataset,) = all_datasets(app)
    kept = [json.loads(line) for line in Path(dataset.file_path).read_text().splitlines()]
    assert kept == [sft("a"), sft("b"), sft("c")]
    assert (dataset.sample_count, dataset.eval_count, dataset.train_count) == (3, 0, 3)
    assert dataset.stats == json.loads(json.dumps(dataset_stats(kept, "sft")))
    again = client.post(f"/datasets/{dataset_id}/deduplicate", data={"csrf_token": token})
    assert "No duplicates." in client.get(again.headers["Location"]).get_data(as_text=True)
    assert client.post(f"/datasets/{dataset_id}/deduplicate").status_code == 400
