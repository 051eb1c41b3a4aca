"""The run page lists what the exported model answered on each held-out row (misses first)."""

from __future__ import annotations

import json

from app.training.files import EVAL_ITEMS_FILE, run_dir
from tests.training.test_compare_runs import make_run

ITEMS = [
    {"request": "Weather in Oslo?", "expected": [["get_weather", {"city": "Oslo"}]],
     "got": [["get_weather", {"city": "Oslo"}]], "valid": True, "correct": True, "reply": ""},
    {"request": "Weather in <b>Bergen</b>?", "expected": [["get_weather", {"city": "Bergen"}]],
     "got": [["get_weather", {"city": "Paris"}]], "valid": True, "correct": False, "reply": ""},
    {"request": "Tell me a joke", "expected": [], "got": [], "valid": False, "correct": False,
     "reply": "Why did the chicken"},
]  # fmt: skip


def test_misses_first_then_every_answer(app, signed_in):
    client, user = signed_in()
    run_id = make_run(
        app, user, "r", "sft_toolbench", stage="done",
        evaluation={"eval_rows": 3, "tool_call_accuracy": 0.33, "valid_call_rate": 0.67,
                    "right_tool_rate": 1.0, "model": "run1-Q4_K_M.gguf"},
    )  # fmt: skip
    with app.app_context():
        folder = run_dir(user.id, run_id)
    folder.mkdir(parents=True)
    (folder / EVAL_ITEMS_FILE).write_text("".join(json.dumps(item) + "\n" for item in ITEMS))

    page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    section = page.split('id="held-out-answers"', 1)[1]
    assert "1 of 3 correct" in section and "Misses only" in section
    assert (
        "Oslo?" not in section and "&lt;b&gt;Bergen&lt;/b&gt;" in section and "Why did the chicken" in section
    )
    assert "valid, wrong" in section and "invalid" in section
    every = (
        client.get(f"/runs/{run_id}?answers=all").get_data(as_text=True).split('id="held-out-answers"', 1)[1]
    )
    assert "Weather in Oslo?" in every and "All 3" in every

    mallory, _ = signed_in("mallory@example.com")
    assert mallory.get(f"/runs/{run_id}").status_code == 404


def test_no_section_before_the_evaluation_or_without_its_file(app, signed_in):
    client, user = signed_in()
    run_id = make_run(app, user, "r", "sft_toolbench", stage="training")
    assert "Held-out answers" not in client.get(f"/runs/{run_id}").get_data(as_text=True)
    figures = {
        "eval_rows": 1,
        "tool_call_accuracy": 1.0,
        "valid_call_rate": 1.0,
        "right_tool_rate": 1.0,
        "model": "m",
    }
    evaluated = make_run(app, user, "e", "sft_toolbench", stage="done", evaluation=figures)
    assert client.get(f"/runs/{evaluated}").status_code == 200  # an older run without the file
