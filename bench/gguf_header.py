"""Reading a GGUF's header: Toolsmith's `read_gguf_header` against the `gguf` library's `GGUFReader`.

Usage:
    .venv/bin/python bench/gguf_header.py [--repeats 5]

Both read the shipped SmolLM2-135M-Instruct (Q4_1, 49k-word vocabulary, 272 tensors) and answer what
the registry keeps: architecture, context length, parameter count, vocabulary size. Each is timed as
the best of `--repeats` reads in this process (the file is in the page cache after the first), and
the script checks the two agree before it prints the ratio. Results are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from app.serving.default_model import default_gguf_path  # noqa: E402
from app.serving.gguf_header import read_gguf_header  # noqa: E402


def with_library(path: Path) -> tuple:
    import gguf

    reader = gguf.GGUFReader(str(path))
    return (
        reader.fields["general.architecture"].contents(),
        reader.fields["llama.context_length"].contents(),
        sum(int(t.n_elements) for t in reader.tensors),
        len(reader.fields["tokenizer.ggml.tokens"].data),
    )


def with_toolsmith(path: Path) -> tuple:
    header = read_gguf_header(path)
    return (
        header.metadata["general.architecture"],
        header.metadata["llama.context_length"],
        header.parameter_count,
        header.metadata["tokenizer.ggml.tokens"].length,
    )


def best_of(repeats: int, read, path: Path) -> tuple[float, tuple]:
    best, answer = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        answer = read(path)
        best = min(best, time.perf_counter() - started)
    return best, answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    path = default_gguf_path()
    import gguf  # noqa: F401  (imported once, outside the timings)

    library_s, expected = best_of(args.repeats, with_library, path)
    toolsmith_s, got = best_of(args.repeats, with_toolsmith, path)
    if got != expected:
        sys.exit(f"the readers disagree: gguf {expected}, Toolsmith {got}")
    print(f"{path.name} ({path.stat().st_size / 1e6:.0f} MB): {got}")
    print(f"| reader | best of {args.repeats} | vs GGUFReader |")
    print("| --- | --- | --- |")
    print(f"| gguf.GGUFReader | {library_s * 1000:.0f} ms | 1.0x |")
    print(f"| read_gguf_header | {toolsmith_s * 1000:.1f} ms | {library_s / toolsmith_s:.0f}x faster |")


if __name__ == "__main__":
    main()
