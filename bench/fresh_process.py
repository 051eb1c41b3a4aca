"""What the training benches share: the same one-epoch LoRA config, and each mode in a fresh process.

A mode runs as `python <script> --child MODE ...` so that imports, allocator state and peak memory never
carry from one mode into the next; the child prints one `RESULT <json>` line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULT_PREFIX = "RESULT "


def lora_epoch_config(batch: int, model: dict[str, Any], logging_steps: int = 1000, **training: Any):
    """One epoch of LoRA r16 / alpha 32 on all linear layers, max length 768, no warm-up, no evaluation,
    seed 1: the settings every training bench compares under. `training` adds or overrides."""
    from app.configs.schema import TrainingConfigSpec

    return TrainingConfigSpec.model_validate(
        {
            "model": model,
            "tokenizer": {"max_length": 768},
            "training": {
                "num_epochs": 1.0,
                "learning_rate": 2e-4,
                "batch_size": batch,
                "lora_r": 16,
                "lora_alpha": 32,
                "warmup_ratio": 0.0,
                **training,
            },
            "logging": {"logging_steps": logging_steps},
            "evaluation": {"enabled": False},
            "seed": 1,
        }
    )


def print_result(result: dict[str, Any]) -> None:
    """The child's answer to its parent."""
    print(RESULT_PREFIX + json.dumps(result))


def run_modes(script: str, modes: list[str], arguments: list[str]) -> dict[str, dict[str, Any]]:
    """Each mode's result, run as `script --child MODE *arguments` in a fresh process; a failed mode
    prints the end of its output and stops the bench."""
    results = {}
    for mode in modes:
        command = [sys.executable, script, "--child", mode, *arguments]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        line = next((x for x in done.stdout.splitlines() if x.startswith(RESULT_PREFIX)), None)
        if line is None:
            print(done.stdout[-2000:], done.stderr[-6000:])
            raise SystemExit(f"{mode} failed")
        results[mode] = json.loads(line[len(RESULT_PREFIX) :])
    return results
