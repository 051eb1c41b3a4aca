"""Local GGUF models on llama.cpp (llama-cpp-python), held in memory by one `LocalModelHolder`.

Like llama-cpp-python's own server: a bounded LRU cache of loaded `Llama` instances, `close()` on
eviction (frees the native memory at once instead of waiting for the garbage collector), and a lock
per model because a `Llama` instance is not safe to use from two threads at a time.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.serving.grammar_sampling import GrammarSampler
from app.serving.prompt_states import MIN_SAVED_TOKENS, PromptStates, common_prefix
from app.serving.tool_calls import TOOL_CALL_CLOSE, TOOL_CALL_OPEN, fold_tools_into_messages
from app.serving.types import ChatResult, SamplingParams

DEFAULT_SAMPLING = SamplingParams()
LOCK_POLL_SECONDS = 0.25  # how often a reply queued behind another checks its stop button


class _StoppedWaiting(Exception):
    """The reply was stopped while it waited for the model (another reply had it)."""


@dataclass
class _Loaded:
    llama: Any
    lock: threading.Lock
    formatter: Any = None  # the model's chat template, compiled once (for prompt token counts)
    renders_tools: bool = False  # the template itself lays out `tools` (a Hermes / Qwen style template)
    prompts_match: bool = True  # our rendering of a prompt gives the tokens llama.cpp read (prompt_states)
    closed: bool = False  # set under `lock` when evicted or unloaded: whoever waited must load it again
    control_texts: tuple[str, ...] = ()  # the vocabulary's control tokens as text ("<|im_end|>", ...)


class LocalModelHolder:
    """Loads GGUF files on demand and keeps at most `max_loaded` of them in memory."""

    def __init__(
        self,
        max_loaded: int = 2,
        n_threads: int | None = None,
        n_ctx: int = 4096,
        prompt_cache_bytes: int = 512 * 1024**2,
    ):
        self.max_loaded = max(1, max_loaded)
        self.n_threads = n_threads
        self.n_ctx = n_ctx
        # States of prompts a switch to another conversation would throw away (0 bytes: none kept).
        self.prompt_states = PromptStates(prompt_cache_bytes) if prompt_cache_bytes > 0 else None
        self._models: OrderedDict[str, _Loaded] = OrderedDict()
        self._cache_lock = threading.Lock()
        # Close the models when the holder goes, or at exit at the latest: a `Llama` left to the
        # interpreter's teardown frees itself after llama_cpp's module is gone (a TypeError on stderr).
        weakref.finalize(self, _close_all, self._models)

    def loaded_paths(self) -> list[str]:
        with self._cache_lock:
            return list(self._models)

    def is_loaded(self, path: str | Path) -> bool:
        with self._cache_lock:
            return str(Path(path).resolve()) in self._models

    def _get(self, path: str | Path) -> _Loaded:
        from app.serving.llama_runtime import open_llama  # heavy native import, only where a model is served

        key = str(Path(path).resolve())
        with self._cache_lock:
            loaded = self._models.get(key)
            if loaded is not None:
                self._models.move_to_end(key)
                return loaded
            if not Path(key).is_file():
                raise FileNotFoundError(f"Model file not found: {key}")
            llama = open_llama(model_path=key, n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False)
            template = llama.metadata.get("tokenizer.chat_template") or ""
            loaded = _Loaded(
                llama=llama,
                lock=threading.Lock(),
                formatter=_chat_formatter(llama),
                renders_tools="tools" in template,
                control_texts=_control_texts(llama),
            )
            self._models[key] = loaded
            evicted = []
            while len(self._models) > self.max_loaded:
                evicted.append(self._models.popitem(last=False))
        # Closed outside the cache lock: waiting for an evicted model's reply to end must not hold up
        # every other model's requests (nor the admin page's snapshot).
        for evicted_key, evicted_model in evicted:
            self._close(evicted_key, evicted_model)
        return loaded

    @contextlib.contextmanager
    def _locked(self, path: str | Path, should_stop: Callable[[], bool] | None = None) -> Iterator[_Loaded]:
        """The model at `path`, loaded, with its lock held; never one that was closed while this
        request waited for the lock (evicted for another model, or unloaded): that one is loaded again.
        Raises `_StoppedWaiting` when `should_stop` says stop before the lock is had (polled while
        waiting, and once more on getting it, before the prompt is read)."""
        while True:
            loaded = self._get(path)
            if should_stop is None:
                loaded.lock.acquire()
            else:
                while not loaded.lock.acquire(timeout=LOCK_POLL_SECONDS):
                    if should_stop():
                        raise _StoppedWaiting
            if not loaded.closed:
                break
            loaded.lock.release()
        if should_stop is not None and should_stop():
            loaded.lock.release()
            raise _StoppedWaiting
        try:
            yield loaded
        finally:
            loaded.lock.release()

    def _close(self, key: str, loaded: _Loaded) -> None:
        with loaded.lock:  # never close a model mid-generation
            loaded.closed = True
            loaded.llama.close()
        self._forget_prompts(key)

    def unload(self, path: str | Path) -> bool:
        key = str(Path(path).resolve())
        with self._cache_lock:
            loaded = self._models.pop(key, None)
        if loaded is None:
            return False
        self._close(key, loaded)
        return True

    def _forget_prompts(self, key: str) -> None:
        if self.prompt_states is not None:
            self.prompt_states.forget(key)

    def close(self) -> None:
        for key in self.loaded_paths():
            self.unload(key)

    def snapshot(self) -> list[tuple[str, int | None]]:
        """Each loaded model's path and the prompt tokens its KV cache holds (None while it generates:
        an operator's page must not wait on a reply)."""
        with self._cache_lock:
            items = list(self._models.items())
        rows = []
        for key, loaded in items:
            if loaded.lock.acquire(blocking=False):
                try:
                    if not loaded.closed:
                        rows.append((key, int(loaded.llama.n_tokens)))
                finally:
                    loaded.lock.release()
            else:
                rows.append((key, None))
        return rows

    def held_tokens(self, path: str | Path) -> int:
        """How many prompt tokens a loaded model's KV cache holds now (0 when it is not loaded)."""
        with self._cache_lock:
            loaded = self._models.get(str(Path(path).resolve()))
        if loaded is None:
            return 0
        with loaded.lock:
            return 0 if loaded.closed else int(loaded.llama.n_tokens)

    def warm(
        self, path: str | Path, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
    ) -> int:
        """Read a conversation's prompt so far (a long tool list, mostly) before its next message comes,
        so that reply starts at once; returns how many tokens were read (0: already held, or too short
        to be worth it). Holds the model's lock meanwhile: a reply asked for at the same time waits,
        then finds the prompt read."""
        with self._locked(path) as loaded:
            if not loaded.renders_tools:
                messages, tools = fold_tools_into_messages(messages, tools)
            messages, tools = defused(messages, loaded.control_texts), defused(tools, loaded.control_texts)
            if loaded.formatter is None or not loaded.prompts_match:
                return 0
            llama = loaded.llama
            # The next prompt is this one plus a user turn: all but the generation prompt's few
            # closing tokens are its prefix.
            tokens = llama.tokenize(
                _render_prompt(loaded.formatter, messages, tools).encode(), add_bos=False, special=True
            )
            if len(tokens) >= self.n_ctx:
                return 0  # too long to answer anyway: the reply will say so
            if self.prompt_states is not None:
                held = self.prompt_states.prepare(str(Path(path).resolve()), llama, tokens)
            else:
                held = common_prefix(np.asarray(llama.input_ids[: llama.n_tokens]), np.asarray(tokens))
            if len(tokens) - held < MIN_SAVED_TOKENS:
                return 0
            llama.n_tokens = held  # `eval` drops the KV cache past this point, then reads the rest
            llama.eval(tokens[held:])
            return len(tokens) - held

    def chat(
        self,
        path: str | Path,
        messages: list[dict[str, Any]],
        params: SamplingParams = DEFAULT_SAMPLING,
        tools: list[dict[str, Any]] | None = None,
        grammar: Any = None,
    ) -> ChatResult:
        """Generate a whole reply."""
        result = None
        for item in self.stream_chat(path, messages, params, tools=tools, grammar=grammar):
            if isinstance(item, ChatResult):
                result = item
        if result is None:
            raise RuntimeError("llama.cpp produced no result")
        return result

    def stream_chat(
        self,
        path: str | Path,
        messages: list[dict[str, Any]],
        params: SamplingParams = DEFAULT_SAMPLING,
        tools: list[dict[str, Any]] | None = None,
        grammar: Any = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[str | ChatResult]:
        """Yield text pieces as llama.cpp produces them, then one final `ChatResult`.

        `should_stop` is polled between tokens; returning True ends generation early (the stop button).
        """
        self._get(path)  # loading the file is not the reply's latency (waiting for another reply is)
        started = time.perf_counter()
        first_token_at: float | None = None
        pieces: list[str] = []
        finish_reason: str | None = None
        stopped_early = False
        usage: dict[str, int] = {}
        holding = contextlib.ExitStack()  # the model's lock, released however the consumer stops
        try:
            loaded = holding.enter_context(self._locked(path, should_stop))
        except _StoppedWaiting:  # stopped while queued behind another reply: nothing was generated
            yield ChatResult(
                text="",
                prompt_tokens=0,
                completion_tokens=0,
                latency_s=time.perf_counter() - started,
                time_to_first_token_s=None,
                finish_reason="stopped",
                stopped_early=True,
            )
            return
        with holding, _grammar_sampler(loaded.llama, grammar, params) as sampler:
            if not loaded.renders_tools:
                messages, tools = fold_tools_into_messages(messages, tools)
            messages, tools = defused(messages, loaded.control_texts), defused(tools, loaded.control_texts)
            llama = loaded.llama
            prompt_tokens = llama.tokenize(
                _render_prompt(loaded.formatter, messages, tools).encode(), add_bos=False, special=True
            )
            if self.prompt_states is not None and loaded.formatter is not None and loaded.prompts_match:
                self.prompt_states.prepare(str(Path(path).resolve()), llama, prompt_tokens)
            # Under a grammar `GrammarSampler` picks each token (checking the sampled token first is
            # ~1.4x faster than llama.cpp masking the whole vocabulary every step); llama.cpp then
            # takes its pick greedily.
            stream = loaded.llama.create_chat_completion(
                messages=messages,
                tools=tools,
                temperature=0.0 if sampler else params.temperature,
                top_p=params.top_p,
                max_tokens=params.max_tokens,
                seed=params.seed,
                stop=list(params.stop) or None,
                # Under a grammar the sampler applies them itself: llama.cpp's would see only its pick.
                presence_penalty=0.0 if sampler else params.presence_penalty,
                frequency_penalty=0.0 if sampler else params.frequency_penalty,
                logits_processor=[sampler] if sampler else None,
                stream=True,
            )
            for chunk in stream:
                choice = chunk["choices"][0]
                piece = choice.get("delta", {}).get("content") or ""
                if piece:
                    if first_token_at is None:
                        first_token_at = time.perf_counter()
                    pieces.append(piece)
                    yield piece
                finish_reason = choice.get("finish_reason") or finish_reason
                if should_stop is not None and should_stop():
                    stopped_early = True
                    finish_reason = "stopped"
                    break
            text = "".join(pieces)
            # Streaming responses carry no usage: count with the model's own tokenizer (exact, not estimated).
            usage["prompt_tokens"] = len(prompt_tokens)
            usage["completion_tokens"] = len(llama.tokenize(text.encode(), add_bos=False)) if text else 0
            # The saved states are matched on this rendering of the prompt: if llama.cpp's chat handler
            # read something else (another chat format), matching would only ever save, never restore.
            read = llama.input_ids[: len(prompt_tokens)].tolist()
            loaded.prompts_match = loaded.prompts_match and read == prompt_tokens
        finished = time.perf_counter()
        yield ChatResult(
            text=text,
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            latency_s=finished - started,
            time_to_first_token_s=(first_token_at - started) if first_token_at else None,
            finish_reason=finish_reason,
            stopped_early=stopped_early,
        )


def _close_all(models: OrderedDict[str, _Loaded]) -> None:
    while models:
        _, loaded = models.popitem()
        loaded.llama.close()


@contextlib.contextmanager
def _grammar_sampler(llama: Any, grammar: Any, params: SamplingParams) -> Iterator[GrammarSampler | None]:
    if grammar is None:
        yield None
        return
    sampler = GrammarSampler(llama, grammar, params)
    try:
        yield sampler
    finally:
        sampler.close()


def _chat_formatter(llama: Any) -> Any:
    """llama.cpp's own Jinja formatter for the GGUF's chat template, or None when it has none."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        return None
    eos = llama.detokenize([llama.token_eos()]).decode(errors="ignore")
    bos = llama.detokenize([llama.token_bos()]).decode(errors="ignore")
    return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)


TOOL_MARKUP = (TOOL_CALL_OPEN, TOOL_CALL_CLOSE, "<tool_response>", "</tool_response>")


def _control_texts(llama: Any) -> tuple[str, ...]:
    """The text of each control token in the model's vocabulary, longest first."""
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llama._model.model)
    texts = {
        llama.detokenize([token], special=True).decode(errors="ignore")
        for token in range(llama.n_vocab())
        if llama_cpp.llama_vocab_get_attr(vocab, token) & llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
    }
    texts -= set(TOOL_MARKUP)  # spelled in the history on purpose, should a vocabulary make them control
    return tuple(sorted((text for text in texts if len(text) > 1), key=len, reverse=True))


def defused(value: Any, control_texts: tuple[str, ...]) -> Any:
    """`value` (messages, tools) with every control token's text in its strings broken by a word joiner
    (U+2060, invisible). The prompt is tokenized with special tokens read as such, since the template
    writes them; without this, "<|im_end|><|im_start|>system ..." in a message or a tool result (an API
    client's document, a tool's answer) would be read as a real turn boundary and forge a system turn,
    where OpenAI's API reads it as text. Dict keys are left alone: roles and property names."""
    if not control_texts:
        return value
    return _defused(value, _control_pattern(control_texts))


@functools.lru_cache(maxsize=8)
def _control_pattern(control_texts: tuple[str, ...]) -> re.Pattern[str]:
    # One pass per string, however many control tokens a vocabulary has (some mark thousands unused).
    return re.compile("|".join(re.escape(text) for text in control_texts))  # longest first: see above


def _defused(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return pattern.sub(lambda found: found[0][0] + "\u2060" + found[0][1:], value)
    if isinstance(value, list):
        return [_defused(item, pattern) for item in value]
    if isinstance(value, dict):
        return {key: _defused(item, pattern) for key, item in value.items()}
    return value


def _render_prompt(formatter: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> str:
    """The exact prompt llama.cpp's chat handler built, so prompt token counts match it."""
    if formatter is None:
        return "".join(str(m.get("content", "")) for m in messages)
    return formatter(messages=messages, tools=tools).prompt
