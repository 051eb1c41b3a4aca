"""Export time: `quantize.export_model` vs running llama.cpp's converter and quantizer by hand.

Usage:
    .venv/bin/python bench/export_speed.py [--repeats 2] [--types Q4_K_M]

On the default base (SmolLM2-135M-Instruct as float32 safetensors, cached under bench/.cache):

- **bare**: `python -m convert_hf_to_gguf --outtype f16` then `llama_model_quantize` for each type,
  nothing else (what a user would type);
- **app**: `export_model` as a run uses it: the same two steps in a temporary folder, a load-and-
  generate check of every file, then the move into place.

The fastest of `--repeats` rounds of each; target app / bare <= 1.2x. Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import ctypes
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = ROOT / "bench" / ".cache"


def bare(base: Path, out: Path, types: list[str]) -> float:
    import llama_cpp

    from quantize.gguf import QUANT_TYPES

    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    f16 = out / "bare-F16.gguf"
    subprocess.run(
        [sys.executable, "-m", "convert_hf_to_gguf", "--outtype", "f16", "--outfile", str(f16), str(base)],
        check=True,
        capture_output=True,
    )
    for quant in types:
        if quant == "F16":
            continue
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = getattr(llama_cpp, QUANT_TYPES[quant])
        target = out / f"bare-{quant}.gguf"
        assert (
            llama_cpp.llama_model_quantize(str(f16).encode(), str(target).encode(), ctypes.byref(params)) == 0
        )
    return time.perf_counter() - started


def app(base: Path, out: Path, types: list[str]) -> float:
    from quantize import export_model

    started = time.perf_counter()
    export_model(base, out, types, name="app")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--types", default="Q4_K_M")
    args = parser.parse_args()
    from jobs.training.base_model import ensure_default_base

    base = ensure_default_base(CACHE / "store")
    types = [t.strip() for t in args.types.split(",") if t.strip()]
    best = {"bare": float("inf"), "app": float("inf")}
    for _ in range(args.repeats):
        for name, step in (("bare", bare), ("app", app)):
            out = CACHE / f"export-{name}"
            shutil.rmtree(out, ignore_errors=True)
            best[name] = min(best[name], step(base, out, types))
    print(f"SmolLM2-135M-Instruct float32 → F16 GGUF → {', '.join(types)}; fastest of {args.repeats}\n")
    print("| path | seconds |\n|---|---|")
    for name, seconds in best.items():
        print(f"| {name} | {seconds:.1f} |")
    print(f"\napp / bare: {best['app'] / best['bare']:.2f}x (target <= 1.2x)")


if __name__ == "__main__":
    main()
