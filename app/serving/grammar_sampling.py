"""Grammar-constrained sampling that checks the sampled token first, as llama.cpp's own server does.

llama-cpp-python's `grammar=` masks the whole vocabulary (49k entries for SmolLM2) against the grammar
before every token: ~3 ms per token against ~7 ms to decode one with the 135M model on 2 cores, so
constrained replies ran at ~0.62x the speed of free ones. llama.cpp's common sampler
(`grammar_first = false`) instead samples a token from the unconstrained distribution, checks only
that token, and masks the whole vocabulary only when the grammar rejects it. Models mostly pick a token
the grammar allows, so the full mask runs on a few steps only.

`GrammarSampler` does that as a llama-cpp-python logits processor: it samples itself (frequency and
presence penalties, top-k, top-p, min-p, temperature: llama-cpp-python's order and defaults), and
returns logits where only the chosen token is finite, so llama.cpp's greedy sampler emits exactly that
token. The grammar state advances with the tokens llama.cpp actually decoded (`input_ids`), read at the
next call. Same replies as `grammar=` at temperature 0; figures in docs/benchmarks.md.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from app.serving.types import SamplingParams

TOP_K = 40  # llama-cpp-python's create_chat_completion defaults
MIN_P = 0.05
PENALTY_LAST_N = 64  # llama-cpp-python's last_n_tokens_size: how far back the penalties look
_TOKEN_DATA = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)


def grammar_text_of(grammar: Any) -> str:
    """The GBNF text of a `LlamaGrammar` (it only holds the text; llama.cpp parses it per sampler)."""
    if isinstance(grammar, str):
        return grammar
    text = getattr(grammar, "_grammar", None)
    if not isinstance(text, str):
        raise TypeError(f"Expected a LlamaGrammar or GBNF text, got {type(grammar).__name__}")
    return text


class GrammarSampler:
    """A logits processor for one generation: sample, check that token, mask everything only if needed.

    Use with `temperature=0` on the llama.cpp side (it then takes the one token left) and close it
    afterwards: it owns a native grammar sampler.
    """

    def __init__(self, llama: Any, grammar: Any, params: SamplingParams):
        import llama_cpp

        self._lib = llama_cpp
        self._sampler = llama_cpp.llama_sampler_init_grammar(
            llama._model.vocab, grammar_text_of(grammar).encode(), b"root"
        )
        if not self._sampler:
            raise ValueError("llama.cpp rejected the grammar")
        self._params = params
        self._rng = np.random.default_rng(params.seed)
        self._seen: int | None = None
        self._prompt_length = 0
        self._all = _token_data(llama.n_vocab())
        self._all_array = _token_data_array(self._all)
        self._one = _token_data(1)
        self._one_array = _token_data_array(self._one)
        self.steps = 0
        self.full_masks = 0  # steps where the sampled token broke the grammar

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self._seen is None:
            # The prompt: none of it goes through the grammar or counts for the penalties.
            self._seen = self._prompt_length = len(input_ids)
        for token in input_ids[self._seen :]:
            self._lib.llama_sampler_accept(self._sampler, int(token))
        self._seen = len(input_ids)
        self.steps += 1
        scores = self._penalized(input_ids, scores)
        chosen = self._sample(scores)
        if not self._allows(chosen):
            self.full_masks += 1
            self._all["logit"] = scores
            self._lib.llama_sampler_apply(self._sampler, ctypes.byref(self._all_array))
            chosen = self._sample(self._all["logit"])
        forced = np.full_like(scores, -np.inf)
        forced[chosen] = 0.0
        return forced

    def _penalized(self, input_ids: Any, scores: Any) -> Any:
        """OpenAI's penalties over the reply's last PENALTY_LAST_N tokens: each token's logit goes down by
        frequency × its count, plus presence once it has come up at all."""
        frequency, presence = self._params.frequency_penalty, self._params.presence_penalty
        recent = np.asarray(input_ids[self._prompt_length :][-PENALTY_LAST_N:], dtype=np.intp)
        if not (frequency or presence) or not len(recent):
            return scores
        tokens, counts = np.unique(recent, return_counts=True)
        penalized = np.array(scores, dtype=np.float32)
        penalized[tokens] -= counts * frequency + presence
        return penalized

    def _allows(self, token: int) -> bool:
        self._one["id"] = token
        self._one["logit"] = 0.0
        self._lib.llama_sampler_apply(self._sampler, ctypes.byref(self._one_array))
        return bool(np.isfinite(self._one["logit"][0]))

    def _sample(self, logits: Any) -> int:
        """One token id: greedy at temperature 0, else top-k → top-p → min-p → temperature."""
        if self._params.temperature <= 0:
            return int(np.argmax(logits))
        k = min(TOP_K, len(logits))
        candidates = np.argpartition(logits, -k)[-k:]
        candidates = candidates[np.isfinite(logits[candidates])]
        if len(candidates) == 0:  # the grammar allows nothing: let llama.cpp end the reply
            return int(np.argmax(logits))
        candidates = candidates[np.argsort(-logits[candidates])]
        values = logits[candidates].astype(np.float64)
        probs = _softmax(values)
        keep = int(np.searchsorted(np.cumsum(probs), self._params.top_p) + 1)
        candidates, values, probs = candidates[:keep], values[:keep], probs[:keep]
        kept = probs >= MIN_P * probs[0]
        candidates, values = candidates[kept], values[kept]
        probs = _softmax(values / self._params.temperature)
        return int(self._rng.choice(candidates, p=probs))

    def close(self) -> None:
        if self._sampler:
            self._lib.llama_sampler_free(self._sampler)
            self._sampler = None


def _softmax(values: Any) -> Any:
    shifted = np.exp(values - values.max())
    return shifted / shifted.sum()


def _token_data(n: int) -> Any:
    """A numpy array laid out like llama.cpp's `llama_token_data[n]`, ids 0..n-1."""
    data = np.zeros(n, dtype=_TOKEN_DATA)
    data["id"] = np.arange(n)
    return data


def _token_data_array(data: Any) -> Any:
    import llama_cpp

    pointer = data.ctypes.data_as(llama_cpp.llama_token_data_p)
    return llama_cpp.llama_token_data_array(data=pointer, size=len(data), selected=-1, sorted=False)
