"""Toolsmith's OpenAI-compatible API against llama-cpp-python's own OpenAI server, same model, same client.

Usage:
    .venv/bin/python bench/openai_api.py [--repeats 2]

What LocalAI-style serving gives a tiny model today is llama-cpp-python's server (`llama_cpp.server`):
the GGUF's chat template renders the tools, the model writes whatever it writes. Toolsmith's `/v1`
serves the same GGUF through llama.cpp too, with the offered tools' grammar. Both run the built-in
SmolLM2-135M-Instruct with 2 threads on this machine; the official `openai` client sends each of six
tool questions (three tools, `tool_choice: "required"`, greedy, max 96 tokens) to each server in turn,
`--repeats` rounds. Printed per server: mean and p50 latency, valid calls (a `tool_calls` entry whose
arguments pass the tool's JSON Schema) and right tool. Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}},
    {"type": "function", "function": {"name": "getPetById", "description": "Find a pet by its id",
     "parameters": {"type": "object", "properties": {"petId": {"type": "integer"}}, "required": ["petId"]}}},
    {"type": "function", "function": {"name": "findPetsByStatus", "description": "Pets with a status",
     "parameters": {"type": "object", "properties": {"status": {"type": "string",
                    "enum": ["available", "pending", "sold"]}}, "required": ["status"]}}},
]  # fmt: skip
QUESTIONS = [
    ("What's the weather in Oslo?", "get_weather"),
    ("Is it raining in Paris right now, in celsius?", "get_weather"),
    ("Get the pet with id 42.", "getPetById"),
    ("Show me pet number 7.", "getPetById"),
    ("Which pets are sold?", "findPetsByStatus"),
    ("List the pending pets.", "findPetsByStatus"),
]


def start_toolsmith() -> tuple[str, str, object]:
    """Toolsmith on a loopback port (its own SQLite and in-memory rate limits); (base URL, token, server)."""
    os.environ.setdefault("INSTANCE_PATH", tempfile.mkdtemp(prefix="api-bench-"))
    os.environ.setdefault("LLAMA_THREADS", "2")
    from flask_migrate import upgrade
    from werkzeug.serving import make_server

    from app import create_app
    from app.api.tokens import issue_token
    from app.config import Config
    from app.extensions import db
    from app.models import User
    from app.serving.default_model import ensure_default_model_registered

    class BenchConfig(Config):
        RATELIMIT_STORAGE_URI = "memory://"
        API_RATE_LIMIT = "100000 per minute"

    app = create_app(BenchConfig)
    with app.app_context():
        upgrade()
        ensure_default_model_registered()
        user = User(email="bench@example.com", password_hash="-", is_admin=True)
        db.session.add(user)
        db.session.commit()
        _, token = issue_token(user.id, "bench")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/v1", token, server


def ask(client, model: str, question: str) -> tuple[float, object]:
    started = time.perf_counter()
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": question}], tools=TOOLS, tool_choice="required",
        temperature=0, max_tokens=96,
    )  # fmt: skip
    return time.perf_counter() - started, reply.choices[0].message


def judge(message, expected: str) -> tuple[bool, bool]:
    from app.serving.tool_schema import check_tool_call

    calls = message.tool_calls or []
    if not calls:
        return False, False
    call = calls[0].function
    try:
        arguments = json.loads(call.arguments)
    except ValueError:
        return False, call.name == expected
    return not check_tool_call(TOOLS, call.name, arguments), call.name == expected


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import openai

    from app.serving.default_model import default_gguf_path
    from tests.llama_server import llama_server

    toolsmith_url, token, server = start_toolsmith()
    with llama_server(default_gguf_path(), "smollm2") as llama_url:
        targets = {
            "llama_cpp.server": (openai.OpenAI(base_url=llama_url, api_key="-", max_retries=0), "smollm2"),
            "Toolsmith /v1": (openai.OpenAI(base_url=toolsmith_url, api_key=token, max_retries=0),
                              "SmolLM2-135M-Instruct"),
        }  # fmt: skip
        for client, model in targets.values():  # load and warm up both
            ask(client, model, QUESTIONS[0][0])
        stats = {name: {"latency": [], "valid": 0, "right": 0} for name in targets}
        for _ in range(args.repeats):
            for question, expected in QUESTIONS:
                for name, (client, model) in targets.items():
                    seconds, message = ask(client, model, question)
                    valid, right = judge(message, expected)
                    stats[name]["latency"].append(seconds)
                    stats[name]["valid"] += valid
                    stats[name]["right"] += right
    server.shutdown()
    n = args.repeats * len(QUESTIONS)
    print(f"{n} tool questions per server, tool_choice=required, SmolLM2-135M-Instruct, 2 threads\n")
    print(f"{'server':<18}{'mean s':>8}{'p50 s':>8}{'valid calls':>13}{'right tool':>12}")
    for name, s in stats.items():
        latency = s["latency"]
        print(f"{name:<18}{statistics.mean(latency):>8.2f}{statistics.median(latency):>8.2f}"
              f"{s['valid']:>9}/{n:<3}{s['right']:>8}/{n:<3}")  # fmt: skip
    ratio = statistics.mean(stats["Toolsmith /v1"]["latency"]) / statistics.mean(
        stats["llama_cpp.server"]["latency"]
    )
    print(f"\nToolsmith / llama_cpp.server mean latency: {ratio:.2f}x")


if __name__ == "__main__":
    main()
