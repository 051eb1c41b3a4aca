"""A config's `tools` are offered in every row that offers none of its own, so they lengthen those rows:
the max-length warning counts them from the dataset's stored figures, with no row read again."""

from __future__ import annotations

from app.configs.linter import DatasetFacts, LintContext, lint
from app.configs.templates import TEMPLATES_BY_KEY
from app.datasets.stats import adjusted_stats, dataset_stats, offered_tools_tokens, row_lengths
from jobs.training.data import with_config_tools
from tests.training.test_pipeline import WEATHER, sft_rows

# A tool whose schema alone is a few hundred tokens: its description and a dozen documented fields.
ORDER = {
    "type": "function",
    "function": {
        "name": "place_order",
        "description": "Place an order for one of the catalogue's products, delivered to an address. " * 4,
        "parameters": {
            "type": "object",
            "properties": {
                f"field_{i}": {"type": "string", "description": f"The order's detail number {i}, as printed."}
                for i in range(12)
            },
            "required": ["field_0"],
        },
    },
}


CUT_RULES = ("rows_over_max_length", "every_answer_cut")  # some rows cut; all of them (an error)


def bare_rows(n: int) -> list[dict]:
    return [{key: value for key, value in row.items() if key != "tools"} for row in sft_rows(n)]


def facts(rows: list[dict]) -> DatasetFacts:
    """What the app knows of a dataset of `rows`: its stored figures."""
    stats = dataset_stats(rows, "sft")
    return DatasetFacts(
        "sft",
        len(rows),
        length_bands=stats["length_buckets"],
        length_bands_without_tools=stats["length_buckets_without_tools"],
    )


def config(tools: list, max_length: int) -> dict:
    raw = TEMPLATES_BY_KEY["sft_toolbench"].build()
    raw["data"]["dataset"] = "orders"
    raw["tokenizer"]["max_length"] = max_length
    raw["tools"] = tools
    return raw


def over_max_length(raw: dict, dataset: DatasetFacts):
    report = lint(raw, LintContext(datasets={"orders": dataset}))
    return [f for f in report.findings if f.rule in CUT_RULES]


def test_the_configs_tools_count_where_training_offers_them(tmp_path):
    rows = bare_rows(40)
    tools_tokens = offered_tools_tokens([ORDER])
    longest = max(row_lengths(rows, "sft"))
    assert tools_tokens > 128 and longest < 128  # every row fits alone, none with the tools
    # What the linter adds is what the rows measure with the tools training gives them.
    with_tools = row_lengths(with_config_tools(rows, [ORDER]), "sft")
    assert with_tools == [length + tools_tokens for length in row_lengths(rows, "sft")]

    max_length = 128 + tools_tokens // 2
    assert over_max_length(config([], max_length), facts(rows)) == []
    (finding,) = over_max_length(config([ORDER], max_length), facts(rows))
    assert f"About 40 of the dataset's 40 rows (all) are longer than {max_length} tokens" in finding.message
    assert (
        f"with the config's tools ({tools_tokens:,} tokens) in the rows that offer none of their own"
        in finding.message
    )
    fits = int(finding.message.split("A max length of ")[1].split(" fits")[0].replace(",", ""))
    assert fits >= max(with_tools)
    assert over_max_length(config([ORDER], fits), facts(rows)) == []


def test_rows_with_their_own_tools_keep_them_and_are_not_counted_again():
    rows = sft_rows(40)  # each offers get_weather: the config's tools are never offered
    assert facts(rows).length_bands_without_tools == {}
    max_length = 128 + offered_tools_tokens([ORDER]) // 2
    assert over_max_length(config([ORDER], max_length), facts(rows)) == []
    # Half the rows bare: about half are cut.
    mixed = sft_rows(20) + bare_rows(20)
    (finding,) = over_max_length(config([ORDER], max_length), facts(mixed))
    assert "About 20 of the dataset's 40 rows (50%)" in finding.message


def test_an_edit_keeps_the_bare_rows_figures_and_old_figures_are_recounted():
    rows = sft_rows(6) + bare_rows(4)
    stats = dataset_stats(rows, "sft")
    assert sum(stats["length_buckets_without_tools"].values()) == 4
    changed = {**rows[7], "tools": [WEATHER]}  # a bare row given tools of its own
    after = rows[:7] + [changed] + rows[8:]
    adjusted = adjusted_stats(stats, [rows[7]], [changed], "sft")
    assert (
        adjusted["length_buckets_without_tools"]
        == dataset_stats(after, "sft")["length_buckets_without_tools"]
    )
    assert sum(adjusted["length_buckets_without_tools"].values()) == 3
    # Figures stored before they kept the bare rows apart: recounted in full, and the linter, meanwhile,
    # counts the rows as they are.
    before = {key: value for key, value in stats.items() if key != "length_buckets_without_tools"}
    assert adjusted_stats(before, [rows[7]], [changed], "sft") is None
    old = DatasetFacts("sft", 10, length_bands=before["length_buckets"])
    assert over_max_length(config([ORDER], 256), old) == []


def test_the_apps_lint_counts_a_stored_datasets_bare_rows_with_the_configs_tools(app, signed_in):
    from flask_login import login_user

    from app.configs.services import lint_for_user
    from app.datasets.services import store_rows
    from app.extensions import db
    from app.models import User

    _, user = signed_in()
    tools_tokens = offered_tools_tokens([ORDER])
    with app.test_request_context():
        login_user(db.session.get(User, user.id))
        store_rows(user.id, "orders", "sft", bare_rows(40), source="upload", source_format="toolsmith")
        max_length = 128 + tools_tokens // 2
        assert not [f for f in lint_for_user(config([], max_length)).findings if f.rule in CUT_RULES]
        (finding,) = [f for f in lint_for_user(config([ORDER], max_length)).findings if f.rule in CUT_RULES]
        assert "(all)" in finding.message and "with the config's tools" in finding.message
