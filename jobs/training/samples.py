"""What the model answers while it trains: at each evaluation, and at the end, a held-out request is put
to the model being trained (greedy, a few dozen tokens) and the answer goes to the run's log.

Loss says how close the model is; a sample says what it actually does with a request (the call it makes,
or the prose it writes instead), which is what a tool-calling run is for. Decoding runs the backbone and
the LM head directly with a KV cache, not `generate`: trainers patch the model's forward for their loss
(TRL's fused head), and the backbone is what they leave alone (`compact_loss` relies on the same).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

from app.evaluations.cases import as_conversation
from app.serving.chat_template import TOOL_CHAT_TEMPLATE
from jobs.training.compact_loss import causal_lm_of, supports_compact_loss

MAX_NEW_TOKENS = 48
SAMPLES_AT_END = 2

OnSample = Callable[[int, str, str], None]  # (step, request, answer)


def greedy_answer(
    model: Any, tokenizer: Any, row: dict[str, Any], max_new_tokens: int = MAX_NEW_TOKENS
) -> str:
    """The model's greedy answer to a held-out row's request (its conversation up to the last answer)."""
    return tokenizer.decode(
        greedy_tokens(model, tokenizer, row, max_new_tokens), skip_special_tokens=True
    ).strip()


def stop_ids(tokenizer: Any) -> set[int]:
    return {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")} - {None}


def greedy_tokens(model: Any, tokenizer: Any, row: dict[str, Any], max_new_tokens: int) -> list[int]:
    import torch

    messages = as_conversation(row)["messages"]
    prompt = tokenizer.apply_chat_template(
        messages[:-1],
        tools=row.get("tools") or None,
        chat_template=TOOL_CHAT_TEMPLATE,
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
    )["input_ids"]
    causal_lm = causal_lm_of(model)
    backbone, head = causal_lm.base_model, causal_lm.get_output_embeddings()
    device = head.weight.device
    stops = stop_ids(tokenizer)
    was_training = model.training
    model.eval()
    answer: list[int] = []
    try:
        with torch.no_grad():
            out = backbone(input_ids=torch.tensor([list(prompt)], device=device), use_cache=True)
            for _ in range(max_new_tokens):
                next_id = int(head(out.last_hidden_state[:, -1]).argmax(dim=-1))
                if next_id in stops:
                    break
                answer.append(next_id)
                out = backbone(
                    input_ids=torch.tensor([[next_id]], device=device),
                    past_key_values=out.past_key_values,
                    use_cache=True,
                )
    finally:
        if was_training:
            model.train()
    return answer


def last_request(row: dict[str, Any]) -> str:
    messages = as_conversation(row)["messages"][:-1]
    user = next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), None)
    return str(user.get("content") or "") if user else ""


class SampleCallback(TrainerCallback):
    """One held-out request at each evaluation (taking turns), `SAMPLES_AT_END` at the end.

    The end skips a request already answered at the same step by the same weights (a run whose last step
    is also an evaluation step): the answer would be the same, and each costs seconds on a CPU.
    """

    def __init__(
        self, on_sample: OnSample, tokenizer: Any, rows: list[dict[str, Any]], stopped: Callable[[], bool]
    ):
        self.on_sample = on_sample
        self.tokenizer = tokenizer
        self.rows = rows[:SAMPLES_AT_END]
        self.stopped = stopped  # a cancelled run ends at once, without samples
        self.turn = 0
        self.answered: set[tuple[int, int]] = set()  # (step, index of the row)

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        if self.rows and model is not None:
            index = self.turn % len(self.rows)
            self._sample(model, state.global_step, [self.rows[index]])
            self.answered.add((state.global_step, index))
            self.turn += 1

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if not self.rows or model is None or self.stopped():
            return
        # Loading the best checkpoint at the end swaps the weights: then every answer may differ.
        reloaded = bool(getattr(args, "load_best_model_at_end", False))
        rows = [
            row
            for index, row in enumerate(self.rows)
            if reloaded or (state.global_step, index) not in self.answered
        ]
        self._sample(model, state.global_step, rows)

    def _sample(self, model: Any, step: int, rows: list[dict[str, Any]]) -> None:
        if not supports_compact_loss(model):
            return  # a head that does more than a projection: decoding it by hand would be wrong
        for row in rows:
            self.on_sample(step, last_request(row), greedy_answer(model, self.tokenizer, row))
