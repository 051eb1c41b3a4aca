"""Prompt reading and decoding speed of each GGUF format the export offers, against the shipped Q4_1.

Usage:
    .venv/bin/python bench/gguf_formats.py [--threads 2] [--repeats 2]

The built-in SmolLM2-135M-Instruct ships as Q4_1; trained models are exported as Q4_K_M by default
(Q5_K_M, Q8_0 and F16 on request). This requantizes the shipped file into each export type with
llama.cpp's quantizer (the export's `quantize.quantize_gguf`, with `allow_requantize`: speed
depends on the format, not on where its weights came from; requantized weights are not for answering),
then measures with llama.cpp on the same threads:

- prompt reading (tokens/s) for 512 tokens and for 2,600 (about Petstore's tool list), best of repeats;
- decoding (tokens/s), one token at a time after a 64-token prompt.

Prints each format's figures and its ratio to Q4_1. No Flask app and no database. Results are recorded
in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from app.serving.default_model import default_gguf_path  # noqa: E402
from app.serving.llama_runtime import open_llama  # noqa: E402
from quantize.gguf import quantize_gguf  # noqa: E402

TYPES = ("Q4_K_M", "Q5_K_M", "Q8_0", "F16")


def measure(path: Path, threads: int, repeats: int) -> tuple[float, float, float]:
    llama = open_llama(model_path=str(path), n_ctx=4096, n_threads=threads, verbose=False)
    try:
        text = " ".join(f"word{i}" for i in range(1000))
        tokens = llama.tokenize(text.encode())[:2600]

        def read(n: int) -> float:
            best = float("inf")
            for _ in range(repeats):
                llama.reset()
                started = time.perf_counter()
                llama.eval(tokens[:n])
                best = min(best, time.perf_counter() - started)
            return n / best

        short, long = read(512), read(2600)
        llama.reset()
        llama.eval(tokens[:64])
        started = time.perf_counter()
        for token in tokens[64:128]:
            llama.eval([token])
        return short, long, 64 / (time.perf_counter() - started)
    finally:
        llama.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    shipped = default_gguf_path()
    rows = [("Q4_1 (shipped)", shipped.stat().st_size, *measure(shipped, args.threads, args.repeats))]
    with tempfile.TemporaryDirectory() as folder:
        for quant_type in TYPES:
            target = Path(folder) / f"{quant_type}.gguf"
            quantize_gguf(shipped, target, quant_type, threads=args.threads, allow_requantize=True)
            rows.append((quant_type, target.stat().st_size, *measure(target, args.threads, args.repeats)))
            print(f"measured {quant_type}", flush=True)
    base = rows[0]
    print()
    print("| format | file | read 512 tok/s | read 2,600 tok/s | decode tok/s | vs Q4_1 (512, 2.6k, dec.) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, size, short, long, decode in rows:
        ratios = f"{short / base[2]:.2f}x / {long / base[3]:.2f}x / {decode / base[4]:.2f}x"
        print(f"| {name} | {size / 1e6:.0f} MB | {short:.0f} | {long:.0f} | {decode:.0f} | {ratios} |")


if __name__ == "__main__":
    main()
