"""Importing GGUF files: streamed uploads into MODEL_STORE, admin-registered paths, download, delete."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.serving.default_model import default_gguf_path
from tests.conftest import csrf_token, post_form
from tests.registry.conftest import model_rows


@pytest.fixture(scope="module")
def gguf_bytes() -> bytes:
    return default_gguf_path().read_bytes()


def upload(client, filename: str, content: bytes, **fields):
    from io import BytesIO

    data = {
        "csrf_token": csrf_token(client, "/models/new"),
        "provider": "local_gguf",
        "max_tokens": "256",
        "enabled": "y",
        "supports_tools": "y",
        "gguf_file": (BytesIO(content), filename),
        **fields,
    }
    return client.post("/models/new", data=data, content_type="multipart/form-data")


def store_files(app) -> list[Path]:
    """Every file under MODEL_STORE, hidden temporary uploads included."""
    return sorted(p for p in Path(app.config["MODEL_STORE"]).rglob("*") if p.is_file())


def test_real_gguf_upload_is_stored_with_header_metadata(app, signed_in, gguf_bytes):
    client, user = signed_in("alice@example.com")
    response = upload(client, "SmolLM2 tiny.gguf", gguf_bytes, name="")
    assert response.status_code == 302, response.get_data(as_text=True)
    (model,) = model_rows(app)
    assert model.owner_id == user.id and model.name == "SmolLM2 tiny"
    assert model.architecture == "llama" and model.quantization == "Q4_1"
    assert 130_000_000 < model.parameter_count < 140_000_000
    assert model.context_length == 8192 and model.has_chat_template and model.file_size == len(gguf_bytes)
    (stored,) = store_files(app)  # the temporary upload name is gone: one file, no copy
    assert str(stored) == model.gguf_path and f"user-{user.id}" in model.gguf_path
    assert stored.read_bytes()[:4096] == gguf_bytes[:4096]
    page = client.get(f"/models/{model.id}").get_data(as_text=True)
    assert "Q4_1" in page and "llama" in page and "Download GGUF" in page


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        ("notes.gguf", b"just some text pretending to be a model\n" * 100, "not a GGUF file"),
        ("model.bin", b"GGUF" + b"\0" * 100, "Choose a .gguf file"),
    ],
)
def test_non_gguf_uploads_are_refused_and_leave_nothing(app, signed_in, filename, content, message):
    client, _ = signed_in("alice@example.com")
    response = upload(client, filename, content)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert model_rows(app) == [] and store_files(app) == []


def test_truncated_gguf_is_refused_and_leaves_nothing(app, signed_in, gguf_bytes):
    client, _ = signed_in("alice@example.com")
    response = upload(client, "cut.gguf", gguf_bytes[:200_000])
    assert response.status_code == 422
    assert "damaged or truncated" in response.get_data(as_text=True)
    assert model_rows(app) == [] and store_files(app) == []


def test_oversized_upload_is_refused_before_it_is_stored(app, signed_in, gguf_bytes):
    app.config["MAX_GGUF_UPLOAD_BYTES"] = 1024 * 1024
    client, _ = signed_in("alice@example.com")
    response = upload(client, "big.gguf", gguf_bytes[: 3 * 1024 * 1024])
    assert response.status_code == 413
    assert "the limit is 1.0 MiB" in response.get_data(as_text=True)
    assert model_rows(app) == [] and store_files(app) == []


def test_full_disk_is_refused_with_a_clear_message(app, signed_in, gguf_bytes):
    app.config["MODEL_STORE_MIN_FREE_BYTES"] = 1024**5  # a petabyte reserve: no disk has that free
    client, _ = signed_in("alice@example.com")
    response = upload(client, "m.gguf", gguf_bytes[:1000])
    assert response.status_code == 507 and "Not enough disk space" in response.get_data(as_text=True)
    assert model_rows(app) == [] and store_files(app) == []


def test_admin_registers_a_path_inside_the_store_only(app, signed_in, make_user):
    admin, _ = signed_in("admin@example.com")
    bob, _ = signed_in("bob@example.com")
    store = Path(app.config["MODEL_STORE"])
    (store / "shared").mkdir(parents=True)
    inside = store / "shared" / "smol.gguf"
    shutil.copyfile(default_gguf_path(), inside)
    outside = store.parent / "outside.gguf"
    shutil.copyfile(default_gguf_path(), outside)
    for private in ("uploads/user-9/theirs.gguf", "runs/9/1/export/run1-Q4_K_M.gguf"):
        (store / private).parent.mkdir(parents=True)
        shutil.copyfile(default_gguf_path(), store / private)
    (store / "shared" / "loop.gguf").symlink_to(store / "shared" / "loop.gguf")
    form = {"provider": "local_gguf", "max_tokens": "128", "enabled": "y"}

    for path, message in [
        ("uploads/user-9/theirs.gguf", "belongs to a user&#39;s upload or training run"),
        ("shared/../runs/9/1/export/run1-Q4_K_M.gguf", "belongs to a user&#39;s upload or training run"),
        ("../outside.gguf", "must be inside the model store"),
        (str(outside), "must be inside the model store"),
        ("shared/missing.gguf", "There is no file"),
        ("shared/loop.gguf", "not a usable file path"),
        ("shared/" + "y" * 300 + ".gguf", "not a usable file path"),
    ]:
        response = post_form(admin, "/models/new", {**form, "gguf_server_path": path})
        assert response.status_code == 422 and message in response.get_data(as_text=True)
    refused = post_form(bob, "/models/new", {**form, "gguf_server_path": "shared/smol.gguf"})
    assert refused.status_code == 422 and "Only admins" in refused.get_data(as_text=True)
    assert model_rows(app) == []

    ok = post_form(admin, "/models/new", {**form, "gguf_server_path": "shared/smol.gguf", "shared": "y"})
    assert ok.status_code == 302
    (model,) = model_rows(app)
    assert (
        model.gguf_path == str(inside.resolve()) and model.owner_id is None and model.quantization == "Q4_1"
    )
    # A registered file is the admin's: deleting the model leaves it in place.
    assert post_form(admin, f"/models/{model.id}/delete").status_code == 302
    assert inside.exists()


def test_download_streams_the_file_to_owner_only_and_delete_removes_it(app, signed_in, gguf_bytes):
    alice, _ = signed_in("alice@example.com")
    bob, _ = signed_in("bob@example.com")
    upload(alice, "mine.gguf", gguf_bytes, name="Alice's model")
    (model,) = model_rows(app)
    response = alice.get(f"/models/{model.id}/download")
    assert response.status_code == 200
    assert (
        "attachment" in response.headers["Content-Disposition"]
        and ".gguf" in response.headers["Content-Disposition"]
    )
    assert response.is_streamed or response.direct_passthrough
    assert response.get_data() == gguf_bytes
    response.close()
    assert bob.get(f"/models/{model.id}/download").status_code == 404
    assert post_form(alice, f"/models/{model.id}/delete").status_code == 302
    assert model_rows(app) == [] and store_files(app) == []


def test_an_uploaded_models_name_cannot_be_blanked_on_edit(app, signed_in, gguf_bytes):
    alice, _ = signed_in("alice@example.com")
    upload(alice, "mine.gguf", gguf_bytes)
    (model,) = model_rows(app)
    assert model.name  # named after its file
    edit = {"name": "", "max_tokens": "256", "enabled": "y"}
    response = post_form(alice, f"/models/{model.id}/edit", edit)
    assert response.status_code == 422 and "Give the model a name." in response.get_data(as_text=True)
    assert model_rows(app)[0].name == model.name


def test_an_uploaded_file_another_model_still_uses_is_kept(app, signed_in, gguf_bytes):
    from app.extensions import db
    from app.models import LLMModel

    alice, _ = signed_in("alice@example.com")
    upload(alice, "mine.gguf", gguf_bytes, name="first")
    (first,) = model_rows(app)
    with app.app_context():  # a second row on the same file (an older registration, say)
        db.session.add(LLMModel(name="second", provider="local_gguf", owner_id=first.owner_id,
                                gguf_path=first.gguf_path))  # fmt: skip
        db.session.commit()
    assert post_form(alice, f"/models/{first.id}/delete").status_code == 302
    assert Path(first.gguf_path).is_file()
    (second,) = model_rows(app)
    assert post_form(alice, f"/models/{second.id}/delete").status_code == 302
    assert store_files(app) == []


def test_download_of_remote_model_is_404(app, signed_in):
    from tests.registry.conftest import add_model

    client, _ = signed_in("alice@example.com")
    add_model(client, {"provider": "hf_inference", "name": "remote", "model_id": "a/b"})
    (model,) = model_rows(app)
    assert client.get(f"/models/{model.id}/download").status_code == 404


def header_only_gguf(architecture: str, context_length: int) -> bytes:
    """A well-formed GGUF v3 with no tensors and two metadata keys (a string and a uint64)."""
    import struct

    def text(value: str) -> bytes:
        raw = value.encode()
        return struct.pack("<Q", len(raw)) + raw

    out = b"GGUF" + struct.pack("<IQQ", 3, 0, 2)
    out += text("general.architecture") + struct.pack("<I", 8) + text(architecture)
    out += text(f"{architecture}.context_length") + struct.pack("<I", 10) + struct.pack("<Q", context_length)
    return out


@pytest.mark.parametrize(
    ("architecture", "context_length", "stored_architecture", "stored_context"),
    [
        ("llama", 2**64 - 1, "llama", None),  # past SQLite's and PostgreSQL's integers
        ("llama", 2**40, "llama", None),  # past PostgreSQL's INTEGER
        ("a" * 100, 4096, "a" * 64, 4096),  # past String(64): cut
        ("llama", 4096, "llama", 4096),
    ],
    ids=["uint64-context", "2**40-context", "long-architecture", "plain"],
)
def test_header_values_past_the_columns_are_stored_as_unknown_not_a_500(
    app, signed_in, architecture, context_length, stored_architecture, stored_context
):
    client, _ = signed_in()
    response = upload(client, "odd.gguf", header_only_gguf(architecture, context_length))
    assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
    (model,) = model_rows(app)
    assert model.architecture == stored_architecture and model.context_length == stored_context


def test_only_a_multipart_upload_gets_the_large_body_limit(app, signed_in):
    """The GGUF policy raises the body cap for /models/new; a urlencoded body (read whole into memory) keeps
    the global MAX_CONTENT_LENGTH, and a form without a file is no upload (no disk check)."""
    client, _ = signed_in("admin@example.com")
    token = csrf_token(client, "/models/new")
    big = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1024)
    response = client.post(
        "/models/new",
        data=f"csrf_token={token}&provider=openai_compatible&name={big}",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413
    app.config["MODEL_STORE_MIN_FREE_BYTES"] = 1024**5  # a full disk stops uploads, not endpoints
    endpoint = {"provider": "openai_compatible", "name": "remote", "base_url": "https://api.example.com/v1"}
    response = post_form(client, "/models/new", {**endpoint, "model_id": "m", "max_tokens": "64"})
    assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
    assert [row.name for row in model_rows(app)] == ["remote"]


def test_an_upload_that_does_not_say_its_size_is_refused(app, signed_in, gguf_bytes):
    client, _ = signed_in("alice@example.com")
    response = client.post(
        "/models/new",
        data=b"--x\r\n",
        content_type="multipart/form-data; boundary=x",
        headers={"Transfer-Encoding": "chunked"},
    )
    assert response.status_code == 411 and "Content-Length" in response.get_data(as_text=True)
    assert model_rows(app) == [] and store_files(app) == []


def test_uploads_under_way_keep_the_disk_space_they_were_promised(app):
    from app.registry.gguf_store import GGUFImportError, prepare_gguf_upload, release_upload_reservation

    size = 2**30
    store = Path(app.config["MODEL_STORE"])
    store.mkdir(parents=True, exist_ok=True)
    # Room for one upload of `size` and a half: the first fits, a second at the same time does not.
    app.config["MODEL_STORE_MIN_FREE_BYTES"] = shutil.disk_usage(store).free - int(1.5 * size)
    environ = {"CONTENT_TYPE": "multipart/form-data; boundary=x", "CONTENT_LENGTH": str(size)}
    first = app.test_request_context("/models/new", method="POST", environ_base=environ)
    with first:
        prepare_gguf_upload()
        with app.test_request_context("/models/new", method="POST", environ_base=environ):
            with pytest.raises(GGUFImportError, match="uploads under way") as refused:
                prepare_gguf_upload()
            assert refused.value.status == 507
        release_upload_reservation()  # the first upload ended: its space is free to promise again
    with app.test_request_context("/models/new", method="POST", environ_base=environ):
        prepare_gguf_upload()
        release_upload_reservation()


def test_partial_uploads_left_by_a_killed_process_are_removed_later(tmp_path):
    import os
    import time

    from app.registry.gguf_store import remove_abandoned_uploads

    old, live, other = tmp_path / ".upload-a.part", tmp_path / ".upload-b.part", tmp_path / "keep.gguf"
    for path in (old, live, other):
        path.write_bytes(b"x")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    os.utime(other, (two_days_ago, two_days_ago))
    assert remove_abandoned_uploads(tmp_path) == 1
    assert not old.exists() and live.exists() and other.exists()
