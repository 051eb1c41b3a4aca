"""Importing a dataset repo from the Hugging Face Hub: which files are read and which are held out, the
real huggingface_hub client against a fake Hub on loopback (listing, download, size limit, refusals as
sentences), and the form → a real `flask worker default --burst` → ready (or failed) datasets."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from app.extensions import db
from app.models import BackgroundJob, Dataset
from jobs.dataset_import import HubFile, HubImportError, HubSource, pick_files
from tests.conftest import csrf_token, start_worker
from tests.training.test_pipeline import sft_rows

TOKEN = "hf_datasetimporttoken0123456789abcd"
GLAIVE = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "sft" / "glaive_toolcall_en_demo.json"

pytestmark = pytest.mark.usefixtures("no_ambient_hub_settings")


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def glaive_parquet() -> bytes:
    """The real glaive sample (ShareGPT with tools) as one Parquet file, the way the Hub serves datasets."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = json.loads(GLAIVE.read_text())
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records), buffer)
    return buffer.getvalue()


# --- which files ------------------------------------------------------------------------------------


def files(*paths: str) -> list[HubFile]:
    return [HubFile(path, 10) for path in paths]


def test_every_data_file_is_read_and_test_or_validation_files_are_held_out():
    repo = files(
        "README.md", ".gitattributes", "data/train-00000.parquet", "data/test-00000.parquet", "x.txt"
    )
    assert [f.path for f in pick_files(repo, "", "a/b")] == [
        "data/test-00000.parquet",
        "data/train-00000.parquet",
    ]
    held = {path: HubFile(path, 1).held_out for path in (
        "test.jsonl", "data/validation-00000-of-00001.parquet", "eval/rows.json", "dev.jsonl", "val.json",
        "train.jsonl", "data/contest.jsonl", "latest.json", "devices.jsonl",
    )}  # fmt: skip
    assert [path for path, out in held.items() if out] == [
        "test.jsonl", "data/validation-00000-of-00001.parquet", "eval/rows.json", "dev.jsonl", "val.json"
    ]  # fmt: skip


def test_a_small_parquet_file_that_unpacks_past_the_limit_is_refused():
    import pyarrow
    import pyarrow.parquet as pq

    from jobs.dataset_import import read_file

    def parquet(rows: int, text: str) -> bytes:
        buffer = io.BytesIO()
        table = pyarrow.table({"text": [text] * rows})
        pq.write_table(table, buffer, compression="zstd")  # the repeated string is stored once
        return buffer.getvalue()

    bomb = parquet(10_000, "x" * 10_000)  # 100 MB of rows
    assert len(bomb) < 20_000
    with pytest.raises(HubImportError, match="unpacks to more than 1 MiB of rows"):
        read_file(HubFile("data/train.parquet", len(bomb)), bomb, limit=2**20)
    one_huge_value = parquet(1, "y" * 50_000_000)
    with pytest.raises(HubImportError, match="unpacks to more than 1 MiB"):
        read_file(HubFile("data/train.parquet", len(one_huge_value)), one_huge_value, limit=2**20)
    kind, rows, _ = read_file(HubFile("train.parquet", 1), glaive_parquet(), limit=2**20)
    assert kind == "sft" and rows


def test_a_missing_float_in_a_parquet_column_is_null_not_a_refused_row():
    import math

    import pyarrow as pa
    import pyarrow.parquet as pq

    from jobs.dataset_import import read_file

    records = json.loads(GLAIVE.read_text())[:3]
    for record, score in zip(records, [math.nan, 0.5, math.inf], strict=True):
        record["score"] = score  # an extra column the importer ignores, as pandas writes a missing value
        record["weights"] = [1.0, math.nan]
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records), buffer)
    kind, rows, _ = read_file(HubFile("train.parquet", 1), buffer.getvalue(), limit=2**20)
    assert kind == "sft" and len(rows) == 3


def test_a_file_or_folder_can_be_picked_and_wrong_picks_are_named():
    repo = files("data/train.jsonl", "data/test.jsonl", "extra/more.json", "README.md", ".hidden/x.jsonl")
    assert [f.path for f in pick_files(repo, "data/train.jsonl", "a/b")] == ["data/train.jsonl"]
    assert [f.path for f in pick_files(repo, "/data/", "a/b")] == ["data/test.jsonl", "data/train.jsonl"]
    for wanted, message in (
        ("nope.jsonl", "a/b has no file or folder 'nope.jsonl'."),
        ("README.md", "'README.md' is not a .jsonl, .json or .parquet file."),
    ):
        with pytest.raises(HubImportError, match=message.replace(".", r"\.")):
            pick_files(repo, wanted, "a/b")
    with pytest.raises(HubImportError, match="holds no .jsonl, .json or .parquet file"):
        pick_files(files("README.md"), "", "a/b")
    with pytest.raises(HubImportError, match="has 40 data files; at most 32"):
        pick_files(files(*(f"part-{i}.jsonl" for i in range(40))), "", "a/b")


# --- the client against the fake Hub ------------------------------------------------------------------


def source(hub, repo_id: str, token: str | None = None, revision: str = "main") -> HubSource:
    return HubSource(repo_id=repo_id, revision=revision, token=token, endpoint=hub.url, timeout=5)


def test_listing_and_download_over_http_within_the_limit():
    from tests.hub_server import fake_hub

    with fake_hub(token=TOKEN) as hub:
        hub.add_dataset("acme/weather", {"data/train.jsonl": jsonl(sft_rows(4)), "README.md": b"# hi"})
        hub.add_dataset("acme/secret", {"train.jsonl": b"{}\n"}, private=True)
        public = source(hub, "acme/weather")
        listed = public.data_files()
        assert sorted((f.path, f.size) for f in listed) == [
            ("README.md", 4),
            ("data/train.jsonl", len(jsonl(sft_rows(4)))),
        ]
        (train,) = [f for f in listed if f.path == "data/train.jsonl"]
        assert public.download(train, limit=10**6) == jsonl(sft_rows(4))
        with pytest.raises(HubImportError, match="data/train.jsonl is larger than the 0 MiB limit"):
            public.download(train, limit=100)
        with pytest.raises(
            HubImportError, match="save a Hugging Face token in your account settings"
        ) as caught:
            source(hub, "acme/secret").data_files()
        assert "HTTP 401" in str(caught.value)
        assert [f.path for f in source(hub, "acme/secret", token=TOKEN).data_files()] == ["train.jsonl"]
        with pytest.raises(HubImportError, match="the token saved in your account cannot read it"):
            source(hub, "acme/missing", token=TOKEN).data_files()
        assert "Authorization" not in " ".join(hub.unknown)
    # An unreachable Hub is retried by huggingface_hub for ~20 s, then said in push's words (_network_reason,
    # tested with the push).


# --- the form and the job ---------------------------------------------------------------------------


def import_hub(client, **fields):
    data = {"csrf_token": csrf_token(client, "/datasets/"), **fields}
    return client.post("/datasets/import-hub", data=data)


def jobs(app) -> int:
    with app.app_context():
        return db.session.execute(db.select(db.func.count()).select_from(BackgroundJob)).scalar()


def datasets_by_name(app) -> dict[str, Dataset]:
    with app.app_context():
        rows = list(db.session.execute(db.select(Dataset)).scalars())
        for row in rows:
            db.session.expunge(row)
    return {row.name: row for row in rows}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"repo_id": "not a repo"}, "A Hub dataset id looks like owner/name."),
        ({"repo_id": ""}, "Name the dataset repo (owner/name)."),
        ({"repo_id": "a/b", "path": "../../etc/passwd"}, "A path inside the repo"),
        ({"repo_id": "a/b", "revision": "main; rm -rf"}, "A branch, tag or commit id."),
        ({"repo_id": "a/b", "name": "x" * 101}, "Field cannot be longer than 100 characters."),
    ],
)
def test_a_wrong_form_says_why_and_queues_nothing(app, signed_in, fields, message):
    client, _ = signed_in()
    response = import_hub(client, **fields)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert jobs(app) == 0 and datasets_by_name(app) == {}


def test_the_form_needs_its_csrf_token(app, signed_in):
    client, _ = signed_in()
    assert client.post("/datasets/import-hub", data={"repo_id": "a/b"}).status_code == 400
    assert jobs(app) == 0


@pytest.mark.worker
def test_public_private_parquet_and_missing_repos_through_a_real_worker(
    app, signed_in, tmp_path, monkeypatch
):
    from tests.hub_server import fake_hub

    alice, _ = signed_in()
    bob, bob_user = signed_in("bob@example.com")
    with app.app_context():
        db.session.get(type(bob_user), bob_user.id).set_hub_token(TOKEN)
        db.session.commit()
    train, test = sft_rows(12), sft_rows(4)
    assert import_hub(alice, repo_id=" acme/weather ", name="weather").status_code == 302
    assert import_hub(alice, repo_id="acme/glaive", path="data").status_code == 302
    assert import_hub(alice, repo_id="acme/secret").status_code == 302  # alice has no token
    assert import_hub(bob, repo_id="acme/secret", revision="main").status_code == 302
    assert import_hub(alice, repo_id="acme/weather", path="nope.jsonl", name="nope").status_code == 302
    page = alice.get("/datasets/").get_data(as_text=True)
    assert "weather" in page and jobs(app) == 5

    with fake_hub(token=TOKEN) as hub:
        hub.add_dataset(
            "acme/weather",
            {"data/train.jsonl": jsonl(train), "data/test.jsonl": jsonl(test), "README.md": b"# Weather"},
        )
        hub.add_dataset("acme/glaive", {"data/train-00000-of-00001.parquet": glaive_parquet()})
        hub.add_dataset("acme/secret", {"secret.jsonl": jsonl(sft_rows(3))}, private=True)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        worker = start_worker(app, "default", "--burst", log_path=tmp_path / "worker.log")
        assert worker.wait(timeout=180) == 0, (tmp_path / "worker.log").read_text()[-3000:]

    found = datasets_by_name(app)
    weather = found["weather"]
    assert (weather.status, weather.source, weather.kind) == ("ready", "hub", "sft"), weather.error
    assert (weather.sample_count, weather.eval_count) == (16, 4)
    assert weather.options["files"] == ["data/test.jsonl", "data/train.jsonl"]
    stored = [json.loads(line) for line in Path(weather.file_path).read_text().splitlines()]
    assert [row.get("split") for row in stored] == ["eval"] * 4 + [None] * 12

    glaive = found["glaive"]
    assert (glaive.status, glaive.sample_count, glaive.source_format) == ("ready", 300, "sharegpt"), (
        glaive.error
    )
    assert glaive.stats["with_call"] > 100  # the calls survived Parquet

    with app.app_context():  # both users have a dataset named "secret"
        secrets = {
            d.owner_id: d
            for d in db.session.execute(db.select(Dataset).where(Dataset.name == "secret")).scalars()
        }
        for row in secrets.values():
            db.session.expunge(row)
    assert secrets[bob_user.id].status == "ready" and secrets[bob_user.id].sample_count == 3
    (alices,) = [d for owner, d in secrets.items() if owner != bob_user.id]
    assert alices.status == "failed" and "save a Hugging Face token" in alices.error
    assert (
        found["nope"].status == "failed"
        and found["nope"].error == "acme/weather has no file or folder 'nope.jsonl'."
    )
    assert found["nope"].file_path is None
    with app.app_context():  # the Jobs page says the same sentence, without a Python class name before it
        errors = [job.error for job in db.session.execute(db.select(BackgroundJob)).scalars() if job.error]
    assert "acme/weather has no file or folder 'nope.jsonl'." in errors
    assert not [error for error in errors if "Error:" in error], errors

    page = alice.get(f"/datasets/{weather.id}").get_data(as_text=True)
    assert f'href="{app.config["HF_ENDPOINT"]}/datasets/acme/weather"' in page and "at main (2 files)" in page
    page = alice.get(f"/datasets/{alices.id}").get_data(as_text=True)
    assert "The import failed: The Hub has no dataset acme/secret" in page
    assert bob.get(f"/datasets/{weather.id}").status_code == 404  # alice's dataset stays hers
    assert TOKEN not in json.dumps([d.options for d in found.values()]) + json.dumps(
        [d.error for d in found.values()]
    )
