"""Two edits of one dataset at the same moment (two tabs, two users of a shared login) both land: each
rewrites the file from what the other left, on SQLite as on PostgreSQL (where `FOR UPDATE` alone was
enough; SQLite ignores it, and the later edit dropped the earlier one's change)."""

from __future__ import annotations

import threading
import time

from app.datasets.browse import row_digest
from tests.conftest import csrf_token
from tests.datasets.test_browse_and_edit import file_rows, glaive  # noqa: F401 (a fixture)
from tests.datasets.test_pages import datasets


def test_two_edits_at_once_both_land(app, glaive, monkeypatch):  # noqa: F811
    import app.datasets.editing as editing

    client, dataset = glaive
    rows = file_rows(dataset)
    real_write = editing.write_lines

    def slow_write(path, lines):  # both requests have read the file before either writes it
        time.sleep(0.5)
        real_write(path, lines)

    monkeypatch.setattr(editing, "write_lines", slow_write)
    clients = [client, app.test_client()]
    with client.session_transaction() as session:
        cookie = dict(session)
    with clients[1].session_transaction() as session:
        session.update(cookie)
    token = csrf_token(client, "/datasets/")
    statuses = {}

    def move_to_eval(index: int) -> None:
        number = index + 1
        data = {"csrf_token": token, "digest": row_digest(rows[index]), "to_split": "eval"}
        response = clients[index].post(f"/datasets/{dataset.id}/rows/{number}/split", data=data)
        statuses[number] = response.status_code

    threads = [threading.Thread(target=move_to_eval, args=(index,)) for index in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(status in (200, 302, 303) for status in statuses.values()), statuses
    (after,) = datasets(app)
    saved = file_rows(after)
    assert [row.get("split") for row in saved[:2]] == ["eval", "eval"]
    assert after.eval_count == 2 and after.sample_count == len(rows)
