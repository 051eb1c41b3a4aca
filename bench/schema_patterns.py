"""Schema checks with patterns: Toolsmith's `SchemaValidator` (patterns through `regex`, with a time
limit) against plain jsonschema (`Draft202012Validator`, patterns through Python's `re`).

Usage:
    .venv/bin/python bench/schema_patterns.py [--values 2000] [--repeats 5]

Two measurements, side by side:
- ordinary patterns (what specs hold: emails, phone numbers, dates, ids, slugs) over `--values`
  arguments each, half matching and half not: the price of the time limit on every check, as the
  best of `--repeats` passes. The two must give the same errors (checked before timing).
- catastrophic patterns (`^(\\w+\\s?)*$`, `^(a|a)*$`) on growing inputs: plain jsonschema's time
  doubles with each character; Toolsmith's stays under its limit (`regex` solves the first outright
  and gives up on the second). Plain jsonschema is stopped at 24 characters, past
  which one check takes minutes.

Results are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from jsonschema import Draft202012Validator  # noqa: E402

from app.schema_check import PATTERN_SECONDS, SchemaValidator  # noqa: E402

SCHEMA = {
    "type": "object",
    "properties": {
        "email": {"type": "string", "pattern": r"^[\w.+-]+@[\w-]+\.[\w.-]+$"},
        "phone": {"type": "string", "pattern": r"^\+?[0-9]{1,3}[ -]?[0-9]{3}[ -]?[0-9]{4}$"},
        "day": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
        "order": {"type": "string", "pattern": r"^ORD-[A-Z0-9]{8}$"},
        "slug": {"type": "string", "pattern": r"^[a-z0-9]+(?:-[a-z0-9]+)*$"},
    },
    "patternProperties": {"^x-[a-z]+$": {"type": "string"}},
}
GOOD = {"email": "ann.lee@mail.example.org", "phone": "+47 555 1234", "day": "2026-11-25",
        "order": "ORD-7F3K9Q2B", "slug": "blue-suede-shoes", "x-trace": "abc"}  # fmt: skip
BAD = {"email": "ann.lee@", "phone": "call me", "day": "25/11/2026", "order": "ord-1",
       "slug": "Blue Suede--Shoes", "x-trace": 5}  # fmt: skip
CATASTROPHIC = [r"^(\w+\s?)*$", r"^(a|a)*$"]


def errors(validator, value) -> list[str]:
    return sorted(error.message for error in validator.iter_errors(value))


def best_of(repeats: int, work) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--values", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    plain, ours = Draft202012Validator(SCHEMA), SchemaValidator(SCHEMA)
    values = [GOOD if i % 2 else BAD for i in range(args.values)]
    assert errors(plain, GOOD) == errors(ours, GOOD) == []
    assert errors(plain, BAD) == errors(ours, BAD) and errors(ours, BAD)
    timings = {
        name: best_of(args.repeats, lambda v=validator: [errors(v, value) for value in values])
        for name, validator in (("jsonschema (re)", plain), ("Toolsmith (regex, limit)", ours))
    }
    base = timings["jsonschema (re)"]
    print(f"Ordinary patterns, {args.values} arguments (best of {args.repeats}):")
    for name, seconds in timings.items():
        print(f"  {name:26s} {seconds * 1000:8.1f} ms  {seconds / base:5.2f}x")

    for pattern in CATASTROPHIC:
        print(f"\nCatastrophic pattern {pattern!r} on 'a' * n + '!' (limit {PATTERN_SECONDS} s):")
        print(f"  {'n':>3s}  {'jsonschema (re)':>16s}  {'Toolsmith':>10s}")
        schema = {"type": "string", "pattern": pattern}
        plain, ours = Draft202012Validator(schema), SchemaValidator(schema)
        for n in (16, 20, 22, 24, 28, 40, 200):
            text = "a" * n + "!"
            slow_s = best_of(1, lambda t=text, v=plain: errors(v, t)) if n <= 24 else None
            slow = f"{slow_s:15.3f}s" if slow_s is not None else "   (minutes+)"
            fast = best_of(1, lambda t=text, v=ours: errors(v, t))
            print(f"  {n:3d}  {slow:>16s}  {fast:9.3f}s")


if __name__ == "__main__":
    main()
