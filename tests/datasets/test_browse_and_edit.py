"""Browsing a dataset's rows (search, filters, pages) and editing them (delete, move between splits)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest

from app.datasets.browse import PAGE_SIZE, RowFilter, browse, row_digest
from app.datasets.stats import dataset_stats
from tests.conftest import csrf_token
from tests.datasets.test_pages import GLAIVE, datasets, upload_dataset


def sft(text: str, call: str | None = None, split: str | None = None) -> dict:
    answer = (
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"type": "function", "function": {"name": call, "arguments": {}}}],
        }
        if call
        else {"role": "assistant", "content": "no call needed"}
    )
    row = {"messages": [{"role": "user", "content": text}, answer]}
    if split:
        row["split"] = split
    return row


ROWS = [
    sft(f"weather in city {i}", "get_weather" if i % 2 else None, "eval" if i % 5 == 0 else None)
    for i in range(1, 46)
]
LINES = [json.dumps(row) for row in ROWS]  # as the file holds them


def test_pages_number_rows_from_one_and_a_page_past_the_end_shows_the_last():
    first = browse(LINES, "sft", RowFilter(), 1)
    assert (first.matching, first.pages, first.first, first.last) == (45, 3, 1, PAGE_SIZE)
    assert first.rows[0][0] == 1 and first.rows[0][1] == ROWS[0]
    last = browse(LINES, "sft", RowFilter(), 99)
    assert last.page == 3 and [n for n, _ in last.rows] == list(range(41, 46))
    assert browse([], "sft", RowFilter(), 1).pages == 1


def test_filters_combine_split_call_and_every_search_word():
    assert browse(LINES, "sft", RowFilter(split="eval"), 1).matching == 9
    assert browse(LINES, "sft", RowFilter(split="train"), 1).matching == 36
    assert browse(LINES, "sft", RowFilter(call="with"), 1).matching == 23
    assert browse(LINES, "sft", RowFilter(call="without"), 1).matching == 22
    assert browse(LINES, "sft", RowFilter(call="fn:get_weather", split="eval"), 1).matching == 5
    assert browse(LINES, "sft", RowFilter(call="fn:nothing"), 1).matching == 0
    hits = browse(LINES, "sft", RowFilter(query="CITY 4"), 1)
    assert [n for n, _ in hits.rows] == [4, 14, 24, 34, *range(40, 46)]  # words match inside words
    assert browse(LINES, "sft", RowFilter(query="weather 12"), 1).matching == 1  # all words, any order
    assert browse(LINES, "sft", RowFilter(query="get_weather"), 1).matching == 23  # calls are searched


def test_filter_arguments_are_forgiving():
    row_filter = RowFilter.from_args({"q": "  a   b " + "x" * 500, "split": "bogus", "call": "with"})
    assert row_filter.query.startswith("a b x") and len(row_filter.query) == 200
    assert row_filter.split == "" and row_filter.as_args() == {"q": row_filter.query, "call": "with"}
    assert not RowFilter.from_args({}).active


@pytest.fixture
def glaive(app, signed_in):
    if not GLAIVE.is_file():
        pytest.skip("../shared/fixtures is not beside the repo")
    client, user = signed_in()
    assert upload_dataset(client, GLAIVE.read_bytes(), GLAIVE.name).status_code == 302
    (dataset,) = datasets(app)
    return client, dataset


def file_rows(dataset) -> list[dict]:
    return [json.loads(line) for line in Path(dataset.file_path).read_text().splitlines()]


def test_search_and_filters_narrow_the_rows_and_htmx_gets_only_the_list(glaive):
    client, dataset = glaive
    name, count = dataset.stats["top_calls"][0]
    page = client.get(f"/datasets/{dataset.id}?call=fn:{name}").get_data(as_text=True)
    assert f"Rows 1–{min(count, PAGE_SIZE)} of {count} matching (of 300)." in page
    partial = client.get(
        f"/datasets/{dataset.id}?call=without&page=2",
        headers={"HX-Request": "true", "HX-Target": "dataset-rows"},
    )
    text = partial.get_data(as_text=True)
    assert partial.status_code == 200 and "<html" not in text and 'id="dataset-rows"' in text
    assert "Rows 21–40 of 147 matching" in text and "Page 2 of 8" in text
    assert "No row matches." in client.get(f"/datasets/{dataset.id}?q=zzqqxx").get_data(as_text=True)
    for hostile in ("?page=-5", "?page=abc", "?split=<script>", "?call=fn:", "?q=%ff"):
        assert client.get(f"/datasets/{dataset.id}{hostile}").status_code == 200
    assert client.get(f"/datasets/{dataset.id}?q=%00").status_code == 400  # a NUL: refused, with the reason


def test_deleting_a_row_rewrites_the_file_and_the_figures(app, glaive):
    client, dataset = glaive
    rows = file_rows(dataset)
    with_call = dataset.stats["with_call"]
    victim = next(i for i, row in enumerate(rows, start=1) if "tool_calls" in json.dumps(row))
    response = client.post(
        f"/datasets/{dataset.id}/rows/{victim}/delete",
        data={
            "csrf_token": csrf_token(client, "/datasets/"),
            "digest": row_digest(rows[victim - 1]),
            "q": "",
            "page": "1",
        },
    )
    assert response.status_code == 303 and f"/datasets/{dataset.id}" in response.headers["Location"]
    (after,) = datasets(app)
    assert after.sample_count == 299 and after.stats["with_call"] == with_call - 1
    assert file_rows(after) == rows[: victim - 1] + rows[victim:]
    # The token total was adjusted by the deleted row, not recounted: the same figures as a recount.
    assert after.stats == json.loads(json.dumps(dataset_stats(file_rows(after), "sft")))
    assert f"Deleted row {victim}." in client.get(response.headers["Location"]).get_data(as_text=True)


def test_moving_a_row_to_eval_and_a_stale_page_changing_nothing(app, glaive):
    client, dataset = glaive
    rows = file_rows(dataset)
    token = csrf_token(client, "/datasets/")
    moved = client.post(
        f"/datasets/{dataset.id}/rows/3/split",
        data={
            "csrf_token": token,
            "digest": row_digest(rows[2]),
            "to_split": "eval",
            "call": "with",
            "page": "2",
        },
    )
    assert (
        moved.status_code == 303
        and "call=with" in moved.headers["Location"]
        and "page=2" in moved.headers["Location"]
    )
    (after,) = datasets(app)
    assert (after.eval_count, after.train_count) == (1, 299) and file_rows(after)[2]["split"] == "eval"
    # The page still shows the old row 3: its digest no longer matches, so nothing happens.
    stale = client.post(
        f"/datasets/{dataset.id}/rows/3/delete", data={"csrf_token": token, "digest": row_digest(rows[2])}
    )
    assert "has changed since the page was loaded" in client.get(stale.headers["Location"]).get_data(
        as_text=True
    )
    for number in (0, 301, 10**9):
        client.post(f"/datasets/{dataset.id}/rows/{number}/delete", data={"csrf_token": token, "digest": "x"})
    bad_split = client.post(
        f"/datasets/{dataset.id}/rows/1/split",
        data={"csrf_token": token, "digest": row_digest(rows[0]), "to_split": "test"},
    )
    assert "The split must be one of train, eval." in client.get(bad_split.headers["Location"]).get_data(
        as_text=True
    )
    (final,) = datasets(app)
    assert final.sample_count == 300 and file_rows(final) == file_rows(after)


def test_edits_need_csrf_and_never_touch_another_users_dataset(app, glaive, signed_in):
    client, dataset = glaive
    digest = row_digest(file_rows(dataset)[0])
    assert client.post(f"/datasets/{dataset.id}/rows/1/delete", data={"digest": digest}).status_code == 400
    mallory, _ = signed_in("mallory@example.com")
    token = csrf_token(mallory, "/datasets/")
    assert mallory.get(f"/datasets/{dataset.id}?q=x").status_code == 404
    assert mallory.get(f"/datasets/{dataset.id}/rows/1/edit?digest={digest}").status_code == 404
    for action in ("delete", "split", "edit"):
        response = mallory.post(
            f"/datasets/{dataset.id}/rows/1/{action}",
            data={"csrf_token": token, "digest": digest, "to_split": "eval", "row_json": "{}"},
        )
        assert response.status_code == 404
    (after,) = datasets(app)
    assert after.sample_count == 300 and after.eval_count == 0


def test_a_row_edited_as_json_is_checked_then_saved(app, glaive):
    client, dataset = glaive
    rows = file_rows(dataset)
    digest = row_digest(rows[1])
    editor = client.get(f"/datasets/{dataset.id}/rows/2/edit?digest={digest}&call=with")
    text = editor.get_data(as_text=True)
    assert editor.status_code == 200 and "Edit row 2" in text and 'name="call"' in text
    assert json.loads(html.unescape(text.split('spellcheck="false">')[1].split("</textarea>")[0])) == rows[1]
    stale = client.get(f"/datasets/{dataset.id}/rows/2/edit?digest=nope")
    assert stale.status_code == 422 and "has changed" in stale.get_data(as_text=True)

    token = csrf_token(client, "/datasets/")
    headers = {"HX-Request": "true"}

    def post(body: str, **extra):
        data = {"csrf_token": token, "digest": digest, "row_json": body, **extra}
        return client.post(f"/datasets/{dataset.id}/rows/2/edit", data=data, headers=headers)

    wrong = [
        ("{not json", "Not valid JSON"),
        ('{"messages": [{"role": "user", "content": "hi"}]}', "at least one assistant message"),
        ('{"prompt": [{"role": "user", "content": "a"}], "chosen": [], "rejected": []}', "chosen"),
        ("[1, 2]", "A row needs messages"),
        ("x" * (256 * 1024 + 1), "over 256 KiB"),
        # Python's json writes these, no JSON reader (nor our own importer) takes them back.
        (json.dumps(rows[1])[:-1] + ', "meta": NaN}', "NaN is not a JSON value"),
        (json.dumps(rows[1])[:-1] + ', "meta": 1e999}', "too large"),
    ]
    for body, expected in wrong:
        response = post(body)
        assert response.status_code == 422 and expected in response.get_data(as_text=True), body[:40]
    fixed = {
        **rows[1],
        "messages": rows[1]["messages"]
        + [{"role": "user", "content": "thanks"}, {"role": "assistant", "content": "You're welcome!"}],
    }
    saved = post(json.dumps(fixed), call="with", page="3")
    assert saved.status_code == 200 and "call=with" in saved.headers["HX-Redirect"]
    (after,) = datasets(app)
    assert file_rows(after)[1] == fixed and file_rows(after)[0] == rows[0] and after.sample_count == 300
    assert after.stats == json.loads(json.dumps(dataset_stats(file_rows(after), "sft")))
    assert post(json.dumps(fixed)).status_code == 422  # the old digest no longer names the row


def test_the_raw_text_rules_rows_out_only_when_they_cannot_match():
    row = sft('He said "hi" to Zoë', "get_weather", "eval")
    line = json.dumps(row, ensure_ascii=False, separators=(",", ":"))  # as write_rows writes it
    for query in ('"hi"', "zoë", "ZOË", "said", "get_weather", '"city":'):
        row_filter = RowFilter(query=query)
        assert row_filter.may_match(line) or not row_filter.matches(row, "sft"), query
    assert (
        browse([line], "sft", RowFilter(query='"hi" zoë', split="eval", call="fn:get_weather"), 1).matching
        == 1
    )
    assert not RowFilter(query="oslo").may_match(line) and not RowFilter(split="eval").may_match(
        line.replace("eval", "x")
    )
    assert not RowFilter(call="fn:get_time").may_match(line)


def test_adjusted_figures_equal_a_recount_and_old_figures_are_recounted(app, glaive):
    from app.datasets.stats import adjusted_stats, request_overlap
    from app.extensions import db
    from app.models import Dataset

    rows = file_rows(glaive[1])
    stats = dataset_stats(rows, "sft")
    changed = {**rows[7], "messages": rows[7]["messages"][:1] + [{"role": "assistant", "content": "No."}]}
    after = rows[:3] + rows[4:7] + [changed] + rows[8:] + [rows[0]]
    adjusted = adjusted_stats(stats, [rows[3], rows[7]], [changed, rows[0]], "sft")
    # The request overlap is no sum of per-row figures: an edit counts it again over every row.
    assert adjusted | request_overlap(after) == dataset_stats(after, "sft")
    old_style = {key: value for key, value in stats.items() if key not in ("call_rows", "offered_rows")}
    assert adjusted_stats(old_style, [rows[3]], [], "sft") is None
    # Lengths counted another way (words and calls alone, before the template was counted) are
    # recounted, not mixed with new counts.
    counted_before = {key: value for key, value in stats.items() if key != "length_counting"}
    assert adjusted_stats(counted_before, [rows[3]], [], "sft") is None

    client, dataset = glaive
    with app.app_context():  # figures stored before they kept every count: the next edit recounts them
        db.session.get(Dataset, dataset.id).stats = old_style
        db.session.commit()
    token = csrf_token(client, "/datasets/")
    client.post(
        f"/datasets/{dataset.id}/rows/1/split",
        data={"csrf_token": token, "digest": row_digest(rows[0]), "to_split": "eval"},
    )
    (after_edit,) = datasets(app)
    assert after_edit.stats == json.loads(json.dumps(dataset_stats(file_rows(after_edit), "sft")))
    assert after_edit.eval_count == 1 and "call_rows" in after_edit.stats


def test_calls_that_break_their_schema_are_found_and_shown():
    from app.datasets.browse import call_problems

    weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
                "required": ["city"],
            },
        },
    }

    def row(arguments, name="get_weather", tools=(weather,)):
        call = {"type": "function", "function": {"name": name, "arguments": arguments}}
        answer = {"role": "assistant", "content": "", "tool_calls": [call]}
        return {"messages": [{"role": "user", "content": "Oslo?"}, answer], "tools": list(tools)}

    good, kelvin, missing = row({"city": "Oslo"}), row({"city": "Oslo", "unit": "kelvin"}), row({})
    unknown, untooled = row({"city": "Oslo"}, name="get_time"), row({}, tools=())
    assert call_problems(good, "sft") == [] and call_problems(untooled, "sft") == []
    assert "kelvin" in call_problems(kelvin, "sft")[0] and "city" in call_problems(missing, "sft")[0]
    assert "No tool named 'get_time'" in call_problems(unknown, "sft")[0]
    lines = [json.dumps(r) for r in (good, kelvin, missing, unknown, untooled)]
    page = browse(lines, "sft", RowFilter(call="invalid"), 1)
    assert [n for n, _ in page.rows] == [2, 3, 4] and set(page.problems) == {2, 3, 4}
    assert browse(lines, "sft", RowFilter(), 1).problems.keys() == {2, 3, 4}


def test_the_page_shows_rows_by_length(glaive):
    client, dataset = glaive
    bands = dataset.stats["length_buckets"]
    assert sum(bands.values()) == 300
    page = client.get(f"/datasets/{dataset.id}").get_data(as_text=True)
    table = page.split('aria-label="Rows by length in tokens"', 1)[1].split("</table>", 1)[0]
    under_256 = sum(count for band, count in bands.items() if int(band) < 2)
    assert f"<td>under 256 tokens</td><td>{under_256}</td>" in table


def test_rows_longer_than_a_length_are_found_and_every_row_shows_its_tokens(glaive):
    from app.datasets.stats import row_lengths

    client, dataset = glaive
    lengths = row_lengths(file_rows(dataset), "sft")
    over = [n for n, length in enumerate(lengths, start=1) if length > 2048]
    page = client.get(f"/datasets/{dataset.id}?longer=2048").get_data(as_text=True)
    assert f"of {len(over)} matching (of 300)." in page and f'id="row-{over[0]}"' in page
    assert f"~{lengths[over[0] - 1]:,} tokens" in page
    assert (
        RowFilter.from_args({"longer": "513"}).longer == 0
        and RowFilter.from_args({"longer": "x"}).longer == 0
    )
    assert RowFilter.from_args({"longer": "512"}).as_args() == {"longer": "512"}
    first = file_rows(dataset)[over[0] - 1]
    moved = client.post(
        f"/datasets/{dataset.id}/rows/{over[0]}/split",
        data={"csrf_token": csrf_token(client, "/datasets/"), "digest": row_digest(first), "to_split": "eval",
              "longer": "2048"},
    )  # fmt: skip
    assert "longer=2048" in moved.headers["Location"]  # the filter survives the edit


def test_the_filtered_rows_download_as_jsonl(glaive):
    from app.datasets.rows import called_functions

    client, dataset = glaive
    name, count = dataset.stats["top_calls"][0]
    page = client.get(f"/datasets/{dataset.id}?call=fn:{name}").get_data(as_text=True)
    assert f"Download these {count}" in page
    response = client.get(f"/datasets/{dataset.id}/download?call=fn:{name}")
    lines = response.get_data(as_text=True).splitlines()
    assert (
        response.mimetype == "application/jsonl"
        and "-filtered.jsonl" in response.headers["Content-Disposition"]
    )
    expected = [row for row in file_rows(dataset) if name in called_functions(row)]
    assert [json.loads(line) for line in lines] == expected and len(expected) == count
    assert len(client.get(f"/datasets/{dataset.id}/download").get_data(as_text=True).splitlines()) == 300
