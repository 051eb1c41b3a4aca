"""QLoRA needs a CUDA worker: the check reads what real `flask worker` processes publish in Redis."""

from __future__ import annotations

import contextlib
import signal

import pytest

from app.configs.services import cuda_check, lint_for_user
from app.configs.templates import TEMPLATES_BY_KEY
from app.worker_capabilities import train_worker_capabilities
from tests.background.test_worker import _stop, _wait_for
from tests.configs.test_pages import config_count, form_data
from tests.conftest import start_worker

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def signed_in_request(app, user_id: int):
    """A request context with `user_id` signed in: `lint_for_user` reads the current user."""
    from flask_login import login_user

    from app.extensions import db
    from app.models import User

    with app.test_request_context():
        login_user(db.session.get(User, user_id))
        yield


def qlora_config() -> dict:
    config = TEMPLATES_BY_KEY["sft_toolbench"].build()
    config["training"]["use_qlora"] = True
    return config


def test_qlora_is_refused_at_submit_without_a_cuda_worker_with_the_reason(app, signed_in, tmp_path):
    client, user = signed_in()
    with signed_in_request(app, user.id):
        # No worker at all: the reason says so.
        report = lint_for_user(qlora_config(), submitting=True)
        assert [(f.rule, f.path) for f in report.errors] == [("qlora_needs_cuda", "training.use_qlora")]
        assert "no worker is listening on the train queue" in report.errors[0].message

    worker = start_worker(app, "train", "--name", "cpu-box", log_path=tmp_path / "worker.log")
    try:
        with app.app_context():
            report = _wait_for(
                lambda: next((r for r in train_worker_capabilities() if r.get("cuda") is not None), None), 90
            )
            assert report["name"] == "cpu-box" and report["memory_bytes"] > 2**30
            assert report["cuda"] is False  # this machine has no GPU; CI never has one
            check = cuda_check()
            assert not check.available and "cpu-box" in check.reason and "no CUDA device" in check.reason
        with signed_in_request(app, user.id):
            submit = lint_for_user(qlora_config(), submitting=True)
            assert submit.errors and "cpu-box" in submit.errors[0].message
            # While editing it is a warning: the config can be saved and run later on a GPU worker.
            editing = lint_for_user(qlora_config())
            assert editing.ok and editing.warnings[0].rule == "qlora_needs_cuda"
        data = form_data(qlora_config(), "qlora later", client)
        response = client.post("/configs/new?template=sft_toolbench", data=data)
        assert response.status_code == 302 and config_count(app) == 1
        page = client.get(response.headers["Location"]).get_data(as_text=True)
        assert "QLoRA needs a CUDA worker" in page and "cpu-box" in page
        worker.send_signal(signal.SIGTERM)  # a warm shutdown: RQ deregisters the worker
        worker.wait(timeout=30)
        with app.app_context():
            assert train_worker_capabilities() == []  # a stopped worker's report no longer counts
    finally:
        _stop(worker)
