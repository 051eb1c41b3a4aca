"""BFCL accuracy of the built-in SmolLM2-135M-Instruct (Q4_1 GGUF), through the evaluation job's own code.

Usage:
    .venv/bin/python bench/bfcl_default_model.py [--cases 20] [--categories simple_python multiple ...]

BFCL publishes no SmolLM2 score, so this measures one: each category sampled evenly (`--cases` per
category), greedy decoding, each reply judged by `app.evaluations.bfcl.check_calls`, once free and once
with the chat's tool grammar (constrained). Prints accuracy, valid-call rate and seconds per case for
both, side by side, and the published scores of four small models for scale. Results go to
docs/benchmarks.md ("Tool-calling accuracy on BFCL").
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def score(cases, model, constrained: bool) -> dict[str, dict[str, float]]:
    from jobs.evaluation import _answer

    per_category: dict[str, dict[str, float]] = {}
    for case in cases:
        started = time.perf_counter()
        item = _answer(model, case, constrained)
        entry = per_category.setdefault(case.category, {"cases": 0, "correct": 0, "valid": 0, "seconds": 0.0})
        entry["cases"] += 1
        entry["correct"] += bool(item["correct"])
        entry["valid"] += bool(item["valid"])
        entry["seconds"] += time.perf_counter() - started
    return per_category


def _cells(entry: dict[str, float]) -> str:
    n = entry["cases"]
    return (
        f"{100 * entry['correct'] / n:>16.1f}%{100 * entry['valid'] / n:>7.0f}%{entry['seconds'] / n:>8.2f}"
    )


def main() -> None:
    from app.evaluations.bfcl import CATEGORIES, PUBLISHED_SCORES

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=20, help="cases per category, spread evenly")
    parser.add_argument("--categories", nargs="+", default=list(CATEGORIES), choices=list(CATEGORIES))
    args = parser.parse_args()

    os.environ.setdefault("INSTANCE_PATH", tempfile.mkdtemp(prefix="bfcl-bench-"))
    from app import create_app
    from app.evaluations.cases import bfcl_cases
    from app.models import LLMModel, Provider
    from app.serving.default_model import default_gguf_path
    from app.serving.llama_runtime import llama_system_info

    app = create_app()
    cases = bfcl_cases(args.categories, args.cases)
    print(f"llama.cpp: {llama_system_info()}")
    print(f"{len(cases)} cases ({args.cases} per category), model {default_gguf_path().name}\n")
    with app.app_context():
        model = LLMModel(
            name="SmolLM2-135M-Instruct", provider=Provider.LOCAL_GGUF, gguf_path=str(default_gguf_path())
        )
        results = {mode: score(cases, model, mode == "constrained") for mode in ("free", "constrained")}

    header = f"{'category':<18}" + "".join(
        f"{mode + ' acc':>17}{'valid':>8}{'s/case':>8}" for mode in results
    )
    print(header)
    totals = {mode: {"cases": 0, "correct": 0, "valid": 0, "seconds": 0.0} for mode in results}
    for category in args.categories:
        line = f"{CATEGORIES[category]:<18}"
        for mode, per_category in results.items():
            entry = per_category[category]
            for key in totals[mode]:
                totals[mode][key] += entry[key]
            line += _cells(entry)
        print(line)
    line = f"{'all':<18}"
    for mode in results:
        line += _cells(totals[mode])
    print(line)
    print(
        "\nPublished (BFCL V4, full sets): "
        + "; ".join(
            f"{label} " + " / ".join(f"{scores[c]:g}" for c in args.categories)
            for label, scores in PUBLISHED_SCORES.items()
        )
    )


if __name__ == "__main__":
    main()
