"""Dataset rows → what TRL trains on, rendered with the tool-aware template.

Rows are tokenised here, not by TRL, because their JSON does not fit Arrow: tool schemas and call
arguments differ from row to row, and `datasets` would merge them into one struct type with `null`
for every missing key, so the rendered tools and calls would no longer match what serving renders.
Tokenising from the plain Python rows keeps them exact; TRL gets `input_ids` and `assistant_masks`
(loss on assistant tokens only). DPO rows become rendered strings (`prompt`, `chosen`, `rejected`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from app.serving.chat_template import TOOL_CHAT_TEMPLATE, TRAINING_TEMPLATE

IGNORE = -100


@dataclass
class Splits:
    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]


def split_rows(
    rows: list[dict[str, Any]],
    train_split: float,
    eval_split: float,
    seed: int,
    max_samples: int | None = None,
) -> Splits:
    """Rows marked `split` keep their side (generated datasets hold eval phrasings out); the others are
    shuffled with the seed and cut by the shares a request at a time: rows asking the same request
    (`request_key`) land on one side, the side of a marked row asking it if there is one. Otherwise the
    eval loss is measured partly on requests the model trained on, and looks better than it is.

    The eval share is filled first, to within one request's rows, so a dataset of a few requests asked
    many times still holds one out (never its only request); the train share takes the next rows."""
    from app.datasets.stats import request_key

    rng = random.Random(seed)
    marked_eval = [r for r in rows if r.get("split") == "eval"]
    marked_train = [r for r in rows if r.get("split") == "train"]
    side_of = {request_key(r): "eval" for r in marked_eval} | {request_key(r): "train" for r in marked_train}
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("split") not in ("train", "eval"):
            groups.setdefault(request_key(row), []).append(row)
    total = sum(len(group) for group in groups.values())
    n_train = int(round(total * train_split))
    n_eval = min(total - n_train, int(round(total * eval_split)))
    order = list(groups.items())
    rng.shuffle(order)
    train, evaluation = list(marked_train), list(marked_eval)
    free = []
    for key, group in order:
        if side_of.get(key) == "train":
            train += group
        elif side_of.get(key) == "eval":
            evaluation += group
        else:
            free.append(group)
    taken_train = len(train) - len(marked_train)
    taken_eval = len(evaluation) - len(marked_eval)
    for index, group in enumerate(free):
        if taken_eval < n_eval and index < len(free) - 1:
            evaluation += group
            taken_eval += len(group)
        elif taken_train < n_train:
            train += group
            taken_train += len(group)
    rng.shuffle(train)
    if max_samples:
        train = train[:max_samples]
        evaluation = evaluation[: max(1, max_samples // 10)] if evaluation else evaluation
    return Splits(train, evaluation)


def with_config_tools(rows: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows, those that offer no tools given the config's `tools` (in the OpenAI shape). A row's own
    tools stay as they are. Without this a config's tools were checked by the linter and then never
    offered: rows without tools trained their calls with no schema in the prompt."""
    if not tools:
        return rows
    from app.serving.tool_schema import validate_tool_definitions

    offered, _ = validate_tool_definitions(tools)  # the linter refused the config if any were invalid
    return [row if row.get("tools") or not offered else {**row, "tools": offered} for row in rows]


@dataclass(frozen=True)
class SftLengths:
    longest: int  # the longest row before truncation, in tokens
    cut: int  # kept rows with an answer the max length cuts in the middle: its end is never trained
    whole: int  # kept rows with at least one answer that ends within the max length


def tokenize_sft(
    rows: list[dict[str, Any]], tokenizer: Any, max_length: int
) -> tuple[list[dict[str, list[int]]], SftLengths]:
    """input_ids and assistant_masks for each row (rows with nothing to learn after truncation dropped),
    and what truncation did (for the refusal when every row was cut too soon). A preference row trains
    as its prompt and chosen answer, as the linter tells the user of a preference dataset in SFT."""
    examples = []
    longest = cut = whole = 0
    for row in rows:
        messages = row.get("messages")
        if messages is None and "chosen" in row:
            messages = [*(row.get("prompt") or []), *(row.get("chosen") or [])]
        encoded = tokenizer.apply_chat_template(
            messages,
            tools=row.get("tools") or None,
            chat_template=TRAINING_TEMPLATE,
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
        )
        longest = max(longest, len(encoded["input_ids"]))
        ids = list(encoded["input_ids"])[:max_length]
        mask = list(encoded["assistant_masks"])
        if any(mask[:max_length]):
            examples.append({"input_ids": ids, "assistant_masks": mask[:max_length]})
            cut += len(mask) > max_length and bool(mask[max_length - 1] and mask[max_length])
            # An answer ends inside the kept tokens: an answer token followed by a prompt token, or
            # the row's very end.
            whole += any(
                mask[i] and (i + 1 == len(mask) or not mask[i + 1]) for i in range(min(len(mask), max_length))
            )
    return examples, SftLengths(longest, cut, whole)


def render_dpo(rows: list[dict[str, Any]], tokenizer: Any) -> list[dict[str, str]]:
    """prompt / chosen / rejected as text: the prompt with the assistant header, each answer after it."""
    examples = []
    for row in rows:
        tools = row.get("tools") or None
        prompt = tokenizer.apply_chat_template(
            row["prompt"],
            tools=tools,
            chat_template=TOOL_CHAT_TEMPLATE,
            tokenize=False,
            add_generation_prompt=True,
        )
        answers = []
        for side in ("chosen", "rejected"):
            full = tokenizer.apply_chat_template(
                row["prompt"] + row[side], tools=tools, chat_template=TOOL_CHAT_TEMPLATE, tokenize=False
            )
            answer = full[len(prompt) :] if full.startswith(prompt) else full
            # The turn ends at the end-of-turn token, as SFT trains it and serving stops on it: TRL adds
            # an EOS to an answer that does not end with one, which the template's trailing "\n" hid
            # (every answer then trained "<|im_end|>\n<|im_end|>").
            if tokenizer.eos_token and answer.rstrip().endswith(tokenizer.eos_token):
                answer = answer.rstrip()
            answers.append(answer)
        examples.append({"prompt": prompt, "chosen": answers[0], "rejected": answers[1]})
    return examples


def real_tokens(examples: list[dict[str, list[int]]]) -> int:
    return sum(len(e["input_ids"]) for e in examples)
