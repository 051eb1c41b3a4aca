"""The whole export: (merge) → f16 GGUF → each requested type → load-and-generate check.

All or nothing: everything is built in a temporary folder beside `out_dir` and each GGUF is moved to
its final name only after every requested file passed its check, so a failure never leaves a
half-written GGUF where the registry could pick it up.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from quantize.errors import ExportError
from quantize.gguf import QUANT_TYPES, check_gguf, convert_to_gguf, make_folder, quantize_gguf
from quantize.merge import merge_adapter

Progress = Callable[[str, float], None]


@dataclass
class ExportResult:
    merged_dir: Path | None
    files: dict[str, Path] = field(default_factory=dict)  # quant type → GGUF
    seconds: dict[str, float] = field(default_factory=dict)  # step → wall time
    samples: dict[str, str] = field(default_factory=dict)  # quant type → the check's generated text


def export_model(
    base_dir: str | Path,
    out_dir: str | Path,
    quant_types: Sequence[str] = ("Q4_K_M",),
    adapter_dir: str | Path | None = None,
    name: str = "model",
    keep_merged: bool = True,
    progress: Progress | None = None,
) -> ExportResult:
    unknown = [q for q in quant_types if q not in QUANT_TYPES]
    if unknown or not quant_types:
        raise ExportError(
            "export", f"choose quantization types from {', '.join(QUANT_TYPES)} (got {list(quant_types)})"
        )
    if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}", name):
        # It names files inside `out_dir`: a path (`../x`) would put them elsewhere.
        raise ExportError("export", f"the name {name!r} must be letters, digits, '.', '_' or '-'")
    report = progress or (lambda step, fraction: None)
    out = Path(out_dir)
    make_folder(out, "export")
    # An export killed outright (OOM, a stop command) never ran its `finally`: its merged model and
    # F16 file would stay forever. One export writes into a folder at a time, so they are stale.
    for stale in out.glob(".export-*"):
        shutil.rmtree(stale, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    result = ExportResult(merged_dir=None)
    try:
        hf_dir = Path(base_dir)
        if adapter_dir is not None:
            report("merging", 0.0)
            started = time.perf_counter()
            hf_dir = merge_adapter(base_dir, adapter_dir, work / "merged")
            result.seconds["merge"] = time.perf_counter() - started
        report("converting", 0.25)
        started = time.perf_counter()
        f16 = convert_to_gguf(hf_dir, work / f"{name}-F16.gguf", "f16")
        result.seconds["convert"] = time.perf_counter() - started
        built: dict[str, Path] = {}
        for index, quant in enumerate(quant_types):
            report("quantizing", 0.5 + 0.3 * index / len(quant_types))
            started = time.perf_counter()
            built[quant] = f16 if quant == "F16" else quantize_gguf(f16, work / f"{name}-{quant}.gguf", quant)
            result.seconds[f"quantize {quant}"] = time.perf_counter() - started
        report("checking", 0.85)
        for quant, path in built.items():
            result.samples[quant] = check_gguf(path)
        for quant, path in built.items():  # every file passed: publish them
            final = out / path.name
            path.replace(final)
            result.files[quant] = final
        if adapter_dir is not None and keep_merged:
            final_merged = out / "merged"
            if final_merged.exists():
                shutil.rmtree(final_merged)
            (work / "merged").replace(final_merged)
            result.merged_dir = final_merged
        report("done", 1.0)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)
