"""DPO throughput: the app's DPO path with TRL's LM head on its compact path vs TRL's CPU default.

Usage:
    .venv/bin/python bench/dpo_throughput.py [--pairs 24] [--batch 2] [--threads 2] [--only trl-head,app]

Model: SmolLM2-135M-Instruct, the default base (cached under bench/.cache like the SFT bench). Data:
Petstore preference pairs from `app.datasets.generation` (the called tool and 3 others per pair),
LoRA r=16 on all linear layers, beta 0.1, one epoch, max length 768.

- **trl-head**: `jobs.training.trainer.train` with TRL's fused LM head as TRL runs it on CPU: every
  position of every sequence (chosen and rejected, policy and reference) goes through the 49k-word head.
- **app**: the same call as a run makes it: `labelled_positions_only` puts that head on the path TRL
  takes on Triton devices, the answer's tokens only. Same loss and gradients
  (tests/training/test_compact_loss.py).

Each mode runs in a fresh process. Reported: tokens per second over the epoch (the count the run page
shows: both sequences of each pair, prompt + chosen and prompt + rejected, each cut at max length),
seconds, the last logged training loss, and app / trl-head.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.fresh_process import lora_epoch_config, print_result, run_modes  # noqa: E402


def pairs(n: int) -> list[dict]:
    from app.datasets.generation import GenerationOptions, generate_dataset
    from app.openapi.normalise import normalise
    from app.openapi.parsing import load_document
    from bench.training_throughput import PETSTORE

    spec = normalise(load_document(PETSTORE.read_bytes(), PETSTORE.name))
    options = GenerationOptions(
        samples_per_operation=max(4, n // 15), seed=1, dpo=True, include_irrelevant=False, tools_per_row=4
    )
    rows = [r for r in generate_dataset(spec, options).rows if r["split"] == "train"]
    return rows[:n]


def child(mode: str, n_pairs: int, batch: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    import jobs.training.trainer as trainer_module
    from bench.training_throughput import CACHE
    from jobs.training.base_model import ensure_default_base
    from jobs.training.data import Splits

    if mode == "trl-head":
        trainer_module.labelled_positions_only = contextlib.nullcontext
    base = ensure_default_base(CACHE / "store")
    config = lora_epoch_config(
        batch,
        model={"name": "HuggingFaceTB/SmolLM2-135M-Instruct", "torch_dtype": "float32"},
        logging_steps=1,
        method="dpo",
        learning_rate=5e-5,
        dpo_beta=0.1,
    )
    losses: list[float] = []
    hooks = trainer_module.TrainingHooks(on_log=lambda r: r.loss is not None and losses.append(r.loss))
    started = time.perf_counter()
    outcome = trainer_module.train(base, CACHE / f"dpo-{mode}", config, Splits(pairs(n_pairs), []), hooks)
    seconds = outcome.metrics.get("train_runtime") or (time.perf_counter() - started)
    return {
        "mode": mode,
        "tokens": outcome.train_tokens,
        "seconds": seconds,
        "tokens_per_second": outcome.train_tokens / seconds,
        "losses": losses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default="trl-head,app", help="modes: trl-head, app")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print_result(child(args.child, args.pairs, args.batch, args.threads))
        return
    arguments = ["--pairs", str(args.pairs), "--batch", str(args.batch), "--threads", str(args.threads)]
    results = run_modes(__file__, args.only.split(","), arguments)
    print(
        f"SmolLM2-135M-Instruct, DPO LoRA r16, {args.pairs} Petstore pairs, batch {args.batch}, "
        f"1 epoch, float32, {args.threads} threads\n"
    )
    print("| mode | tokens (both sequences) | seconds | tokens/s | step losses |")
    print("|---|---|---|---|---|")
    for mode, r in results.items():
        losses = ", ".join(f"{x:.4f}" for x in r["losses"])
        print(f"| {mode} | {r['tokens']} | {r['seconds']:.1f} | {r['tokens_per_second']:.0f} | {losses} |")
    if {"app", "trl-head"} <= set(results):
        ratio = results["app"]["tokens_per_second"] / results["trl-head"]["tokens_per_second"]
        print(f"\napp / trl-head: {ratio:.2f}x tokens/s")


if __name__ == "__main__":
    main()
