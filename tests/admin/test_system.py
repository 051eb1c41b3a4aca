"""The admin System page: live workers from Redis, queue depths, disk use per store and per user."""

from __future__ import annotations

import re

from app.datasets.services import store_rows
from tests.background.test_worker import _stop, _wait_for
from tests.conftest import start_worker


def sft(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}]}


def test_workers_queues_and_disk_use_per_user(app, signed_in, tmp_path):
    admin, _ = signed_in("admin@example.com")  # the first account is the admin
    bob, bob_user = signed_in("bob@example.com")
    with app.app_context():
        dataset = store_rows(
            bob_user.id, "bob's", "sft", [sft("x" * 5000)], source="upload", source_format="toolsmith"
        )
        size = len(open(dataset.file_path, "rb").read())
    worker = start_worker(app, "eval", "export", "--name", "sysbox", log_path=tmp_path / "worker.log")
    try:
        page = _wait_for(
            lambda: (p := admin.get("/admin/system").get_data(as_text=True)) and "sysbox" in p and p, 60
        )
    finally:
        _stop(worker)
    assert re.search(r"<code>sysbox</code></td><td>eval, export</td>", page)
    assert "<tr><td>default</td><td>0</td>" in page and "free of" in page
    usage = page.split('id="usage"', 1)[1]
    bob_row = next(row for row in usage.split("<tr>") if "bob@example.com" in row)
    assert f"{size / 1024:.1f} KiB" in bob_row or f"{size} Bytes" in bob_row
    assert bob.get("/admin/system").status_code == 404  # not advertised to non-admins


def test_an_unreachable_redis_is_reported_not_raised(app, signed_in):
    admin, _ = signed_in("admin@example.com")
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    app.extensions.pop("toolsmith_redis", None)
    page = admin.get("/admin/system")
    assert page.status_code == 200 and "Redis cannot be reached" in page.get_data(as_text=True)
    assert "free of" in page.get_data(as_text=True)  # the disk part does not need Redis


def test_the_local_models_of_this_process_and_their_saved_prompt_states(app, signed_in, default_model_id):
    from app.extensions import db
    from app.models import LLMModel
    from app.serving import generate, local_models
    from app.serving.types import SamplingParams
    from tests.serving.test_prompt_states import LONG, OTHER

    admin, _ = signed_in("admin@example.com")
    page = admin.get("/admin/system").get_data(as_text=True)
    assert "None loaded" in page  # nothing served yet, and the page loads nothing
    with app.app_context():
        model = db.session.get(LLMModel, default_model_id)
        for messages in (LONG, OTHER):  # the long prompt is pushed out: its state is saved
            generate(model, messages, SamplingParams(0.0, 1.0, 4))
        assert local_models().prompt_states.saves == 1
    section = admin.get("/admin/system").get_data(as_text=True).split('id="serving"', 1)[1]
    assert "SmolLM2-135M-Instruct" in section and "Saved prompt states: 1 (" in section
    assert "1 saved and 0 restored" in section
