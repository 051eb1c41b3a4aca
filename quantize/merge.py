"""Merge a LoRA adapter into its base model and save the result as safetensors."""

from __future__ import annotations

from pathlib import Path

from quantize.errors import ExportError


def merge_adapter(base_dir: str | Path, adapter_dir: str | Path, out_dir: str | Path) -> Path:
    """peft's `merge_and_unload` in float32 (merging in 16-bit loses the small LoRA deltas), then save
    weights, config and tokenizer (its chat template included) to `out_dir`."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = Path(out_dir)
    try:
        base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
        merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
        tokenizer = AutoTokenizer.from_pretrained(
            str(adapter_dir) if _has_tokenizer(adapter_dir) else str(base_dir)
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ExportError("merge", f"could not merge the adapter into the base model: {exc}") from exc
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    return out


def _has_tokenizer(folder: str | Path) -> bool:
    return (Path(folder) / "tokenizer_config.json").is_file()
