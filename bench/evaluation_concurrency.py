"""Evaluating a remote model: one request at a time vs `REMOTE_CONCURRENCY` in flight.

Usage:
    .venv/bin/python bench/evaluation_concurrency.py [--cases 24] [--latency 0.5]

A hosted provider spends most of a reply's time on its side and the network, and serves many requests
at once. Offline there is no hosted provider, so an OpenAI-compatible server on loopback stands in for
one: every streamed answer arrives `--latency` seconds after the request (a correct-looking tool call,
the same for every case). Both modes run the evaluation job's own `_answers` over the same BFCL cases
(simple_python + multiple, spread evenly) through the real OpenAI client and streaming parser, and the
script prints wall time, cases per second and the ratio. What it measures is the job's overlap of
waiting, not any model's speed. Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CALL = {"name": "calculate_triangle_area", "arguments": {"base": 10, "height": 5}}


def streamed_answer(latency: float):
    from tests.llama_server import HTTPAnswer

    def answer(_request) -> HTTPAnswer:
        time.sleep(latency)
        text = f"<tool_call>{json.dumps(CALL)}</tool_call>"
        header = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "stand-in"}
        chunks = [
            {**header, "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}}]},
            {**header, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        ]
        body = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"
        return HTTPAnswer(200, body, {"Content-Type": "text/event-stream"})

    return answer


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=24, help="BFCL cases, half simple and half multiple")
    parser.add_argument("--latency", type=float, default=0.5, help="seconds the stand-in takes per answer")
    args = parser.parse_args()

    os.environ.setdefault("INSTANCE_PATH", tempfile.mkdtemp(prefix="evaluation-bench-"))
    os.environ["ALLOW_PRIVATE_ENDPOINTS"] = "1"  # the stand-in listens on loopback
    from app import create_app
    from app.evaluations.cases import bfcl_cases
    from app.extensions import db
    from app.models import LLMModel, Provider
    from jobs.evaluation import REMOTE_CONCURRENCY, _answers
    from tests.llama_server import serve_http

    app = create_app()
    cases = bfcl_cases(["simple_python", "multiple"], args.cases // 2)
    with app.app_context(), serve_http(streamed_answer(args.latency)) as base_url:
        db.create_all()
        model = LLMModel(name="stand-in", provider=Provider.OPENAI_COMPATIBLE, base_url=f"{base_url}/v1",
                         model_id="stand-in", supports_tools=True)  # fmt: skip
        db.session.add(model)
        db.session.commit()
        timings = {}
        for workers in (1, REMOTE_CONCURRENCY):
            started = time.perf_counter()
            items = list(_answers(model.id, cases, False, workers))
            timings[workers] = time.perf_counter() - started
            assert len(items) == len(cases) and not any(item.get("error") for item in items), items[:2]
    print(f"{len(cases)} BFCL cases, stand-in OpenAI-compatible server answering after {args.latency:.2f} s")
    for workers, seconds in timings.items():
        print(f"  {workers} in flight: {seconds:6.2f} s  ({len(cases) / seconds:5.2f} cases/s)")
    ratio = timings[1] / timings[REMOTE_CONCURRENCY]
    print(f"concurrent / sequential speed: {ratio:.2f}x (ideal {REMOTE_CONCURRENCY}x)")


if __name__ == "__main__":
    main()
