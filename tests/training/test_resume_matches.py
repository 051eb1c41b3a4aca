"""A run cancelled and resumed trains what the uninterrupted run trains: the same batches in the same
order past the first epoch, and early stopping's patience carried over. Also two smaller fixes found by
the same review: DPO answers end at the end-of-turn token once, and rows truncation empties are named."""

from __future__ import annotations

import logging

import torch

from app.configs.schema import TrainingConfigSpec
from app.training.files import last_checkpoint
from jobs.training.data import Splits
from jobs.training.trainer import TrainingHooks, train
from tests.training.test_pipeline import sft_rows


def config(**training) -> TrainingConfigSpec:
    return TrainingConfigSpec.model_validate(
        {
            "model": {"name": "tiny", "torch_dtype": "float32"},
            "tokenizer": {"max_length": 256},
            "training": {"method": "sft", "batch_size": 4, "warmup_ratio": 0.0, **training},
            "logging": {"logging_steps": 1, "eval_steps": 2},
            "export": {"quantization_types": []},
        }
    )


def rows_of_varied_length(n: int) -> list[dict]:
    """Rows whose lengths differ, so length grouping has something to group (and an order to get wrong)."""
    rows = sft_rows(n)
    for index, row in enumerate(rows):
        question = row["messages"][0]
        row["messages"][0] = {**question, "content": question["content"] + " please" * (index % 5)}
    return rows


def cancelled_then_resumed(model, folder, settings, splits, cancel_at: int) -> tuple[list, object]:
    steps = {"seen": 0}

    def stop() -> bool:
        steps["seen"] += 1
        return steps["seen"] == cancel_at

    logs: list = []
    stopped = train(model, folder, settings, splits, TrainingHooks(on_log=logs.append, should_stop=stop))
    assert stopped.stopped and stopped.global_step == cancel_at
    checkpoint = str(last_checkpoint(folder))
    hooks = TrainingHooks(on_log=logs.append)
    resumed = train(model, folder, settings, splits, hooks, resume_from=checkpoint)
    return logs, resumed


def test_the_length_grouped_order_of_an_epoch_does_not_depend_on_what_ran_before():
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from jobs.training.sampling import epoch_seeded

    lengths = [(i * 37) % 50 + 1 for i in range(64)]
    sampler = epoch_seeded(LengthGroupedSampler(8, lengths=lengths), seed=42)
    orders = {}
    for epoch, noise in ((0, 0), (1, 0), (1, 5), (0, 9)):
        torch.rand(noise)  # the global RNG moved on (a resumed run's is wherever the seed left it)
        sampler.set_epoch(epoch)
        orders.setdefault(epoch, []).append(list(sampler))
    assert orders[0][0] == orders[0][1] and orders[1][0] == orders[1][1]
    assert orders[0][0] != orders[1][0] and sorted(orders[1][0]) == list(range(64))
    plain = object()
    assert epoch_seeded(plain, 42) is plain  # other samplers are left as they are


def test_a_run_resumed_in_its_second_epoch_matches_the_uninterrupted_one(tiny_model, tmp_path):
    """16 rows in batches of 4: 4 steps an epoch. Cancelled at step 6, inside epoch 2, the resumed run
    used to train epoch 1's order again there (and skip what it had trained): the losses parted at 6."""
    settings = config(max_steps=10, learning_rate=5e-3)
    splits = Splits(train=rows_of_varied_length(16), eval=[])
    whole: list = []
    train(tiny_model, tmp_path / "whole", settings, splits, TrainingHooks(on_log=whole.append))
    parts, _ = cancelled_then_resumed(tiny_model, tmp_path / "parts", settings, splits, cancel_at=6)

    def losses(logs):
        return {r.step: r.loss for r in logs if r.loss is not None}

    expected, got = losses(whole), losses(parts)
    assert set(expected) == set(range(1, 11)) and set(got) >= set(range(7, 11))
    for step in range(1, 11):
        assert abs(expected[step] - got[step]) < 1e-4, (step, expected[step], got[step])


def test_a_resumed_run_keeps_early_stoppings_patience_count(tiny_model, tmp_path):
    """A learning rate of 0: no evaluation improves on the first (step 2), so a patience of 3 stops the
    run at step 8. Cancelled at step 5 (two misses counted), the resumed run used to count from zero
    again, train on to step 10, and then say it had not stopped early."""
    settings = config(max_steps=20, learning_rate=0.0, early_stopping_patience=3)
    splits = Splits(train=sft_rows(16), eval=sft_rows(4))
    whole = train(tiny_model, tmp_path / "whole", settings, splits, TrainingHooks())
    assert whole.global_step == 8 and whole.best.stopped_early
    _, resumed = cancelled_then_resumed(tiny_model, tmp_path / "parts", settings, splits, cancel_at=5)
    assert resumed.global_step == 8 and not resumed.stopped
    assert (resumed.best.step, resumed.best.stopped_early) == (2, True)


def test_dpo_answers_end_at_the_end_of_turn_token_once(tiny_model):
    from transformers import AutoTokenizer

    from jobs.training.data import render_dpo
    from tests.training.test_pipeline import dpo_rows

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    for example in render_dpo(dpo_rows()[:3], tokenizer):
        for answer in (example["chosen"], example["rejected"]):
            assert answer.endswith(tokenizer.eos_token) and answer.count(tokenizer.eos_token) == 1


def test_rows_truncation_leaves_without_an_answer_are_named_in_the_log(tiny_model, tmp_path, caplog):
    rows = sft_rows(6)
    for row in rows[:2]:
        row["messages"][0] = {**row["messages"][0], "content": "Please tell me, " * 100}
    with caplog.at_level(logging.WARNING, logger="jobs.training.trainer"):
        train(tiny_model, tmp_path, config(max_steps=1), Splits(train=rows, eval=[]), TrainingHooks())
    assert "2 of 6 training rows have no answer within the max length (256 tokens" in caplog.text
