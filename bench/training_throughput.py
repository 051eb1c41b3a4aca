"""Training throughput: the app's trainer vs a plain TRL script, same model, data and hyper-parameters.

Usage:
    .venv/bin/python bench/training_throughput.py [--rows 160] [--batch 4] [--threads 2] [--only app,plain]

Model: SmolLM2-135M-Instruct, the default base the app converts from the shipped GGUF (cached under
bench/.cache). Data: tool-calling conversations from Petstore (`app.datasets.generation`), one epoch
over `--rows` training rows (each offering the called tool and 3 others), LoRA r=16 on all linear
layers, learning rate 2e-4, max length 768.

- **plain**: what a user would write with TRL's documented defaults. A conversational dataset
  (`messages` + `tools`) cannot even be built from these rows (Arrow: "cannot mix list and non-list"),
  so the script renders each row to prompt / completion text with the same tool-aware template and
  gives that to `SFTTrainer` (loss on the completion), `SFTConfig` defaults otherwise (gradient
  checkpointing on, random batches).
  TRL's `SFTConfig` default `bf16=True` autocasts to bf16 even on CPU, which is emulated (very slow) on
  CPUs without AVX-512-bf16 / AMX; **plain-fp32** is the same script with `bf16=False`, float32 like the
  app on CPU: the fair baseline, and the default comparison.
- **app**: `jobs.training.trainer.train`, as a run uses it: rows tokenised from Python (assistant-only
  loss), the LM head scored only on the labelled positions (`jobs/training/compact_loss.py`), gradient
  checkpointing off, batches grouped by length, and bf16 autocast where the CPU has AVX-512 BF16 or
  AMX (float32 elsewhere). **app-fp32** is the same with `torch_dtype: float32`: never autocast.

Each runs in a fresh process. Reported: real (non-padding) tokens per second over the epoch, wall time,
final eval loss on the same held-out rows, peak resident memory while training (VmHWM) next to the
config linter's estimate for the longest row, and app / plain. Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.fresh_process import lora_epoch_config, print_result, run_modes  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
PETSTORE = ROOT.parent / "shared" / "fixtures" / "openapi" / "petstore-v2.swagger2.0.yaml"


def rows(n_train: int) -> tuple[list[dict], list[dict]]:
    from app.datasets.generation import GenerationOptions, generate_dataset
    from app.openapi.normalise import normalise
    from app.openapi.parsing import load_document

    spec = normalise(load_document(PETSTORE.read_bytes(), PETSTORE.name))
    generated = generate_dataset(
        spec, GenerationOptions(samples_per_operation=max(10, n_train // 15), seed=1)
    )
    train = [_fewer_tools(r, i) for i, r in enumerate(r for r in generated.rows if r["split"] == "train")]
    held = [_fewer_tools(r, i) for i, r in enumerate(r for r in generated.rows if r["split"] == "eval")]
    return train[:n_train], held[:40]


def _fewer_tools(row: dict, index: int, offered: int = 4) -> dict:
    """The called tool plus a few others: all 20 Petstore tools make every row ~2,500 tokens, which at
    CPU speed turns a benchmark into an hour."""
    called = {c["function"]["name"] for m in row["messages"] for c in m.get("tool_calls") or []}
    others = [t for t in row["tools"] if t["function"]["name"] not in called]
    start = index % max(len(others), 1)
    keep = [t for t in row["tools"] if t["function"]["name"] in called]
    keep += (others[start:] + others[:start])[: offered - len(keep)]
    return {**row, "tools": keep}


def child(mode: str, n_train: int, batch: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from jobs.training.base_model import ensure_default_base
    from jobs.training.data import Splits, tokenize_sft

    base = ensure_default_base(CACHE / "store")
    train_rows, eval_rows = rows(n_train)
    config = lora_epoch_config(
        batch,
        model={
            "name": "HuggingFaceTB/SmolLM2-135M-Instruct",
            "torch_dtype": "float32" if mode == "app-fp32" else "auto",
        },
    )
    out = CACHE / f"throughput-{mode}"
    if mode in ("app", "app-fp32"):
        from jobs.training.trainer import TrainingHooks, train

        started = time.perf_counter()
        outcome = train(base, out, config, Splits(train_rows, eval_rows), TrainingHooks())
        seconds = outcome.metrics.get("train_runtime") or (time.perf_counter() - started)
        tokens = outcome.train_tokens
        peak = _peak_rss()
        eval_loss = _eval_loss(out / "adapter", base, eval_rows)
    else:
        from datasets import Dataset
        from peft import LoraConfig
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from trl import SFTConfig, SFTTrainer

        from app.serving.chat_template import TOOL_CHAT_TEMPLATE

        tokenizer = AutoTokenizer.from_pretrained(base)
        tokenizer.chat_template = TOOL_CHAT_TEMPLATE
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        tokens = sum(len(e["input_ids"]) for e in tokenize_sft(train_rows, tokenizer, 768)[0])
        # Arrow cannot hold these rows as JSON (tool schemas and arguments differ row to row: "cannot mix
        # list and non-list"), so the plain script renders them to prompt / completion text first, the
        # usual workaround; TRL then tokenises them and computes the loss on the completion.
        dataset = Dataset.from_list([_prompt_completion(r, tokenizer) for r in train_rows])
        args = SFTConfig(
            output_dir=str(out),
            num_train_epochs=1,
            per_device_train_batch_size=batch,
            learning_rate=2e-4,
            max_length=768,
            report_to=[],
            save_strategy="no",
            use_cpu=True,
            logging_steps=1000,
            seed=1,
            # TRL's default is bf16=True, even on CPU: autocast to bf16, which is emulated (slow) on CPUs
            # without AVX-512-bf16 / AMX. "plain-fp32" is the same script in float32, like the app on CPU.
            bf16=mode == "plain",
        )
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=LoraConfig(
                r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM"
            ),
        )
        result = trainer.train()
        seconds = result.metrics["train_runtime"]
        trainer.save_model(str(out / "adapter"))
        peak = _peak_rss()
        eval_loss = _eval_loss(out / "adapter", base, eval_rows)
    from transformers import AutoTokenizer

    from app.configs.estimates import estimate_memory, facts_from_hf_config
    from app.serving.chat_template import TOOL_CHAT_TEMPLATE

    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.chat_template = TOOL_CHAT_TEMPLATE
    longest = max(len(e["input_ids"]) for e in tokenize_sft(train_rows, tokenizer, 768)[0])
    estimate = estimate_memory(config, facts_from_hf_config(base / "config.json"), tokens_per_row=longest)
    return {
        "mode": mode,
        "peak_mib": peak / 2**20,
        "estimate_mib": estimate.total_bytes / 2**20,
        "tokens": tokens,
        "seconds": seconds,
        "tokens_per_second": tokens / seconds,
        "eval_loss": eval_loss,
    }


def _peak_rss() -> int:
    """Peak resident memory of this process (VmHWM), read before the eval-loss model is loaded."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _prompt_completion(row: dict, tokenizer) -> dict:
    messages, tools = row["messages"], row.get("tools") or None
    prompt = tokenizer.apply_chat_template(
        messages[:-1], tools=tools, tokenize=False, add_generation_prompt=True
    )
    full = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False)
    return {"prompt": prompt, "completion": full[len(prompt) :]}


def _eval_loss(adapter: Path, base: Path, eval_rows: list[dict]) -> float:
    """Mean loss on the assistant tokens of the held-out rows, the same way for both modes."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from jobs.training.data import tokenize_sft

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter
    )
    model.eval()
    losses = []
    with torch.no_grad():
        for example in tokenize_sft(eval_rows, tokenizer, 768)[0]:
            ids = torch.tensor([example["input_ids"]])
            labels = torch.tensor(
                [
                    [
                        t if m else -100
                        for t, m in zip(example["input_ids"], example["assistant_masks"], strict=True)
                    ]
                ]
            )
            losses.append(float(model(input_ids=ids, labels=labels).loss))
    return sum(losses) / len(losses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=160)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default="plain-fp32,app", help="modes: plain, plain-fp32, app, app-fp32")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print_result(child(args.child, args.rows, args.batch, args.threads))
        return
    arguments = ["--rows", str(args.rows), "--batch", str(args.batch), "--threads", str(args.threads)]
    results = run_modes(__file__, args.only.split(","), arguments)
    import torch

    from jobs.training.hardware import cpu_has_native_bf16

    print(
        f"SmolLM2-135M-Instruct, LoRA r16, {args.rows} Petstore rows, batch {args.batch}, 1 epoch, "
        f"{args.threads} threads; CPU {torch.backends.cpu.get_cpu_capability()}, "
        f"bf16 in hardware: {cpu_has_native_bf16()}\n"
    )
    print("| mode | real tokens | seconds | tokens/s | eval loss | peak RSS MiB | linter estimate MiB |")
    print("|---|---|---|---|---|---|---|")
    for mode, r in results.items():
        print(
            f"| {mode} | {r['tokens']} | {r['seconds']:.1f} | {r['tokens_per_second']:.0f} "
            f"| {r['eval_loss']:.4f} | {r['peak_mib']:.0f} | {r['estimate_mib']:.0f} |"
        )
    for baseline in ("plain", "plain-fp32", "app-fp32"):
        if {"app", baseline} <= set(results):
            ratio = results["app"]["tokens_per_second"] / results[baseline]["tokens_per_second"]
            print(
                f"\napp / {baseline}: {ratio:.2f}x tokens/s (target >= 1.3x), eval loss "
                f"{results['app']['eval_loss']:.4f} vs {results[baseline]['eval_loss']:.4f}"
            )


if __name__ == "__main__":
    main()
