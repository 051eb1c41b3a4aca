"""Comparing 2 to 4 training runs: the config diff and the loss chart as pure functions, then the page
(chart, config differences, outcomes) and its refusals: wrong counts, garbage ids, another user's run."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

import pytest

from app.configs.templates import TEMPLATES_BY_KEY
from app.extensions import db
from app.models import LLMModel, RunMetric, TrainingRun
from app.training.compare import (
    MISSING,
    CompareError,
    config_rows,
    flatten_config,
    format_duration,
    parse_run_ids,
    summarise_metrics,
)
from app.training.compare_chart import RunSeries, compare_loss_chart_svg, series_colour

# --- pure functions ---------------------------------------------------------------------------------


def test_flatten_config_gives_dotted_keys_and_keeps_lists_whole():
    config = {"seed": 42, "training": {"learning_rate": 2e-4, "lora": {"r": 8}}, "tools": [], "extra": {}}
    assert flatten_config(config) == {
        "seed": 42,
        "training.learning_rate": 2e-4,
        "training.lora.r": 8,
        "tools": [],
        "extra": {},
    }


def test_config_rows_show_only_what_differs_unless_asked():
    a = {"training": {"learning_rate": 2e-4, "num_epochs": 2, "method": "sft"}, "seed": 1, "flag": True}
    b = {"training": {"learning_rate": 1e-4, "num_epochs": 2.0, "method": "sft"}, "seed": 1, "flag": 1}
    c = {
        "training": {"learning_rate": 2e-4, "num_epochs": 2, "method": "sft"},
        "seed": 1,
        "flag": True,
        "new": 5,
    }

    differing = config_rows([a, b, c])
    assert [r.key for r in differing] == ["flag", "new", "training.learning_rate"]  # 2 == 2.0, True != 1
    by_key = {r.key: r for r in differing}
    assert by_key["new"].values == (MISSING, MISSING, 5)
    assert by_key["new"].shown == ("—", "—", "5")
    assert by_key["training.learning_rate"].shown == ("0.0002", "0.0001", "0.0002")
    assert by_key["flag"].shown == ("true", "1", "true")

    everything = config_rows([a, b, c], only_differences=False)
    assert [r.key for r in everything] == [
        "flag",
        "new",
        "seed",
        "training.learning_rate",
        "training.method",
        "training.num_epochs",
    ]
    assert not {r.key: r for r in everything}["seed"].differs
    assert config_rows([a, dict(a)]) == []


def test_parse_run_ids_counts_duplicates_once_and_explains_refusals():
    assert parse_run_ids(["7", " 3 ", "7"]) == [7, 3]
    assert parse_run_ids(["1", "2", "3", "4", "4"]) == [1, 2, 3, 4]
    for values, message in (
        ([], "you picked no run"),
        (["5"], "you picked 1 run"),
        (["5", "5"], "you picked 1 run"),
        (["1", "2", "3", "4", "5"], "at most 4 runs"),
        (["1", "abc"], "“abc” is not a run id"),
        (["1", "2.5"], "“2.5” is not a run id"),
        (["1", "-2"], "is not a run id"),
        (["1", ""], "is not a run id"),
        (["1", "99999999999999999999999"], "is not a run id"),
        (["1", "9" * 5000], "is not a run id"),
    ):
        with pytest.raises(CompareError, match=message):
            parse_run_ids(values)


def test_metric_summary_and_duration():
    points = [
        {"step": 10, "loss": 2.0, "eval_loss": None, "tokens_per_second": 100.0},
        {"step": 20, "loss": 1.5, "eval_loss": 1.8, "tokens_per_second": 300.0},
        {"step": 20, "loss": None, "eval_loss": 1.7, "tokens_per_second": None},
    ]
    summary = summarise_metrics(points)
    assert (summary.final_loss, summary.last_eval_loss, summary.mean_tokens_per_second) == (1.5, 1.7, 200.0)
    assert summarise_metrics([]).final_loss is None

    start = datetime(2025, 1, 1, 12, 0, 0)
    assert format_duration(start, start + timedelta(seconds=42)) == "42 s"
    assert format_duration(start, start + timedelta(minutes=12, seconds=30)) == "12 min 30 s"
    assert format_duration(start, start + timedelta(hours=1, minutes=2)) == "1 h 02 min"
    assert format_duration(start, None) == "—" and format_duration(None, start) == "—"


def _paths(svg: str) -> list[ET.Element]:
    return [e for e in ET.fromstring(svg).iter() if e.tag.endswith("path")]


def test_chart_draws_one_path_per_series_in_the_runs_colours():
    runs = [
        RunSeries(
            "alpha",
            [{"step": s, "loss": 3 - s / 10, "eval_loss": None} for s in (10, 20, 30)]
            + [{"step": 30, "loss": None, "eval_loss": 2.4}, {"step": 15, "loss": None, "eval_loss": 2.6}],
        ),
        RunSeries("beta", [{"step": s, "loss": 2 - s / 20, "eval_loss": None} for s in (10, 20)]),
        RunSeries("gamma (nothing logged)", []),
    ]
    svg = str(compare_loss_chart_svg(runs))
    paths = _paths(svg)  # also proves the SVG is well-formed XML
    assert [(p.get("stroke"), p.get("stroke-dasharray")) for p in paths] == [
        (series_colour(0), None),
        (series_colour(0), "5 3"),
        (series_colour(1), None),
    ]
    assert len({series_colour(i) for i in range(4)}) == 4
    # The eval path goes through its points in step order (15 before 30).
    assert paths[1].get("d").count("L") == 1
    assert "no loss logged" in svg and "alpha" in svg and "beta" in svg


def test_chart_escapes_run_names_and_handles_no_metrics_at_all():
    evil = '<script>alert("x")</script> & "quotes"\x01'
    svg = str(compare_loss_chart_svg([RunSeries(evil, [{"step": 1, "loss": 1.0}]), RunSeries("b", [])]))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&amp;" in svg
    ET.fromstring(svg)
    assert len(_paths(svg)) == 1 and "<circle" in svg  # one point: drawn as a dot too

    empty = str(compare_loss_chart_svg([RunSeries("a", []), RunSeries("b", [{"step": 3, "loss": None}])]))
    assert "No loss logged yet" in empty and not _paths(empty)


# --- the page ---------------------------------------------------------------------------------------

START = datetime(2025, 3, 1, 9, 0, 0)


def make_run(app, user, name: str, template: str, metrics=(), **fields) -> int:
    """A run with the given template's config snapshot and RunMetric rows (step, loss, eval_loss, tok/s)."""
    with app.app_context():
        run = TrainingRun(
            owner_id=user.id,
            name=name,
            config=TEMPLATES_BY_KEY[template].build(),
            dataset_name=fields.pop("dataset_name", "weather"),
            **fields,
        )
        db.session.add(run)
        db.session.commit()
        for step, loss, eval_loss, speed in metrics:
            db.session.add(
                RunMetric(run_id=run.id, step=step, loss=loss, eval_loss=eval_loss, tokens_per_second=speed)
            )
        db.session.commit()
        return run.id


def register_model(app, user, run_id: int, name: str) -> int:
    with app.app_context():
        model = LLMModel(
            owner_id=user.id, name=name, provider="local_gguf", quantization="Q4_K_M", training_run_id=run_id
        )
        db.session.add(model)
        db.session.commit()
        db.session.get(TrainingRun, run_id).model_ids = [model.id]
        db.session.commit()
        return model.id


def two_runs(app, user) -> tuple[int, int]:
    first = make_run(
        app,
        user,
        "toolbench-r16",
        "sft_toolbench",
        metrics=[(10, 2.0, None, 100.0), (20, 1.25, None, 300.0), (20, None, 1.5, None)],
        stage="done",
        step=20,
        total_steps=20,
        started_at=START,
        finished_at=START + timedelta(minutes=12, seconds=30),
        evaluation={
            "eval_rows": 40,
            "tool_call_accuracy": 0.75,
            "valid_call_rate": 0.9,
            "right_tool_rate": 0.8,
            "model": "run1-Q4_K_M.gguf",
        },
    )
    second = make_run(
        app,
        user,
        "pc-building-r8",
        "sft_pc_building",
        metrics=[(10, 1.9, None, 50.0), (30, 0.5, None, 70.0)],
        stage="failed",
        step=30,
        total_steps=60,
        dataset_name="pc parts",
        started_at=START,
    )
    return first, second


def compare(client, *ids, **params):
    return client.get("/runs/compare", query_string={"run": [str(i) for i in ids], **params})


def test_two_runs_compare_side_by_side(app, signed_in):
    client, user = signed_in()
    first, second = two_runs(app, user)
    model_id = register_model(app, user, first, "toolbench-r16 Q4_K_M")

    index = client.get("/runs/").get_data(as_text=True)
    assert f'name="run" value="{first}"' in index and f'name="run" value="{second}"' in index
    assert 'action="/runs/compare"' in index and "Compare selected" in index

    response = compare(client, first, second)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    # The chart: train loss of both runs, eval loss of the first only.
    chart = page[page.index('<svg class="chart"') : page.index("</svg>", page.index('<svg class="chart"'))]
    assert chart.count('class="series"') == 3 and "toolbench-r16" in chart and "pc-building-r8" in chart

    config = page[page.index('id="compare-config"') :]
    for key in ("training.lora_r", "training.num_epochs", "tokenizer.max_length", "training.batch_size"):
        assert f"<code>{key}</code>" in config
    assert "training.learning_rate" not in config and "model.name" not in config  # the same in both
    counts = re.search(r"(\d+) of (\d+) keys", config)
    assert counts and int(counts.group(1)) == config.count("<code>") < int(counts.group(2))
    assert re.search(r"<code>training.lora_r</code>.*?<td[^>]*>16</td>\s*<td[^>]*>8</td>", config, re.S)

    outcomes = page[page.index('id="compare-outcomes"') : page.index('id="compare-config"')]
    assert "1.2500" in outcomes and "0.5000" in outcomes  # final train loss of each
    assert "1.5000" in outcomes  # the first's last eval loss
    assert ">200<" in outcomes and ">60<" in outcomes  # mean tokens/s
    assert "12 min 30 s" in outcomes and "20 / 20" in outcomes and "30 / 60" in outcomes
    assert "75%" in outcomes and "90%" in outcomes and "80%" in outcomes and "40 held-out rows" in outcomes
    assert "pc parts" in outcomes and "badge-failed" in outcomes
    assert f'href="/models/{model_id}"' in outcomes and "toolbench-r16 Q4_K_M" in outcomes
    assert f'href="/runs/{first}"' in outcomes and f'href="/runs/{second}"' in outcomes

    everything = compare(client, first, second, keys="all").get_data(as_text=True)
    assert "<code>training.learning_rate</code>" in everything and "Show only the differences" in everything


def test_the_same_config_twice_says_nothing_differs(app, signed_in):
    client, user = signed_in()
    a = make_run(app, user, "a", "sft_toolbench")
    b = make_run(app, user, "b", "sft_toolbench")
    page = compare(client, a, b, b).get_data(as_text=True)  # the duplicate counts once
    assert "no key differs" in page and "No loss logged yet for these runs" in page


def test_another_users_run_is_indistinguishable_from_a_missing_one(app, signed_in):
    _, alice = signed_in("alice@example.com")
    alice_run = make_run(app, alice, "alice secret run", "sft_toolbench")
    bob, bob_user = signed_in("bob@example.com")
    mine = make_run(app, bob_user, "bob run", "sft_toolbench")
    other = compare(bob, mine, alice_run)
    missing = compare(bob, mine, alice_run + 1000)
    assert other.status_code == missing.status_code == 404
    assert other.get_data() == missing.get_data()
    assert "alice secret run" not in other.get_data(as_text=True)


@pytest.mark.parametrize(
    "ids, message",
    [
        (["1"], "you picked 1 run"),
        (["1", "1"], "you picked 1 run"),
        ([], "you picked no run"),
        (["1", "2", "3", "4", "5"], "Pick at most 4 runs"),
        (["1", "abc"], "is not a run id"),
        (["1", "99999999999999999999999"], "is not a run id"),
        (["1", "-3"], "is not a run id"),
        (["1", "' OR 1=1 --"], "is not a run id"),
    ],
)
def test_wrong_picks_get_a_clear_400(app, signed_in, ids, message):
    client, user = signed_in()
    for name in ("a", "b", "c", "d", "e"):
        make_run(app, user, name, "sft_toolbench")
    response = client.get("/runs/compare", query_string={"run": ids})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page and 'class="flash flash-error"' in page and "Compare selected" in page


def test_a_failed_pick_keeps_the_ticks_on_the_way_back(app, signed_in):
    client, user = signed_in()
    a = make_run(app, user, "a", "sft_toolbench")
    make_run(app, user, "b", "sft_toolbench")
    page = compare(client, a).get_data(as_text=True)
    back = re.search(r'href="(/runs/\?run=\d+)"', page)
    assert back, page
    index = client.get(back.group(1)).get_data(as_text=True)
    assert f'value="{a}" aria-label="Compare a" checked' in index


def test_comparing_needs_a_sign_in(client):
    response = client.get("/runs/compare?run=1&run=2")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
