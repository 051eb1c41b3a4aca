"""Grammar-constrained vs free decoding of tool calls with the default model, on CPU.

Usage:
    .venv/bin/python bench/constrained_decoding.py [--repeats 3] [--threads 2]

Offers three tools (get_weather, and Petstore's findPetsByStatus and getPetById) in the system turn
(`tools_system_prompt`), asks eight short questions at temperature 0 through `LocalModelHolder`, once
free and once with the `required` grammar (`app.serving.grammar`), and prints:

- decode speed (output tokens per second after the first token) in each mode and their ratio;
- grammar build time on first use vs a cached lookup, and llama.cpp's own per-generation parse;
- how many replies were a valid call (`parse_tool_calls` + `check_tool_call`), and how many called
  the tool the question asks for;
- where the grammar's cost goes: llama.cpp's `grammar=` checks the whole vocabulary against the grammar
  at every step ("plain grammar=", the old way); the app's `GrammarSampler` checks only the sampled
  token and masks the vocabulary only when the grammar rejects it ("grammar", and "plain
  GrammarSampler" on a second copy of the model, which also counts the full masks).

No Flask app and no database. Results are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from app.serving.default_model import default_gguf_path  # noqa: E402
from app.serving.grammar import clear_grammar_cache, grammar_for, tool_grammar_text  # noqa: E402
from app.serving.grammar_sampling import GrammarSampler, _token_data, _token_data_array  # noqa: E402
from app.serving.local import LocalModelHolder  # noqa: E402
from app.serving.tool_calls import parse_tool_calls, tools_system_prompt  # noqa: E402
from app.serving.tool_schema import check_tool_call  # noqa: E402
from app.serving.types import ChatResult, SamplingParams  # noqa: E402

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name, e.g. Oslo"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "findPetsByStatus",
            "description": "Finds pets by status",
            "parameters": {
                "type": "object",
                "properties": {"status": {"type": "string", "enum": ["available", "pending", "sold"]}},
                "required": ["status"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "getPetById",
            "description": "Find a pet by its id",
            "parameters": {
                "type": "object",
                "properties": {"petId": {"type": "integer", "description": "ID of the pet"}},
                "required": ["petId"],
            },
        },
    },
]
# (question, the tool it asks for)
PROMPTS: list[tuple[str, str]] = [
    ("What's the weather in Oslo?", "get_weather"),
    ("What's the weather in Paris in fahrenheit?", "get_weather"),
    ("Is it raining in Tokyo right now?", "get_weather"),
    ("How warm is it in Berlin in celsius?", "get_weather"),
    ("Find all pets that are available.", "findPetsByStatus"),
    ("Show me the pets with status sold.", "findPetsByStatus"),
    ("Get the pet with id 42.", "getPetById"),
    ("Look up pet number 7.", "getPetById"),
]
GREEDY = SamplingParams(temperature=0.0, max_tokens=64)


@dataclass
class Generation:
    text: str
    tokens: int  # tokens decoded after the first piece of text
    decode_s: float  # time from the first piece of text to the end
    latency_s: float


@dataclass
class ModeStats:
    """Per prompt, the fastest of the rounds (background load only ever adds time)."""

    best: dict[str, Generation] = field(default_factory=dict)

    def add(self, question: str, generation: Generation) -> None:
        kept = self.best.get(question)
        if kept is None or generation.decode_s / max(generation.tokens, 1) < kept.decode_s / max(
            kept.tokens, 1
        ):
            self.best[question] = generation

    @property
    def median_latency_s(self) -> float:
        return statistics.median(g.latency_s for g in self.best.values())

    @property
    def tokens_per_second(self) -> float:
        tokens = sum(g.tokens for g in self.best.values())
        seconds = sum(g.decode_s for g in self.best.values())
        return tokens / seconds if seconds else 0.0

    def score(self) -> tuple[int, int]:
        """(valid calls, calls to the tool the question asks for)."""
        valid = right = 0
        for question, expected in PROMPTS:
            calls = parse_tool_calls(self.best[question].text)
            valid += bool(calls) and all(not check_tool_call(TOOLS, c.name, c.arguments) for c in calls)
            right += bool(calls) and calls[0].name == expected
        return valid, right


def messages_for(question: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": tools_system_prompt(TOOLS)}, {"role": "user", "content": question}]


def holder_generation(holder: LocalModelHolder, path: Path, question: str, grammar: Any) -> Generation:
    """As the app generates: `LocalModelHolder.stream_chat` (its token count is the reply re-tokenised)."""
    result = None
    for item in holder.stream_chat(path, messages_for(question), GREEDY, grammar=grammar):
        if isinstance(item, ChatResult):
            result = item
    assert result is not None
    ttft = result.time_to_first_token_s or 0.0
    return Generation(
        result.text, max(result.completion_tokens - 1, 0), result.latency_s - ttft, result.latency_s
    )


def plain_generation(llama: Any, question: str, **options: Any) -> Generation:
    """Plain llama-cpp-python, counting the tokens llama.cpp actually decoded."""
    started = time.perf_counter()
    stream = llama.create_chat_completion(
        messages=messages_for(question), temperature=0.0, max_tokens=GREEDY.max_tokens, stream=True, **options
    )
    pieces: list[str] = []
    first_at, first_n = None, 0
    for chunk in stream:
        piece = chunk["choices"][0]["delta"].get("content") or ""
        if piece and first_at is None:
            first_at, first_n = time.perf_counter(), llama.n_tokens
        pieces.append(piece)
    finished = time.perf_counter()
    if first_at is None:
        return Generation("", 0, 0.0, finished - started)
    return Generation("".join(pieces), llama.n_tokens - first_n, finished - first_at, finished - started)


def time_grammar_build() -> tuple[float, float]:
    """(first build of the tools' grammar, a cached lookup), in milliseconds."""
    clear_grammar_cache()
    started = time.perf_counter()
    grammar_for(TOOLS, "required")
    first = time.perf_counter() - started
    n = 2000
    started = time.perf_counter()
    for _ in range(n):
        grammar_for(TOOLS, "required")
    cached = (time.perf_counter() - started) / n
    return first * 1000, cached * 1000


OSLO_CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'


def native_grammar_costs(llama: Any) -> dict[str, float]:
    """llama.cpp's per-generation parse of our GBNF, and its per-token cost for grammars of other shapes.

    The per-token cost is llama.cpp checking every vocabulary entry against the grammar, timed at each
    step of the Oslo call's tokens, for our grammar, a single fixed literal (the least a grammar can
    cost) and free text (every entry passes).
    """
    import llama_cpp

    text = tool_grammar_text(TOOLS, "required")
    vocab = llama._model.vocab
    started = time.perf_counter()
    for _ in range(200):
        llama_cpp.llama_sampler_free(llama_cpp.llama_sampler_init_grammar(vocab, text.encode(), b"root"))
    figures = {"native_parse_ms": (time.perf_counter() - started) / 200 * 1000, "n_vocab": llama.n_vocab()}
    data = _token_data(llama.n_vocab())
    array = _token_data_array(data)
    tokens = llama.tokenize(OSLO_CALL.encode(), add_bos=False)
    shapes = {
        "ours": text,
        "one tool": tool_grammar_text(TOOLS[:1], "required"),
        "fixed literal": "root ::= " + json.dumps(OSLO_CALL),
        "free text": r"root ::= [^\x00]*",
    }
    for label, gbnf in shapes.items():
        best = float("inf")
        for _ in range(5):
            sampler = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode(), b"root")
            spent = 0.0
            for token in tokens:
                data["logit"] = 0.0
                started = time.perf_counter()
                llama_cpp.llama_sampler_apply(sampler, ctypes.byref(array))
                spent += time.perf_counter() - started
                llama_cpp.llama_sampler_accept(sampler, token)
            llama_cpp.llama_sampler_free(sampler)
            best = min(best, spent)
        figures[f"per_token_ms {label}"] = best / len(tokens) * 1000
    return figures


def main() -> None:
    from app.serving.llama_runtime import open_llama

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats", type=int, default=3, help="generations per prompt and mode (fastest kept)"
    )
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads")
    args = parser.parse_args()
    path = default_gguf_path()

    first_ms, cached_ms = time_grammar_build()
    grammar = grammar_for(TOOLS, "required")
    grammar_text = tool_grammar_text(TOOLS, "required")
    holder = LocalModelHolder(max_loaded=1, n_threads=args.threads, n_ctx=2048, prompt_cache_bytes=0)
    llama = open_llama(
        model_path=str(path), n_ctx=2048, n_threads=args.threads, verbose=False
    )  # a second copy for the plain llama-cpp-python modes
    holder.chat(path, messages_for(PROMPTS[0][0]), SamplingParams(0.0, 1.0, 4))  # load and warm up
    native = native_grammar_costs(llama)

    names = ("free", "grammar", "plain free", "plain grammar=", "plain GrammarSampler")
    modes = {name: ModeStats() for name in names}
    full_masks = steps = 0
    # Every mode runs once per round, so background load on a shared machine hits them alike.
    for _ in range(args.repeats):
        for question, _expected in PROMPTS:
            modes["free"].add(question, holder_generation(holder, path, question, None))
            modes["grammar"].add(question, holder_generation(holder, path, question, grammar))
            modes["plain free"].add(question, plain_generation(llama, question))
            modes["plain grammar="].add(question, plain_generation(llama, question, grammar=grammar))
            check = GrammarSampler(llama, grammar_text, GREEDY)
            generation = plain_generation(llama, question, logits_processor=[check])
            modes["plain GrammarSampler"].add(question, generation)
            full_masks, steps = full_masks + check.full_masks, steps + check.steps
            check.close()
    holder.close()
    llama.close()

    n = len(PROMPTS)
    print(
        f"SmolLM2-135M-Instruct Q4_1, {args.threads} threads, temperature 0, max 64 tokens, "
        f"{len(TOOLS)} tools,"
    )
    print(f"{n} prompts x {args.repeats} rounds (fastest round per prompt kept)\n")
    print(f"grammar build: first {first_ms:.2f} ms, cached lookup {cached_ms * 1000:.1f} µs")
    print(f"llama.cpp parses the GBNF again for every generation: {native['native_parse_ms']:.3f} ms")
    print(f"llama.cpp checks all {native['n_vocab']:.0f} vocabulary entries against the grammar per token:")
    for key, value in native.items():
        if key.startswith("per_token_ms "):
            print(f"  {key.removeprefix('per_token_ms ')}: {value:.2f} ms/token")
    print()
    print("| mode | decode tokens/s | vs free | latency (median) | valid calls | right tool |")
    print("|---|---|---|---|---|---|")
    for name, stats in modes.items():
        baseline = modes["plain free" if name.startswith("plain") else "free"].tokens_per_second
        valid, right = stats.score()
        print(
            f"| {name} | {stats.tokens_per_second:.0f} | {stats.tokens_per_second / baseline:.2f}x "
            f"| {stats.median_latency_s * 1000:.0f} ms | {valid}/{n} | {right}/{n} |"
        )
    ratio = modes["grammar"].tokens_per_second / modes["free"].tokens_per_second
    print(f"\nconstrained / free decode speed through LocalModelHolder: {ratio:.2f}x (target >= 0.7x)")
    same = sum(
        modes["plain grammar="].best[q].text == modes["grammar"].best[q].text for q, _expected in PROMPTS
    )
    print(f"GrammarSampler: same replies as llama.cpp's grammar= for {same}/{n} prompts; it masked the whole")
    print(
        f"vocabulary on {full_masks / max(steps, 1):.0%} of steps (where greedy's pick broke the grammar)\n"
    )
    for name in ("grammar", "free"):
        print(f"replies ({name}):")
        for question, _expected in PROMPTS:
            print(f"  {question!r} -> {modes[name].best[question].text!r}")


if __name__ == "__main__":
    main()
