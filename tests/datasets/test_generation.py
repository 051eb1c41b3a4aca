"""Generating datasets from OpenAPI specs: every call valid, varied wording, a held-out eval split, DPO."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import pytest

from app.datasets.generation import REJECTION_KINDS, GenerationOptions, canonical, generate_dataset
from app.openapi import NormalisedSpec, check_tool_call, spec_tools
from tests.openapi.conftest import ALL_FIXTURES, PETSTORE_V2, WEBHOOK, fixture_spec

WITH_OPERATIONS = [name for name in ALL_FIXTURES if name != WEBHOOK]
_SPECS: dict[str, NormalisedSpec] = {}


def spec_of(name: str) -> NormalisedSpec:
    if name not in _SPECS:
        _SPECS[name] = fixture_spec(name)
    return _SPECS[name]


def generate(name: str, **options):
    return generate_dataset(spec_of(name), GenerationOptions(**options))


def user_text(row: dict) -> str:
    return (row.get("messages") or row["prompt"])[0]["content"]


def answer(row: dict) -> dict:
    return row["messages"][1] if "messages" in row else row["chosen"][0]


def the_call(message: dict) -> dict | None:
    calls = message.get("tool_calls")
    return calls[0]["function"] if calls else None


def failed_checks(spec: NormalisedSpec, call: dict) -> list[str]:
    return [check.name for check in check_tool_call(spec, call["name"], call["arguments"]) if not check.ok]


def leaves(value):
    """Every scalar inside an argument value (booleans are said as yes/no/true/false, so left out)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    elif not isinstance(value, bool) and value is not None:
        yield value


@pytest.mark.parametrize("name", WITH_OPERATIONS)
def test_every_generated_call_passes_the_spec_check_and_says_its_values(name):
    spec = spec_of(name)
    dataset = generate(name, samples_per_operation=20, seed=1)
    assert dataset.rows and dataset.message
    tools = spec_tools(spec)
    called = Counter()
    for row in dataset.rows:
        assert set(row) == {"messages", "tools", "split", "meta"}
        assert set(row["meta"]) == {"operation", "template", "values"}
        assert row["tools"] == tools and row["split"] in ("train", "eval")
        user, assistant = row["messages"]
        assert user["role"] == "user" and user["content"].strip()
        assert assistant["role"] == "assistant"
        call = the_call(assistant)
        if call is None:
            continue
        assert assistant["content"] == "" and assistant["tool_calls"][0]["type"] == "function"
        assert isinstance(call["arguments"], dict)
        assert failed_checks(spec, call) == [], (user["content"], call)
        assert row["meta"]["operation"] == call["name"]
        assert row["meta"]["values"] == canonical(call["arguments"])
        for value in leaves(call["arguments"]):  # what the call holds, the request says
            assert str(value) in user["content"], (value, user["content"])
        called[call["name"]] += 1
    assert called == {op.operation_id: 20 for op in spec.operations}


def test_petstore_requests_are_worded_many_ways():
    dataset = generate(PETSTORE_V2, samples_per_operation=20, seed=0, include_irrelevant=False)
    assert len(dataset.rows) == 400
    assert set(dataset.templates_per_operation) == {op.operation_id for op in spec_of(PETSTORE_V2).operations}
    assert min(dataset.templates_per_operation.values()) >= 5
    texts = [user_text(row).lower() for row in dataset.rows]
    assert len(set(texts)) >= 0.9 * len(texts)
    by_status = [text for row, text in zip(dataset.rows, texts, strict=True)
                 if row["meta"]["operation"] == "findPetsByStatus"]  # fmt: skip
    assert any(word in text for text in by_status for word in ("available", "pending", "sold"))
    openings = Counter(text.split(" ", 1)[0] for text in texts)
    assert len(openings) >= 15 and openings.most_common(1)[0][1] < 0.25 * len(texts)


def test_eval_rows_hold_out_phrasings_and_values_per_operation():
    dataset = generate(PETSTORE_V2, samples_per_operation=40, seed=5)
    assert dataset.eval_count == sum(row["split"] == "eval" for row in dataset.rows) > 0
    assert dataset.train_count + dataset.eval_count == len(dataset.rows)
    templates = defaultdict(lambda: {"train": set(), "eval": set()})
    pairs = defaultdict(lambda: {"train": set(), "eval": set()})
    values = defaultdict(lambda: {"train": set(), "eval": set()})
    for row in dataset.rows:
        meta, split = row["meta"], row["split"]
        templates[meta["operation"]][split].add(meta["template"])
        pairs[meta["operation"]][split].add((meta["template"], meta["values"]))
        values[meta["operation"]][split].add(meta["values"])
    for operation, seen in templates.items():
        assert seen["eval"], operation
        assert not seen["eval"] & seen["train"], operation
        assert not pairs[operation]["eval"] & pairs[operation]["train"], operation
    # where values vary enough, eval also asks for combinations training never saw
    for operation in ("getPetById", "addPet", "getOrderById", "loginUser", "updateUser", "placeOrder"):
        assert not values[operation]["eval"] & values[operation]["train"], operation
    texts = Counter(user_text(row).lower() for row in dataset.rows)
    assert texts.most_common(1)[0][1] == 1  # no request appears twice, whichever side it is on


def test_no_eval_rows_when_the_fraction_is_zero():
    dataset = generate(PETSTORE_V2, samples_per_operation=5, eval_fraction=0.0)
    assert dataset.eval_count == 0 and {row["split"] for row in dataset.rows} == {"train"}


def test_the_same_seed_gives_the_same_dataset_and_another_seed_another():
    first = generate(PETSTORE_V2, samples_per_operation=10, seed=11)
    again = generate(PETSTORE_V2, samples_per_operation=10, seed=11)
    other = generate(PETSTORE_V2, samples_per_operation=10, seed=12)
    dump = [json.dumps(row, sort_keys=True) for row in first.rows]
    assert dump == [json.dumps(row, sort_keys=True) for row in again.rows]
    assert dump != [json.dumps(row, sort_keys=True) for row in other.rows]
    assert {user_text(row) for row in first.rows} != {user_text(row) for row in other.rows}


def test_requests_no_tool_fits_get_a_plain_reply_and_no_call():
    dataset = generate(PETSTORE_V2, samples_per_operation=20, seed=2)
    irrelevant = [row for row in dataset.rows if row["meta"]["operation"] is None]
    assert 0.07 * len(dataset.rows) <= len(irrelevant) <= 0.13 * len(dataset.rows)
    for row in irrelevant:
        reply = row["messages"][1]
        assert "tool_calls" not in reply and len(reply["content"]) > 20
        assert row["meta"]["template"].startswith("irrelevant:") and row["meta"]["values"] == "null"
    assert {row["split"] for row in irrelevant} == {"train", "eval"}
    quiet = generate(PETSTORE_V2, samples_per_operation=20, seed=2, include_irrelevant=False)
    assert all(the_call(row["messages"][1]) for row in quiet.rows)
    assert dataset.stats()["irrelevant"] == len(irrelevant)


@pytest.mark.parametrize("name", WITH_OPERATIONS)
def test_dpo_rejected_calls_are_really_wrong(name):
    spec = spec_of(name)
    dataset = generate(name, samples_per_operation=12, seed=4, dpo=True)
    assert dataset.rows
    for row in dataset.rows:
        assert set(row) == {"prompt", "chosen", "rejected", "tools", "split", "meta"}
        assert [message["role"] for message in row["prompt"]] == ["user"]
        chosen, rejected = the_call(row["chosen"][0]), the_call(row["rejected"][0])
        kind = row["meta"]["rejection"]
        assert rejected is not None
        if chosen is None:
            assert kind == "unneeded_call"
            continue
        assert failed_checks(spec, chosen) == []
        assert kind in REJECTION_KINDS
        if kind == "wrong_operation":
            assert rejected["name"] != chosen["name"]
        else:
            assert rejected["name"] == chosen["name"] and failed_checks(spec, rejected), (kind, rejected)


def test_dpo_on_petstore_covers_every_kind_of_mistake():
    dataset = generate(PETSTORE_V2, samples_per_operation=10, seed=0, dpo=True)
    kinds = Counter(row["meta"]["rejection"] for row in dataset.rows)
    assert set(REJECTION_KINDS) <= set(kinds)
    assert min(kinds[kind] for kind in REJECTION_KINDS) >= 0.1 * len(dataset.rows)
    assert dataset.stats()["rejections"] == dict(sorted(kinds.items()))


def test_a_spec_without_operations_gives_no_rows_and_says_why():
    dataset = generate(WEBHOOK)
    assert dataset.rows == [] and dataset.train_count == dataset.eval_count == 0
    assert "no operations" in dataset.message


def test_petstore_3000_rows_with_progress_per_operation():
    reports: list[tuple[int, int]] = []
    dataset = generate_dataset(
        spec_of(PETSTORE_V2),
        GenerationOptions(samples_per_operation=150),
        progress=lambda *a: reports.append(a),
    )
    with_call = [row for row in dataset.rows if the_call(row["messages"][1])]
    assert len(with_call) == 3000 and not dataset.shortfalls
    assert reports == [(done, 20) for done in range(1, 21)]
    assert len({user_text(row).lower() for row in dataset.rows}) == len(dataset.rows)


def test_rows_can_offer_a_few_tools_including_the_called_ones():
    from app.datasets.generation import GenerationOptions, generate_dataset

    spec = _petstore_for_subset_test()
    for dpo in (False, True):
        result = generate_dataset(
            spec, GenerationOptions(samples_per_operation=5, seed=3, dpo=dpo, tools_per_row=4)
        )
        for row in result.rows:
            offered = {t["function"]["name"] for t in row["tools"]}
            messages = [*row.get("messages", []), *row.get("chosen", []), *row.get("rejected", [])]
            called = {c["function"]["name"] for m in messages for c in m.get("tool_calls") or []}
            assert called <= offered and len(offered) == max(4, len(called))


def _petstore_for_subset_test():
    from pathlib import Path

    from app.openapi.normalise import normalise
    from app.openapi.parsing import load_document

    path = (
        Path(__file__).resolve().parents[2].parent
        / "shared"
        / "fixtures"
        / "openapi"
        / "petstore-v2.swagger2.0.yaml"
    )
    return normalise(load_document(path.read_bytes(), path.name))


def test_a_pattern_that_repeats_nothing_gives_up_quickly_instead_of_hanging():
    import random

    from app.datasets.generation import _from_pattern

    # 10^6 steps that write nothing: the old walk took them all (a third level took hours) and drew "b".
    assert _from_pattern(r"^(?:(?:a{0}){999}){999}b$", random.Random(1)) is None
    value = _from_pattern(r"^[a-z]{3}-[0-9]{2,4}$", random.Random(1))
    assert value is not None and value[3] == "-"
