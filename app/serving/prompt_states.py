"""Saved llama.cpp prompt states: a conversation that comes back after another one is not read again.

llama.cpp keeps one KV cache per loaded model, holding the prompt it read last. A reply whose prompt
starts the same way reuses it (each turn of one chat reads only its new tokens), but a reply to another
prompt overwrites it: go back to the first chat, or let two API clients take turns, and the whole prompt,
tool list and all, is read again (Petstore's 20 tools make 2.7k tokens: 11.5 s on two cores). This keeps
the states such a switch throws away, within a byte budget, and puts the best one back before a prompt
that starts like it.

Unlike llama-cpp-python's own `LlamaRAMCache`, a state is saved only at a switch, not after every reply
(with its logits a 2.7k-token state is ~160 MB and ~0.3 s to copy), and without the logits: llama.cpp
reads the prompt's last token again after a restore, so the saved logits are never used.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_SAVED_TOKENS = 256  # a shorter prompt is read again faster than it is saved and restored
MIN_GAIN_TOKENS = 64  # restore only when the saved state spares at least this many tokens


@dataclass(eq=False)  # told apart by identity: the token arrays do not compare to one truth value
class _Saved:
    path: str
    tokens: np.ndarray
    state: Any  # llama_cpp.LlamaState
    size: int


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    """How many leading tokens two sequences share."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    different = np.flatnonzero(a[:n] != b[:n])
    return int(different[0]) if len(different) else n


class PromptStates:
    """Saved states of the prompts models were switched away from, oldest evicted first."""

    def __init__(self, capacity_bytes: int):
        self.capacity_bytes = capacity_bytes
        self._saved: list[_Saved] = []  # oldest first
        self._lock = threading.Lock()
        self.saves = 0
        self.restores = 0

    @property
    def size(self) -> int:
        with self._lock:
            return sum(item.size for item in self._saved)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._saved)

    def prepare(self, path: str, llama: Any, prompt: list[int]) -> int:
        """Before `llama` reads `prompt` (its lock held): save what the prompt would overwrite when that
        is worth keeping, and restore the saved state that shares the most of the prompt when it beats
        what the model holds now. Returns how many prompt tokens the model then already holds."""
        wanted = np.asarray(prompt, dtype=np.intc)
        current = np.asarray(llama.input_ids[: llama.n_tokens], dtype=np.intc)  # what its KV cache holds
        kept = common_prefix(current, wanted)
        if len(current) - kept >= MIN_SAVED_TOKENS:
            self._save(path, llama, current)
        best, shared = self._best(path, wanted)
        if best is not None and shared >= kept + MIN_GAIN_TOKENS:
            llama.load_state(best.state)
            self.restores += 1
            return shared
        return kept

    def forget(self, path: str) -> None:
        """A model was unloaded: its states are of no use any more."""
        with self._lock:
            self._saved = [item for item in self._saved if item.path != path]

    def _save(self, path: str, llama: Any, tokens: np.ndarray) -> None:
        state = llama.save_state()
        state.scores = state.scores[-1:].copy()  # see the module docstring: the logits are never read
        size = int(state.llama_state_size) + state.scores.nbytes + tokens.nbytes
        if size > self.capacity_bytes:
            return
        with self._lock:
            # A saved prompt this one extends (an earlier turn of the same chat) is superseded by it.
            self._saved = [
                item
                for item in self._saved
                if not (item.path == path and common_prefix(item.tokens, tokens) == len(item.tokens))
            ]
            self._saved.append(_Saved(path, tokens.copy(), state, size))
            while sum(item.size for item in self._saved) > self.capacity_bytes:
                self._saved.pop(0)
            self.saves += 1

    def _best(self, path: str, wanted: np.ndarray) -> tuple[_Saved | None, int]:
        with self._lock:
            best, shared = None, 0
            for item in self._saved:
                if item.path == path and (n := common_prefix(item.tokens, wanted)) > shared:
                    best, shared = item, n
            if best is not None:  # the most recently useful state is the last to go
                self._saved.remove(best)
                self._saved.append(best)
            return best, shared
