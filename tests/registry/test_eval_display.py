"""A trained model's evaluation reads as the run page reads it (labels, percentages, whole counts) on
its card and its page, and its page links back to the run that trained it, for the run's owner only."""

from __future__ import annotations

from app.extensions import db
from app.models import LLMModel, TrainingRun
from app.registry.evaluation_display import evaluation_summary
from tests.training.test_compare_runs import make_run, register_model

EXPORT_EVALUATION = {
    "eval_rows": 42,
    "tool_call_accuracy": 0.0952,
    "right_tool_rate": 0.3421,
    "valid_call_rate": 0.1234,
    "eval_loss": 0.51234,
    "model": "run1-Q4_K_M.gguf",
}


def trained_model(app, user, evaluation: dict | None = EXPORT_EVALUATION) -> tuple[int, int]:
    run_id = make_run(app, user, "weather-r16", "sft_toolbench", stage="done", evaluation=evaluation)
    model_id = register_model(app, user, run_id, "weather-r16 Q4_K_M")
    with app.app_context():
        db.session.get(LLMModel, model_id).evaluation_metrics = evaluation
        db.session.commit()
    return run_id, model_id


def test_the_card_shows_the_run_pages_labels_and_percentages(app, signed_in):
    client, user = signed_in()
    trained_model(app, user)
    page = client.get("/models/").get_data(as_text=True)
    assert "Evaluation on 42 held-out rows" in page
    assert "tool-call accuracy <strong>10%</strong>" in page
    assert "right tool <strong>34%</strong>" in page and "valid calls <strong>12%</strong>" in page
    assert "eval loss <strong>0.5123</strong>" in page
    assert "tool_call_accuracy" not in page and "0.0952" not in page


def test_the_model_page_lists_the_evaluation_and_links_to_its_run(app, signed_in):
    client, user = signed_in()
    run_id, model_id = trained_model(app, user)
    page = client.get(f"/models/{model_id}").get_data(as_text=True)
    assert "<dt>Held-out rows</dt><dd>42" in page and "run1-Q4_K_M.gguf" in page
    assert "<dt>Tool-call accuracy</dt><dd>10%</dd>" in page
    assert "<dt>Right tool</dt><dd>34%</dd>" in page
    assert '"tool_call_accuracy"' not in page and "0.3421" not in page  # no raw JSON block
    assert f'id="training-run-link" href="/runs/{run_id}">weather-r16</a>' in page
    assert client.get(f"/runs/{run_id}").status_code == 200


def test_no_run_link_for_someone_elses_run_or_a_deleted_one(app, signed_in):
    alice, alice_user = signed_in("alice@example.com")
    run_id, model_id = trained_model(app, alice_user)
    with app.app_context():  # as when an administrator makes the model global
        db.session.get(LLMModel, model_id).owner_id = None
        db.session.commit()
    bob, _ = signed_in("bob@example.com")
    seen_by_bob = bob.get(f"/models/{model_id}").get_data(as_text=True)
    assert "Tool-call accuracy" in seen_by_bob and "training-run-link" not in seen_by_bob

    assert "training-run-link" in alice.get(f"/models/{model_id}").get_data(as_text=True)
    with app.app_context():
        db.session.delete(db.session.get(TrainingRun, run_id))
        db.session.commit()
    assert "training-run-link" not in alice.get(f"/models/{model_id}").get_data(as_text=True)


def test_measures_typed_in_by_hand_read_as_rates_counts_and_words():
    summary = evaluation_summary({"f1": 0.8234, "cases": 1200, "bfcl_loss": 0.25, "note": "v2", "ok": True})
    assert summary.held_out_rows is None
    assert summary.measures == [
        ("f1", "82%"),
        ("cases", "1,200"),
        ("bfcl loss", "0.25"),
        ("note", "v2"),
        ("ok", "yes"),
    ]
    assert not evaluation_summary(None) and not evaluation_summary({})
