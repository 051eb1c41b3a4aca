"""Short requests a user might type to try a spec's tools in the playground, such as "Find pet by ID 42".

Built from each operation's summary (or its id) and plausible values for its required parameters: the
first enum value, else an example or default, else a value that fits the format and name (a date, an email,
a small integer within the bounds). Deterministic: the same spec always gives the same prompts.
"""

from __future__ import annotations

import re
from typing import Any

from app.openapi.normalise import NormalisedSpec, Operation, Parameter
from app.openapi.values import types_of

MAX_VALUES = 4
# Base forms of verbs a summary may start with; anything else gets a verb from the HTTP method.
_VERBS = frozenset(
    "add book buy calculate cancel change check create delete download fetch find get list log login logout "
    "look make modify move order patch place post provide put query read register remove rename replace "
    "retrieve return search send set show start stop submit update upload validate view".split()
)
_METHOD_VERBS = {"get": "Get", "post": "Create", "put": "Update", "patch": "Update", "delete": "Delete"}
_FORMAT_SAMPLES = {
    "date": "2024-05-17",
    "date-time": "2024-05-17T09:30:00Z",
    "email": "alex@example.com",
    "uuid": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "uri": "https://example.com",
    "url": "https://example.com",
    "hostname": "example.com",
    "ipv4": "192.0.2.10",
}
_NAME_SAMPLES = {
    "latitude": 37.7749,
    "lat": 37.7749,
    "longitude": -122.4194,
    "lon": -122.4194,
    "lng": -122.4194,
    "limit": 10,
    "offset": 0,
    "page": 1,
    "username": "alice",
    "user": "alice",
    "password": "s3cret-pass",
    "name": "Rex",
    "city": "Lisbon",
    "country": "Portugal",
    "query": "coffee",
    "q": "coffee",
    "email": "alex@example.com",
}


def example_prompts(spec: NormalisedSpec, limit: int = 6) -> list[str]:
    """Up to `limit` distinct natural-language requests, reads (GET) first, deprecated operations last."""
    ordered = sorted(spec.operations, key=lambda op: (op.deprecated, op.method != "get"))
    prompts: list[str] = []
    for op in ordered:
        prompt = operation_prompt(op)
        if prompt and prompt not in prompts:
            prompts.append(prompt)
        if len(prompts) >= limit:
            break
    return prompts


def operation_prompt(op: Operation) -> str:
    """One request for `op`: its summary as an instruction, with values for what it needs."""
    phrase = _instruction(op)
    spoken_words = phrase.lower().split()
    parts: list[str] = []
    first_is_bare = False
    for parameter in _chosen_parameters(op):
        value = _spoken(sample_value(parameter.schema, parameter.name))
        words = _words(parameter.name)
        # "Find pet by ID" already names petId: say "Find pet by ID 42", not "... with pet id 42".
        mentioned = bool(words) and (" ".join(words) in phrase.lower() or words[-1] in spoken_words)
        first_is_bare = first_is_bare or (mentioned and not parts)
        parts.append(value if mentioned else f"{' '.join(words)} {value}")
    parts.extend(_body_parts(op))
    if not parts:
        return phrase
    joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    if first_is_bare:
        return f"{phrase} {joined}"
    return f"{phrase} {'for' if ' with ' in phrase else 'with'} {joined}"


def sample_value(schema: Any, name: str = "") -> Any:
    """A realistic value for a parameter or field: enum, example, default, else by format, name and type."""
    if not isinstance(schema, dict):
        return "example"
    for key in ("enum", "examples"):
        if isinstance(schema.get(key), list) and schema[key]:
            return schema[key][0]
    for key in ("example", "default"):
        if key in schema and schema[key] is not None:
            return schema[key]
    types = types_of(schema)
    if "array" in types:
        return [sample_value(schema.get("items", {}), name)]
    if schema.get("format") in _FORMAT_SAMPLES and ("string" in types or not types):
        return _FORMAT_SAMPLES[schema["format"]]
    words = _words(name)
    key = name.lower() if name.lower() in _NAME_SAMPLES or not words else words[-1]
    if "integer" in types or "number" in types:
        sample = _NAME_SAMPLES.get(key)
        number = sample if isinstance(sample, int | float) else (42 if key.endswith("id") else 5)
        if "integer" in types:
            number = int(number)
        low, high = schema.get("minimum"), schema.get("maximum")
        if isinstance(high, int | float) and number > high:
            number = (low + high) // 2 if isinstance(low, int | float) else high
        if isinstance(low, int | float) and number < low:
            number = low
        return number
    if "boolean" in types:
        return True
    sample = _NAME_SAMPLES.get(key)
    return sample if isinstance(sample, str) else ("example" if not key.endswith("id") else "abc123")


def _instruction(op: Operation) -> str:
    text = re.sub(r"\s+", " ", op.summary).strip().rstrip(".!") if op.summary else ""
    if not text or len(text) > 80:
        text = " ".join(_words(op.operation_id)) or op.path
    words = text.split(" ")
    first = _base_form(words[0].lower())
    rest = [word if _is_acronym(word) else word.lower() for word in words[1:]]
    if first in _VERBS:
        return " ".join([first.capitalize(), *rest])
    verb = _METHOD_VERBS.get(op.method, "Call")
    return " ".join([verb, words[0] if _is_acronym(words[0]) else words[0].lower(), *rest])


def _chosen_parameters(op: Operation) -> list[Parameter]:
    chosen = [p for p in op.parameters if p.required and p.location in ("path", "query")]
    if not chosen:
        chosen = [
            p
            for p in op.parameters
            if p.location == "query" and any(key in p.schema for key in ("enum", "example", "default"))
        ][:1]
    return chosen[:MAX_VALUES]


def _body_parts(op: Operation) -> list[str]:
    body = op.request_body
    if body is None or not isinstance(body.schema, dict) or not body.required:
        return []
    properties = body.schema.get("properties") if isinstance(body.schema.get("properties"), dict) else {}
    parts = []
    for name in body.schema.get("required", []):
        schema = properties.get(name)
        value = sample_value(schema, name) if isinstance(schema, dict) else None
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            parts.append(f"{' '.join(_words(name))} {_spoken(value)}")
    return parts[:MAX_VALUES]


def _spoken(value: Any) -> str:
    if isinstance(value, list):
        return " and ".join(_spoken(item) for item in value[:2])
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [word.lower() for word in re.findall(r"[A-Za-z0-9]+", spaced)]


def _base_form(word: str) -> str:
    """Third person to base form: finds → find, updates → update, searches → search, lists → list."""
    if word in _VERBS or len(word) < 4:
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _is_acronym(word: str) -> bool:
    letters = re.sub(r"[^A-Za-z]", "", word)
    return len(letters) > 1 and letters.isupper()
