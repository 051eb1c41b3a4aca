"""The trainer's CUDA path: bf16 LoRA and 4-bit QLoRA (bitsandbytes NF4) on the SmolLM2-135M shapes.

Usage (two machines; the GPU one has no network and takes at most 64 MiB per call):
    here:  .venv/bin/python bench/cuda_training.py --prepare   # bench/.cuda: config, tokenizer, rows
           bash bench/cuda_wheels.sh                           # .whl: what the GPU machine lacks
    there: bash bench/cuda_run.sh                              # carry .whl and bench/.cuda

Every mode runs `jobs.training.trainer.train`, the function a run's job calls, in a fresh process:
the app's own device settings decide bf16 and, for QLoRA, the BitsAndBytesConfig and
`prepare_model_for_kbit_training`. Data: Petstore tool-calling rows (the called tool and 3 others,
like bench/training_throughput.py), one epoch, LoRA r=16 on all linear layers, max length 768.

Weights are random, with the 135M's exact config: its shipped GGUF (98 MB) does not fit in what a
GPU call carries. Throughput and memory depend on the shapes, not the values, so the figures stand
for the real model; the loss does not, and is not reported.

Reported per mode: real (non-padding) tokens per second over the epoch, wall seconds, peak GPU
memory allocated and reserved (torch's allocator), and the linter's estimate for the same config.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.fresh_process import lora_epoch_config, print_result, run_modes  # noqa: E402

PREPARED = ROOT / "bench" / ".cuda"
MODES = {
    "cuda-bf16-lora": {"use_qlora": False, "device": "cuda"},
    "cuda-qlora-4bit": {"use_qlora": True, "device": "cuda"},
    "cpu-lora": {"use_qlora": False, "device": "cpu"},  # a smoke test where there is no GPU
}
MIB = 2**20


def prepare(n_rows: int) -> None:
    """Write the model's config and tokenizer (no weights) and the training rows to bench/.cuda."""
    from bench.training_throughput import CACHE, rows
    from jobs.training.base_model import ensure_default_base

    base = ensure_default_base(CACHE / "store")
    shutil.rmtree(PREPARED, ignore_errors=True)
    (PREPARED / "model").mkdir(parents=True)
    for path in base.iterdir():
        if not path.name.endswith(".safetensors"):
            shutil.copy(path, PREPARED / "model" / path.name)
    train_rows, _ = rows(n_rows)
    (PREPARED / "rows.json").write_text(json.dumps(train_rows))
    size = sum(p.stat().st_size for p in PREPARED.rglob("*") if p.is_file())
    print(f"{PREPARED}: {len(train_rows)} rows, {size / MIB:.1f} MiB")


def random_base(work: Path) -> Path:
    """The 135M architecture with random float32 weights, saved like the app's converted base."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    folder = work / "base"
    if (folder / "config.json").is_file():
        return folder
    shutil.copytree(PREPARED / "model", folder)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder), dtype=torch.float32)
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def child(mode: str, batch: int, work: Path) -> dict:
    import torch

    from app.configs.estimates import estimate_memory, facts_from_hf_config
    from jobs.training.data import Splits
    from jobs.training.trainer import TrainingHooks, device_settings, train

    base = random_base(work)
    train_rows = json.loads((PREPARED / "rows.json").read_text())
    config = lora_epoch_config(
        batch, model={"name": "base", "device": MODES[mode]["device"]}, use_qlora=MODES[mode]["use_qlora"]
    )
    settings = device_settings(config)
    cuda = settings["cuda"]
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    outcome = train(base, work / mode, config, Splits(train_rows, []), TrainingHooks())
    seconds = outcome.metrics.get("train_runtime") or (time.perf_counter() - started)
    estimate = estimate_memory(config, facts_from_hf_config(base / "config.json"), cuda=cuda)
    return {
        "mode": mode,
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "dtype": settings["dtype_name"] + (" + bf16 autocast" if settings["bf16_autocast"] else ""),
        "steps": outcome.global_step,
        "tokens": outcome.train_tokens,
        "seconds": seconds,
        "tokens_per_second": outcome.train_tokens / seconds,
        "peak_allocated_mib": torch.cuda.max_memory_allocated() / MIB if cuda else None,
        "peak_reserved_mib": torch.cuda.max_memory_reserved() / MIB if cuda else None,
        "estimate_mib": (estimate.total_bytes - estimate.framework_bytes) / MIB,
        "versions": _versions(),
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("torch", "transformers", "peft", "trl", "bitsandbytes"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "-"
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepare", action="store_true", help="write bench/.cuda (run where the app runs)")
    parser.add_argument("--rows", type=int, default=320, help="rows written by --prepare")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--only", default="cuda-bf16-lora,cuda-qlora-4bit", help=", ".join(MODES))
    parser.add_argument("--work", default="/tmp/toolsmith-cuda-bench")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        prepare(args.rows)
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.child:
        print_result(child(args.child, args.batch, work))
        return
    arguments = ["--batch", str(args.batch), "--work", str(work)]
    results = list(run_modes(__file__, args.only.split(","), arguments).values())
    print(f"SmolLM2-135M shapes, LoRA r16 all-linear, batch {args.batch}, 1 epoch, max length 768")
    print(f"versions: {results[0]['versions']}\n")
    print(
        "| mode | device | dtype | steps | real tokens | seconds | tokens/s | peak alloc MiB "
        "| peak reserved MiB | estimate MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        alloc = f"{r['peak_allocated_mib']:.0f}" if r["peak_allocated_mib"] is not None else "-"
        reserved = f"{r['peak_reserved_mib']:.0f}" if r["peak_reserved_mib"] is not None else "-"
        print(
            f"| {r['mode']} | {r['device']} | {r['dtype']} | {r['steps']} | {r['tokens']} "
            f"| {r['seconds']:.1f} | {r['tokens_per_second']:.0f} | {alloc} | {reserved} "
            f"| {r['estimate_mib']:.0f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
