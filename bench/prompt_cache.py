"""Saved prompt states (`app.serving.prompt_states`) vs none: two conversations taking turns on one model.

Usage:
    .venv/bin/python bench/prompt_cache.py [--rounds 3] [--threads 2]

Conversation A chats with Petstore's tools offered (the tool list alone is ~2.7k tokens); conversation B
is a plain chat. They take turns on the default GGUF (greedy, 16 tokens a reply), as two browser tabs or
two API clients would, once through a `LocalModelHolder` with saved states and once through one without
(the baseline: llama.cpp alone keeps only the prompt it read last). Prints each of A's turns' time to
first token, the totals and their ratio, the replies' agreement, the states saved / restored and the
memory they take. A restored state is bit for bit the state before the switch, but the baseline reads
the whole prompt again, in llama.cpp batches split at other places, which rounds a little differently:
a greedy reply can then part ways at a near tie (tests/serving/test_prompt_states.py checks the
restored answer against a model that never switched, which is exact).

No Flask app and no database. Results are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from app.openapi.normalise import normalise  # noqa: E402
from app.openapi.parsing import load_document  # noqa: E402
from app.openapi.tools import spec_tools  # noqa: E402
from app.serving.default_model import default_gguf_path  # noqa: E402
from app.serving.local import LocalModelHolder  # noqa: E402
from app.serving.types import SamplingParams  # noqa: E402

PETSTORE = Path(__file__).resolve().parents[2] / "shared/fixtures/openapi/petstore-v2.swagger2.0.yaml"
GREEDY = SamplingParams(temperature=0.0, max_tokens=16)
ASK_A = ["Get the pet with id 42.", "Now find the pets that are sold.", "Delete the pet with id 7."]
ASK_B = ["Name a colour.", "Name a fruit.", "Name a river."]


def run(holder: LocalModelHolder, tools: list[dict], rounds: int) -> tuple[list[float], list[str]]:
    path = default_gguf_path()
    a: list[dict] = []
    b: list[dict] = []
    first_token_s, replies = [], []
    for turn in range(rounds):
        for conversation, asks, offered in ((a, ASK_A, tools), (b, ASK_B, None)):
            conversation.append({"role": "user", "content": asks[turn % len(asks)]})
            result = holder.chat(path, conversation, GREEDY, tools=offered)
            conversation.append({"role": "assistant", "content": result.text})
            replies.append(result.text)
            if offered:
                first_token_s.append(result.time_to_first_token_s or result.latency_s)
                print(
                    f"  A turn {turn + 1}: {result.prompt_tokens} prompt tokens, first token "
                    f"{first_token_s[-1]:.2f} s",
                    flush=True,
                )
    return first_token_s, replies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    tools = spec_tools(normalise(load_document(PETSTORE.read_bytes(), PETSTORE.name)))

    print("baseline: no saved states")
    plain = LocalModelHolder(max_loaded=1, n_threads=args.threads, n_ctx=4096, prompt_cache_bytes=0)
    base_ttft, base_replies = run(plain, tools, args.rounds)
    plain.close()
    print("saved prompt states (512 MB)")
    cached = LocalModelHolder(max_loaded=1, n_threads=args.threads, n_ctx=4096)
    ttft, replies = run(cached, tools, args.rounds)
    states = cached.prompt_states
    print()
    total_base, total = sum(base_ttft), sum(ttft)
    print(
        f"A's time to first token, all turns: baseline {total_base:.1f} s, saved states {total:.1f} s "
        f"({total_base / total:.1f}x)"
    )
    later_base, later = sum(base_ttft[1:]), sum(ttft[1:])
    print(
        f"A's turns after B's (turn 2 on): baseline {later_base:.1f} s, saved states {later:.1f} s "
        f"({later_base / later:.1f}x)"
    )
    same = sum(x == y for x, y in zip(replies, base_replies, strict=True))
    print(f"replies identical to the baseline's: {same} of {len(replies)}")
    for x, y in zip(replies, base_replies, strict=True):
        if x != y:
            print(f"  differs: {y!r} (baseline) vs {x!r}")
    print(f"states saved {states.saves}, restored {states.restores}, held {states.size / 1e6:.0f} MB")
    cached.close()


if __name__ == "__main__":
    main()
