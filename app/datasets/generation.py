"""Synthetic tool-calling datasets from an OpenAPI spec: varied requests, each paired with the exact call.

For every operation, requests are worded from its summary, description and operationId through sentence
frames (imperative, questions, polite and indirect forms, terse), with verb synonyms and the argument values
said in the text ("Find pets with status sold", "Could you look up purchase order #7?"). Values come from
the schemas: enums, examples, defaults, formats (date, date-time, email, uuid, uri, ...), bounds, simple
patterns, and realistic pools chosen by the field's name. Every call is checked with `check_tool_call`
before it is kept, and no user text appears twice. Eval rows use sentence frames held out from that
operation's training rows (so no template id, and no (template, values) pair, is shared) and value
combinations absent from training where the value space allows. Optionally ~10% requests that no tool fits,
answered in plain text, and DPO pairs whose rejected call is wrong in one named way. Pure and deterministic:
the same spec, options and seed give the same rows.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from app.openapi.http_check import check_tool_call
from app.openapi.normalise import NormalisedSpec, Operation
from app.openapi.tools import argument_names, spec_tools
from app.openapi.values import types_of
from app.schema_check import PatternTimeout, pattern_search

try:  # the stdlib's own regex parser turns a `pattern` into a string that matches it
    import re._parser as _regex  # Python 3.11+
except ImportError:  # pragma: no cover
    import sre_parse as _regex  # type: ignore[no-redef]

REJECTION_KINDS = ("wrong_operation", "missing_required_argument", "wrong_type", "hallucinated_argument")
UNNEEDED_CALL = "unneeded_call"  # DPO rows for requests no tool fits: a call is the rejected answer
IRRELEVANT_SHARE = 0.1
MAX_TEXT = 700
MAX_PATTERN_STEPS = 20_000  # regex parse-tree nodes walked to draw one value from a spec's `pattern`
MAX_ITEMS = 50  # items of one array argument
# What drawing a value for a schema no value meets raises (minimum above maximum, a step of 1e-320, bounds
# of 400 digits, a pattern of lone surrogates): that value is left out, and the attempt fails its check.
UNDRAWABLE = (ValueError, OverflowError, UnicodeError)
_ATTEMPTS_PER_ROW = 8
_PROBES = 60  # argument sets drawn to tell a small value space from a large one
_FEWEST_TO_SPLIT = 6  # distinct value combinations needed before eval keeps some to itself

# ---------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class GenerationOptions:
    samples_per_operation: int = 20
    seed: int = 0
    include_irrelevant: bool = True
    dpo: bool = False
    eval_fraction: float = 0.1
    tools_per_row: int = 0  # 0: every row offers all the spec's tools; else the called one(s) + others


@dataclass
class GeneratedDataset:
    """The rows (SFT or DPO), their split counts, a message for people, and phrasing variety per operation."""

    rows: list[dict[str, Any]]
    train_count: int
    eval_count: int
    message: str
    templates_per_operation: dict[str, int] = field(default_factory=dict)
    shortfalls: dict[str, int] = field(default_factory=dict)  # operation → rows asked for but not made

    def stats(self) -> dict[str, Any]:
        """Counts per split, irrelevant rows, templates per operation and split, DPO rejection kinds."""
        operations: dict[str, dict[str, Any]] = {}
        rejections: Counter[str] = Counter()
        irrelevant = 0
        for row in self.rows:
            meta = row["meta"]
            if "rejection" in meta:
                rejections[meta["rejection"]] += 1
            if meta["operation"] is None:
                irrelevant += 1
                continue
            entry = operations.setdefault(meta["operation"], {"rows": 0, "train": set(), "eval": set()})
            entry["rows"] += 1
            entry[row["split"]].add(meta["template"])
        return {
            "rows": len(self.rows),
            "train": self.train_count,
            "eval": self.eval_count,
            "irrelevant": irrelevant,
            "operations": {
                name: {
                    "rows": e["rows"],
                    "train_templates": len(e["train"]),
                    "eval_templates": len(e["eval"]),
                }
                for name, e in operations.items()
            },
            "rejections": dict(sorted(rejections.items())),
        }


@dataclass
class _Sample:
    text: str
    split: str
    template: str
    operation: str | None
    arguments: dict[str, Any] | None
    reply: str = ""

    @property
    def values(self) -> str:
        return canonical(self.arguments)


def canonical(value: Any) -> str:
    """Canonical JSON text: sorted keys, no spaces; equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# ------------------------------------------------------------------------------------------ entry point


def generate_dataset(
    spec: NormalisedSpec,
    options: GenerationOptions,
    progress: Callable[[int, int], None] | None = None,
) -> GeneratedDataset:
    """SFT rows (or DPO pairs) for every operation of `spec`; `progress(done, total)` after each one."""
    if not spec.operations:
        why = f" {spec.message}" if spec.message else ""
        return GeneratedDataset([], 0, 0, "The spec has no operations: nothing to generate." + why)
    samples = int(options.samples_per_operation)
    if samples < 1:
        return GeneratedDataset([], 0, 0, "Ask for at least one sample per operation.")
    eval_fraction = min(max(float(options.eval_fraction), 0.0), 0.9)
    checker = _Checker(spec)
    seen: set[str] = set()
    generators = [_OperationRows(op, options.seed, checker) for op in spec.operations]
    samples_out: list[_Sample] = []
    shortfalls: dict[str, int] = {}
    for index, generator in enumerate(generators):
        made = generator.samples(samples, eval_fraction, seen)
        if len(made) < samples:
            shortfalls[generator.op.operation_id] = samples - len(made)
        samples_out.extend(made)
        if progress is not None:
            progress(index + 1, len(generators))
    called = len(samples_out)
    if options.include_irrelevant and called:
        count = round(called * IRRELEVANT_SHARE / (1 - IRRELEVANT_SHARE))
        samples_out.extend(_Irrelevant(spec, generators, options.seed).samples(count, eval_fraction, seen))
    tools = spec_tools(spec)
    if options.dpo:
        rows = _Rejections(generators, checker, options.seed).rows(samples_out, tools)
    else:
        rows = [_sft_row(sample, tools) for sample in samples_out]
    if options.tools_per_row > 0:
        rows = _offer_subsets(rows, options.tools_per_row, options.seed)
    random.Random(f"{options.seed}/order").shuffle(rows)
    eval_count = sum(1 for row in rows if row["split"] == "eval")
    templates: dict[str, set[str]] = {}
    for sample in samples_out:
        if sample.operation is not None:
            templates.setdefault(sample.operation, set()).add(sample.template)
    irrelevant = len(samples_out) - called
    message = (
        f"Generated {len(rows)} {'preference pairs' if options.dpo else 'rows'} "
        f"({len(rows) - eval_count} train, {eval_count} eval) for {len(generators)} operations"
        + (f", {irrelevant} of them requests no tool fits." if irrelevant else ".")
    )
    if shortfalls:
        short = ", ".join(f"{name} ({missing} fewer)" for name, missing in list(shortfalls.items())[:5])
        message += f" Some operations ran out of distinct valid requests: {short}."
        # An operation with no row at all has a parameter no generated value satisfies (an `enum: [null]`
        # on a string, a required `type: null`): say what its checks refused.
        never = [
            name
            for name, missing in shortfalls.items()
            if missing == samples and name in checker.last_problem
        ]
        for name in never[:3]:
            message += f" {name} never passed its checks: {_clipped(checker.last_problem[name])}"
    return GeneratedDataset(
        rows=rows,
        train_count=len(rows) - eval_count,
        eval_count=eval_count,
        message=message,
        templates_per_operation={name: len(ids) for name, ids in templates.items()},
        shortfalls=shortfalls,
    )


def _clipped(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _offer_subsets(rows: list[dict[str, Any]], count: int, seed: int) -> list[dict[str, Any]]:
    """Each row offers the tools it calls (chosen and rejected) plus random others, `count` in all.

    All of a big spec's tools make every prompt thousands of tokens; a tiny model on a CPU trains far
    faster on a few, and still learns to pick among them. Spec order is kept so prompts stay stable.
    """
    rng = random.Random(f"{seed}/tools")
    subset_rows = []
    for row in rows:
        tools = row["tools"]
        messages = [*row.get("messages", []), *row.get("chosen", []), *row.get("rejected", [])]
        called = {c["function"]["name"] for m in messages for c in m.get("tool_calls") or []}
        others = [t["function"]["name"] for t in tools if t["function"]["name"] not in called]
        keep = called | set(rng.sample(others, max(0, min(len(others), count - len(called)))))
        subset_rows.append({**row, "tools": [t for t in tools if t["function"]["name"] in keep]})
    return subset_rows


def _call_message(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    call = {"type": "function", "function": {"name": name, "arguments": arguments}}
    return {"role": "assistant", "content": "", "tool_calls": [call]}


def _answer(sample: _Sample) -> dict[str, Any]:
    if sample.operation is None or sample.arguments is None:
        return {"role": "assistant", "content": sample.reply}
    return _call_message(sample.operation, sample.arguments)


def _meta(sample: _Sample) -> dict[str, Any]:
    return {"operation": sample.operation, "template": sample.template, "values": sample.values}


def _sft_row(sample: _Sample, tools: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": sample.text}, _answer(sample)],
        "tools": tools,
        "split": sample.split,
        "meta": _meta(sample),
    }


class _Checker:
    """`check_tool_call`, remembered per (tool, arguments): values repeat, and checking is the slow part."""

    def __init__(self, spec: NormalisedSpec):
        self.spec = spec
        self._failed: dict[tuple[str, str], tuple[str, ...]] = {}
        self.last_problem: dict[str, str] = {}  # tool → what its latest refused call did wrong

    def failed(self, name: str, arguments: dict[str, Any]) -> tuple[str, ...]:
        key = (name, canonical(arguments))
        if key not in self._failed:
            checks = check_tool_call(self.spec, name, arguments)
            refused = [check for check in checks if not check.ok and not check.skipped]
            if refused:
                self.last_problem[name] = refused[0].detail
            self._failed[key] = tuple(check.name for check in checks if not check.ok)
        return self._failed[key]


# ------------------------------------------------------------------------------------------- wording

# Verbs a summary may start with; a summary starting with a noun ("Order history") gets the method's verb.
_VERBS = frozenset(
    "accept add apply approve archive assign attach book buy calculate cancel change charge check "
    "clear close confirm convert count create deactivate delete deliver detach download edit estimate "
    "execute export fetch find generate get import invite link list load lock log login logout look "
    "make mark modify move notify obtain open pause pay perform place provide publish query read "
    "refresh refund register reject remove rename replace report request reset resume retrieve return "
    "revoke run save search send set share ship show sign start stop submit subscribe sync track "
    "transfer trigger unlink unlock unsubscribe update upload upsert validate verify view".split()
)
_VERB_ALIASES = {"return": "get", "obtain": "get", "read": "get", "login": "log in", "logout": "log out"}
_METHOD_VERBS = {"get": "get", "post": "create", "put": "update", "patch": "update", "delete": "delete"}
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "get": ("get", "get", "fetch", "retrieve", "show me", "look up", "pull up"),
    "find": ("find", "find", "look up", "search for", "get", "fetch"),
    "list": ("list", "list", "show me", "get", "give me"),
    "delete": ("delete", "delete", "remove", "get rid of"),
    "remove": ("remove", "delete"),
    "create": ("create", "create", "add", "set up", "make"),
    "add": ("add", "add", "create", "register"),
    "update": ("update", "update", "modify", "change", "edit"),
    "modify": ("modify", "update", "change"),
    "place": ("place", "place", "submit", "put in"),
    "upload": ("upload", "upload", "send"),
    "log in": ("log in", "sign in"),
    "log out": ("log out", "sign out"),
    "log": ("log", "sign"),
}
_FRAMES: dict[str, tuple[str, ...]] = {
    "imperative": ("{core}.", "{core}"),
    "please": ("Please {core}.", "{core}, please.", "Please {core}, thanks."),
    "can_you": ("Can you {core}?", "Can you {core} for me?"),
    "could_you": ("Could you {core}?", "Could you please {core}?"),
    "would_you_mind": ("Would you mind {ing}?", "Would you mind {ing} for me?"),
    "need_to": ("I need to {core}.", "I have to {core}."),
    "want_to": ("I'd like to {core}.", "I want to {core}."),
    "need_you": ("I need you to {core}.", "I'd like you to {core}."),
    "help_me": ("Help me {core}.", "Can you help me {core}?"),
    "go_ahead": ("Go ahead and {core}.", "Let's {core}."),
    "wondering": ("I was wondering if you could {core}.", "Any chance you could {core}?"),
    "possible": ("Is it possible to {core}?", "Is there a way to {core}?"),
    "task": ("Here's what I need: {core}.", "Task for you: {core}."),
    "terse": ("{core}",),
    "values_first": (),  # "For pet 42, delete a pet." / "Using status sold, find pets."
}
_PREFIXES = ("Hi, ", "Hey, ", "Hello! ", "OK, ", "So, ", "Hi there. ")
_SUFFIXES = (" Thanks!", " Thank you.", " Thanks in advance.", " Cheers.")
_ACRONYMS = {
    "id": "ID", "ids": "IDs", "url": "URL", "urls": "URLs", "uri": "URI", "api": "API", "uuid": "UUID",
    "ip": "IP", "sku": "SKU", "iso": "ISO", "json": "JSON", "http": "HTTP", "sms": "SMS", "eta": "ETA",
}  # fmt: skip
_DOUBLED = frozenset("get put set stop shop log run plan drop swap tag ship chat map".split())
_NOISE = re.compile(
    r"\s+(?:with|using|from)\s+(?:the\s+)?"
    r"(?:form data|form|given input array|input array|array input|list input)$",
    re.I,
)
_BY = re.compile(r"^(?P<base>.*?)\s+by\s+(?:its\s+|the\s+)?(?P<target>[A-Za-z][A-Za-z ]{0,30})$")
_DESCRIPTION = re.compile(
    r"^(?:the\s+[\w\s-]{1,40}?\s+endpoint\s+|this\s+(?:[\w-]+\s+){0,2}?(?:api|endpoint|operation|call|method)\s+)?"
    r"(?P<verb>[A-Za-z]+)\s+(?P<rest>.+)$",
    re.I,
)
_ARTICLES = ("a ", "an ", "the ")
_VERSION = re.compile(r"v\d+(?:\.\d+)*$", re.I)
_FIELD = "body field:"  # marks a forced body field among forced argument names
_PRONOUNS = frozenset(("", "me", "it", "this", "that", "them", "one"))
_ADJECTIVES = frozenset(("single", "specific", "existing", "given", "particular"))
# frames where the speaker does the action: "I need to show me ..." would be wrong
_FIRST_PERSON = frozenset(("need_to", "want_to", "help_me", "possible", "go_ahead"))


@lru_cache(maxsize=8192)
def _words(name: str) -> tuple[str, ...]:
    """`findPetsByStatus` → ("find", "pets", "by", "status"); `api_key` → ("api", "key")."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    return tuple(word.lower() for word in re.findall(r"[A-Za-z0-9]+", spaced))


def _key(name: str) -> str:
    return "".join(_words(name))


def _said(name: str) -> str:
    """A field name as people say it: `photoUrls` → "photo URLs", `api_key` → "API key"."""
    return " ".join(_ACRONYMS.get(word, word) for word in _words(name)) or str(name)


def _noun(name: str) -> str:
    """The thing an identifier names: `petId` → "pet", `username` → "user", `dataset` → "dataset"."""
    words = _words(name)
    if len(words) > 1 and words[-1] in ("id", "uuid", "key", "code", "number", "no"):
        return _said(" ".join(words[:-1]))
    if len(words) == 1 and words[0].endswith("name") and len(words[0]) > 4:
        return words[0][:-4]
    if len(words) == 1 and words[0].endswith("id") and len(words[0]) > 3:
        return words[0][:-2]
    return _said(name)


def _id_like(name: str) -> bool:
    words = _words(name)
    return bool(words) and (words[-1] in ("id", "uuid") or words[-1].endswith("id") and len(words[-1]) > 3)


def _is_acronym(word: str) -> bool:
    letters = re.sub(r"[^A-Za-z]", "", word)
    return len(letters) > 1 and letters.isupper()


def _base_verb(word: str) -> str:
    word = word.lower()
    if word in _VERBS or len(word) < 4:
        return word
    if word.endswith("ies") and word[:-3] + "y" in _VERBS:
        return word[:-3] + "y"
    if word.endswith("ed"):
        for stem in (word[:-2], word[:-1], word[:-3]):
            if stem in _VERBS:
                return stem
    if word.endswith(("sses", "shes", "ches", "xes", "zes")) and word[:-2] in _VERBS:
        return word[:-2]
    if word.endswith("s") and word[:-1] in _VERBS:
        return word[:-1]
    return word


def _gerund(phrase: str) -> str:
    first, _, rest = phrase.partition(" ")
    if first in _DOUBLED:
        first += first[-1] + "ing"
    elif first.endswith("ie"):
        first = first[:-2] + "ying"
    elif first.endswith("e") and not first.endswith(("ee", "ye", "oe")):
        first = first[:-1] + "ing"
    else:
        first += "ing"
    return f"{first} {rest}".strip()


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(parts: list[str], last: str = "and") -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + f" {last} " + parts[-1]


@dataclass(frozen=True)
class _Phrase:
    source: str  # summary | description | operation_id | path
    verb: str  # base form, lower case ("get", "log in")
    rest: str  # what the verb acts on ("pets by status"), may be empty


def _verb_phrase(
    text: str, method: str, source: str, need_verb: bool = False, common: frozenset[str] = frozenset()
) -> _Phrase | None:
    text = re.sub(r"\s+", " ", text.replace("it's", "its")).strip().rstrip(".!")
    words = text.split(" ")
    if not text or not words:
        return None
    verb = _base_verb(words[0])
    # "Finds Pets by Status" is title case: lower it; "the Uber products" keeps its proper noun
    title_case = sum(word[:1].isupper() for word in words) >= max(2, 0.6 * len(words))
    # a capitalised word the path or operationId also uses ("Finds Pets by tags") is a common noun
    rest = [
        word
        if _is_acronym(word) or not title_case and word[:1].isupper() and _common(word) not in common
        else word.lower()
        for word in words
    ]
    rest[0] = words[0] if _is_acronym(words[0]) else words[0].lower()
    if verb in _VERBS:
        rest = rest[1:]
    elif need_verb:
        return None
    else:
        verb = _METHOD_VERBS.get(method, "call")
    if verb == "provide" and not re.match(r"(?:a |the )?(?:list|information|details)\b", " ".join(rest)):
        return None
    verb = _VERB_ALIASES.get(verb, "get" if verb == "provide" else verb)
    if verb == "log" and rest and rest[0] in ("in", "out"):
        verb, rest = ("log out" if rest[0] == "out" else "log in"), rest[1:]
        if rest and rest[0] == "of":
            rest = rest[1:]
    phrase = re.sub(r"\s+resource$", "", _NOISE.sub("", " ".join(rest))).strip()
    phrase = re.sub(r"\b(\w+) (?:ID|id|Id)$", lambda m: f"{m[1]} ID", phrase)
    return _Phrase(source, verb, phrase)


def _common(word: str) -> str:
    word = word.lower()
    return word[:-1] if word.endswith("s") and len(word) > 3 else word


def _phrases(op: Operation) -> list[_Phrase]:
    """The ways to say what `op` does: from its summary, its description's first sentence, its id."""
    found: list[_Phrase | None] = []
    common = frozenset(_common(word) for word in _words(f"{op.operation_id} {op.path}"))
    if op.summary and len(op.summary) <= 90:
        found.append(_verb_phrase(op.summary, op.method, "summary", common=common))
    sentence = (
        re.split(r"(?<=[.!?])\s|\n", op.description.strip())[0].strip().rstrip(".!") if op.description else ""
    )
    match = _DESCRIPTION.match(sentence)
    unsafe = re.search(r"[<>=\[\]{}`|/\\'\"]|\b(?:when|if|only|try|can|will|based)\b|_|\d", sentence, re.I)
    if match and len(sentence) <= 100 and not unsafe:
        found.append(_verb_phrase(f"{match['verb']} {match['rest']}", op.method, "description", True, common))
    path_words = re.findall(r"[a-zA-Z0-9]+", op.path.replace("{", " ").replace("}", " "))
    made_up = "_".join([op.method, *path_words] if path_words else [op.method, "root"])[:64]
    if re.fullmatch(
        re.escape(made_up[:58]) + r"[a-zA-Z0-9_]{0,6}?(?:_\d+)?", op.operation_id
    ):  # normalise named it after the method and path: say what the path is about instead
        found.append(_path_phrase(op))
    else:
        found.append(_verb_phrase(" ".join(_words(op.operation_id)), op.method, "operation_id", True))
    unique: dict[tuple[str, str], _Phrase] = {}
    for phrase in found:
        if phrase is not None and (phrase.rest.lower() not in _PRONOUNS or phrase.source == "summary"):
            unique.setdefault((phrase.verb, phrase.rest.lower()), phrase)
    return list(unique.values()) or [_path_phrase(op)]


def _path_phrase(op: Operation) -> _Phrase:
    """ "PUT /items/{code}" → "update item"; "GET /things" → "list things"."""
    segments = [
        s for s in op.path.split("/") if s and s.lower() not in ("api", "rest") and not _VERSION.match(s)
    ]
    one = bool(segments) and "{" in segments[-1] or op.method in ("post", "put", "patch")
    while segments and "{" in segments[-1]:
        segments.pop()
    trailing: list[str] = []  # "/estimates/price" → "estimates price"; "/users/{id}/orders" → "orders"
    while segments and "{" not in segments[-1] and len(trailing) < 2:
        trailing.insert(0, segments.pop())
    words = [word for segment in trailing for word in _words(segment)] or ["item"]
    if one:
        words[-1] = _singular(words[-1])
    plural = words[-1].endswith("s") and not one
    verb = "list" if op.method == "get" and plural else _METHOD_VERBS.get(op.method, "call")
    return _Phrase("path", verb, " ".join(words))


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


# -------------------------------------------------------------------------------------------- values

_PET_NAMES = ("Rex", "Bella", "Max", "Luna", "Charlie", "Milo", "Daisy", "Coco", "Rocky", "Nala", "Oscar")
_FIRST = ("Alice", "Bruno", "Chen", "Dana", "Emeka", "Fatima", "Hugo", "Ingrid", "Jonas", "Keiko", "Lucia")
_LAST = ("Johnson", "Silva", "Wang", "Okafor", "Novak", "Haddad", "Garcia", "Lindqvist", "Tanaka", "Rossi")
_THINGS = ("Atlas", "Orion", "Maple", "Summit", "Harbor", "Nova", "Cedar", "Aurora", "Falcon", "Juniper")
_CITIES = (
    ("Lisbon", 38.7223, -9.1393), ("Paris", 48.8566, 2.3522), ("Berlin", 52.52, 13.405),
    ("Tokyo", 35.6762, 139.6503), ("Toronto", 43.6532, -79.3832), ("Austin", 30.2672, -97.7431),
    ("Nairobi", -1.2921, 36.8219), ("Sydney", -33.8688, 151.2093), ("San Francisco", 37.7749, -122.4194),
)  # fmt: skip
_TAGS = ("friendly", "puppy", "vaccinated", "indoor", "senior", "playful", "trained")
_URLS = tuple(f"https://{host}/{path}" for host, path in [
    ("example.com", "photos/rex.jpg"), ("cdn.example.org", "img/luna.png"), ("example.net", "pets/max-1.jpg"),
    ("images.example.com", "a/bella.jpeg"), ("example.com", "uploads/2024/milo.png"),
])  # fmt: skip
_POOLS: dict[str, tuple[str, ...]] = {
    "firstname": _FIRST, "givenname": _FIRST, "lastname": _LAST, "surname": _LAST, "familyname": _LAST,
    "username": ("alice", "bruno_s", "chen.wei", "dana99", "emeka_o", "fatima.h", "hugo42", "ingrid_l"),
    "password": ("s3cret-Pass", "hunter2!", "Tr0ub4dor&3", "correct-horse-42", "P@ssw0rd2024"),
    "phone": ("+1-555-0134", "+44-20-7946-0958", "+351-912-345-678", "555-0199", "+81-3-1234-5678"),
    "city": tuple(city for city, _, _ in _CITIES),
    "country": ("Portugal", "Japan", "Canada", "Kenya", "Brazil"),
    "address": ("12 Main Street", "221B Baker Street", "5 Rua Augusta", "77 Elm Avenue"),
    "zip": ("94105", "10115", "1100-148", "60614"), "postalcode": ("94105", "10115", "1100-148", "60614"),
    "title": ("Weekly report", "Team offsite", "Quarterly review", "Spring sale"),
    "description": ("Needs a quick check-up", "Deliver after 5pm", "Loves long walks", "First visit"),
    "comment": ("Looks great", "Please double-check this", "Urgent", "Thanks for the quick reply"),
    "message": ("See you tomorrow", "Your order has shipped", "Meeting moved to 3pm"),
    "tag": _TAGS, "categoryname": ("Dogs", "Cats", "Birds", "Fish", "Reptiles"),
    "category": ("Dogs", "Cats", "Birds", "Fish", "Reptiles"), "tagname": _TAGS, "tagsname": _TAGS,
    "color": ("red", "blue", "green", "black", "white"), "url": _URLS, "uri": _URLS, "link": _URLS,
    "photourl": _URLS, "imageurl": _URLS, "image": _URLS, "website": ("https://example.com",),
    "query": ("golden retriever", "coffee", "wireless headphones", "vegan recipes"),
    "q": ("golden retriever", "coffee", "running shoes", "jazz"), "search": ("coffee", "running shoes"),
    "keyword": ("coffee", "robotics", "solar"),
    "criteria": ("*:*", "patentTitle:robot", "inventorName:smith"),
    "language": ("en", "fr", "de", "es", "pt"), "lang": ("en", "fr", "de", "es"),
    "locale": ("en-US", "pt-PT"),
    "currency": ("USD", "EUR", "GBP", "JPY"), "version": ("v1", "v2"), "format": ("json", "csv", "xml"),
    "sort": ("name", "created_at", "price"), "sortby": ("name", "created_at"), "order": ("asc", "desc"),
    "additionalmetadata": ("front view", "taken at the park", "profile photo", "vet record"),
    "metadata": ("front view", "profile photo", "scanned copy"),
    "file": ("rex.jpg", "photo.png", "scan.pdf", "avatar.jpg"), "filename": ("rex.jpg", "report.pdf"),
    "status": ("active", "pending", "available", "inactive"), "type": ("standard", "premium", "basic"),
    "apikey": ("sk-live-4f9a2c", "a1b2c3d4e5f6", "tok-83jd92ks"), "key": ("a1b2c3d4e5f6", "k-7781-xz"),
    "token": ("tok-83jd92ks", "eyJhbGciOi.abc.def"),
}  # fmt: skip
_INT_CHOICES: dict[str, tuple[int, ...]] = {
    "limit": (5, 10, 20, 25, 50, 100), "pagesize": (10, 20, 50), "perpage": (10, 20, 50),
    "size": (10, 20, 50), "offset": (0, 10, 20, 50, 100), "start": (0, 10, 20, 50), "rows": (10, 20, 50, 100),
    "skip": (0, 10, 20), "top": (5, 10, 20),
}  # fmt: skip
_INT_RANGES: dict[str, tuple[int, int]] = {
    "page": (1, 12), "quantity": (1, 12), "qty": (1, 12), "count": (1, 20), "age": (1, 15),
    "year": (1995, 2025), "userstatus": (0, 3), "rating": (1, 5), "stars": (1, 5), "priority": (1, 5),
    "level": (1, 10), "port": (1024, 9000), "price": (5, 500), "amount": (5, 500), "total": (5, 900),
    "cost": (5, 500), "days": (1, 30), "hours": (1, 48), "minutes": (5, 120), "duration": (5, 120),
    "weight": (1, 40), "height": (100, 2000), "width": (100, 2000), "status": (0, 3),
}  # fmt: skip
_MAP_KEYS = ("env", "team", "region", "owner", "tier", "project")
_FIELD_WEIGHTS = {"id": 0.2, "name": 3.0, "username": 3.0, "email": 2.0, "title": 2.0}
_PERSON_WORDS = frozenset(
    "user users person people customer customers owner employee member contact author".split()
)
_PET_WORDS = frozenset("pet pets animal animals dog dogs cat cats".split())


class _Values:
    """Realistic values for schemas; `row` ties values of one call together (start/end coordinates)."""

    def __init__(self, rng: random.Random, context: set[str]):
        self.rng = rng
        if context & _PET_WORDS:
            self.names = _PET_NAMES
        elif context & _PERSON_WORDS:
            self.names = tuple(f"{first} {last}" for first, last in zip(_FIRST, _LAST, strict=False))
        else:
            self.names = _THINGS

    def value(self, schema: Any, name: str, parent: str = "", depth: int = 0, row: dict | None = None) -> Any:
        row = {} if row is None else row
        rng = self.rng
        if not isinstance(schema, dict):
            return self._string({}, name, parent, row)
        schema = _resolved(schema, rng)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            options = [item for item in enum if item is not None] or enum
            return rng.choice(options)
        types = [kind for kind in types_of(schema) if kind != "null"] or _implied_types(schema)
        if not types:
            return None
        kind = types[0] if len(types) == 1 else rng.choice(types)
        examples = _examples(schema, kind)
        has_pool = (
            self._pool(name, parent) is not None
            or _number_hint(name)
            or _key(name) in ("name", "email")
            or schema.get("format") in _FORMATS
        )
        if examples and rng.random() < (0.25 if has_pool else 0.75):
            return rng.choice(examples)
        if kind == "object":
            return self.object(schema, name, depth, row)
        if kind == "array":
            return self._array(schema, name, parent, depth, row)
        if kind == "boolean":
            return rng.random() < 0.5
        if kind in ("integer", "number"):
            return self._number(schema, name, kind == "integer", row)
        return self._string(schema, name, parent, row)

    def object(
        self, schema: dict, name: str, depth: int, row: dict, force: frozenset[str] = frozenset()
    ) -> dict:
        rng = self.rng
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        required = [key for key in schema.get("required", []) if isinstance(key, str)]
        optional = [
            key
            for key, sub in properties.items()
            if key not in required and not (isinstance(sub, dict) and sub.get("readOnly"))
        ]
        required += [key for key in properties if key in force and key not in required]
        extra = rng.choice((0, 0, 1, 1, 2)) if required else rng.randint(1, 2 if depth else 3)
        extra = 0 if depth >= 2 and required else extra
        # people rarely set an `id` and usually name a thing by its name, username, email or title
        weights = [_FIELD_WEIGHTS.get(_key(key), 1.0) for key in optional]
        chosen: list[str] = []
        pool = list(optional)
        while pool and len(chosen) < min(extra, len(optional)):
            pick = rng.choices(range(len(pool)), weights=weights)[0]
            chosen.append(pool.pop(pick))
            weights.pop(pick)
        keys = [key for key in properties if key in required or key in chosen]
        keys += [key for key in required if key not in properties]
        if not keys and not properties:
            extra_schema = schema.get("additionalProperties")
            if isinstance(extra_schema, dict):
                keys = rng.sample(_MAP_KEYS, rng.randint(1, 2))  # a free-form map: keys people use
                return {key: self.value(extra_schema, key, name, depth + 1, row) for key in keys}
            return {}
        return {key: self.value(properties.get(key, {}), key, name, depth + 1, row) for key in keys}

    def _array(self, schema: dict, name: str, parent: str, depth: int, row: dict) -> list:
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        # More items than a request can say are no use (and a minItems of millions would take minutes).
        low = min(max(int(schema.get("minItems", 1) or 1), 1), MAX_ITEMS)
        high = int(schema.get("maxItems", low + 2))
        cap = 3 if isinstance(items.get("enum"), list) else 2
        count = self.rng.randint(low, max(low, min(high, cap)))
        out: list[Any] = []
        for _ in range(count * 4):
            item = self.value(items, name, parent, depth + 1, row)
            if item not in out:
                out.append(item)
            if len(out) == count:
                break
        return out

    def _number(self, schema: dict, name: str, integer: bool, row: dict) -> int | float:
        rng, key, words = self.rng, _key(name), _words(name)
        last = words[-1] if words else ""
        value: float
        if last in ("latitude", "lat", "longitude", "lon", "lng", "long"):
            city = row.setdefault("city", rng.choice(_CITIES))  # start and end of a trip in one city
            value = round((city[1] if last.startswith("lat") else city[2]) + rng.uniform(-0.06, 0.06), 4)
        elif key in _INT_CHOICES or last in _INT_CHOICES:
            value = rng.choice(_INT_CHOICES.get(key) or _INT_CHOICES[last])
        elif key in _INT_RANGES or last in _INT_RANGES:
            value = rng.randint(*(_INT_RANGES.get(key) or _INT_RANGES[last]))
            if not integer and (key in ("price", "amount", "total", "cost") or last in ("price", "amount")):
                value = round(value + rng.choice((0, 0.5, 0.99, 0.25)), 2)
        elif _id_like(name) or key == "id":
            value = rng.randint(1, 99) if rng.random() < 0.5 else rng.randint(100, 9999)
        else:
            value = rng.randint(1, 100) if integer or rng.random() < 0.4 else round(rng.uniform(1, 100), 2)
        return _within(value, schema, integer, rng)

    def _string(self, schema: dict, name: str, parent: str, row: dict) -> str:
        rng = self.rng
        fmt = schema.get("format")
        maker = _FORMATS.get(fmt) if isinstance(fmt, str) else None
        if maker is not None:
            text = maker(rng)
        elif _words(name) and _words(name)[-1] == "email":
            text = f"{rng.choice(_FIRST).lower()}.{rng.choice(_LAST).lower()}@example.com"
        else:
            pool = self._pool(name, parent)
            if pool is None and _key(name) == "name":
                pool = self.names
            if pool is not None:
                text = rng.choice(pool)
            elif _id_like(name) or _key(name).endswith(("code", "number", "ref")):
                text = rng.choice(("A", "B", "K", "X", "ZX")) + str(rng.randint(1000, 99999))
            else:
                text = rng.choice(_THINGS).lower() + rng.choice(("", "", "-2", "-main", "_v2"))
        low, high = schema.get("minLength"), schema.get("maxLength")
        if isinstance(low, int) and len(text) < low:
            low = min(low, MAX_TEXT + 1)  # longer is no request anyway (and 10**8 characters is a gigabyte)
            text = (text + "-" + "abcdefghij" * low)[:low] if low > len(text) + 1 else text + "x"
        if isinstance(high, int) and high >= 1 and len(text) > high:
            text = text[:high]
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and not _search(pattern, text):
            text = _from_pattern(pattern, rng) or text
        return text

    def _pool(self, name: str, parent: str) -> tuple[str, ...] | None:
        words = _words(name)
        keys = [_key(parent) + _key(name), _key(name), _key(name).rstrip("s")]
        if words:
            keys += [words[-1], words[-1].rstrip("s")]
        return next((_POOLS[key] for key in keys if key and key in _POOLS), None)


def _number_hint(name: str) -> bool:
    words = _words(name)
    last = words[-1] if words else ""
    return _key(name) in _INT_CHOICES or _key(name) in _INT_RANGES or last in ("latitude", "longitude", "lat")


def _resolved(schema: dict, rng: random.Random) -> dict:
    """allOf merged in; one branch of anyOf / oneOf (a non-null one first) merged in."""
    if not any(key in schema for key in ("allOf", "anyOf", "oneOf")):
        return schema
    merged = {key: value for key, value in schema.items() if key not in ("allOf", "anyOf", "oneOf")}
    parts = [part for part in schema.get("allOf", []) if isinstance(part, dict)]
    for key in ("oneOf", "anyOf"):
        branches = [b for b in schema.get(key, []) if isinstance(b, dict) and types_of(b) != ["null"]]
        if branches:
            parts.append(branches[0] if rng.random() < 0.7 else rng.choice(branches))
    for part in parts:
        part = _resolved(part, rng)
        for key, value in part.items():
            if key == "properties" and isinstance(value, dict):
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required" and isinstance(value, list):
                merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
            else:
                merged.setdefault(key, value)
    return merged


def _implied_types(schema: dict) -> list[str]:
    if isinstance(schema.get("properties"), dict) or isinstance(schema.get("additionalProperties"), dict):
        return ["object"]
    if "items" in schema:
        return ["array"]
    if any(key in schema for key in ("minimum", "maximum", "multipleOf")):
        return ["number"]
    return ["string"]


def _examples(schema: dict, kind: str) -> list[Any]:
    found: list[Any] = []
    if isinstance(schema.get("examples"), list):
        found += schema["examples"]
    for key in ("example", "default"):
        if key in schema:
            found.append(schema[key])
    expected = {"string": str, "integer": int, "number": int | float, "boolean": bool, "array": list}
    wanted = expected.get(kind, dict)
    return [
        value
        for value in found
        if isinstance(value, wanted)
        and not (kind in ("integer", "number") and isinstance(value, bool))
        and value not in ("", [], {})
    ]


def _within(value: float, schema: dict, integer: bool, rng: random.Random) -> int | float:
    """`value`, or one drawn inside the schema's bounds when it falls outside them."""
    low, high = -math.inf, math.inf
    if isinstance(schema.get("minimum"), int | float):
        low = schema["minimum"]
    if isinstance(schema.get("exclusiveMinimum"), int | float) and not isinstance(
        schema["exclusiveMinimum"], bool
    ):
        low = max(low, schema["exclusiveMinimum"] + (1 if integer else 0.01))
    if isinstance(schema.get("maximum"), int | float):
        high = schema["maximum"]
    if isinstance(schema.get("exclusiveMaximum"), int | float) and not isinstance(
        schema["exclusiveMaximum"], bool
    ):
        high = min(high, schema["exclusiveMaximum"] - (1 if integer else 0.01))
    if schema.get("format") == "int32":
        low, high = max(low, -(2**31)), min(high, 2**31 - 1)
    if integer:
        low, high = math.ceil(low) if low > -math.inf else low, math.floor(high) if high < math.inf else high
    if not low <= value <= high:
        lo = low if low > -math.inf else (high - 100 if high < math.inf else 0)
        hi = high if high < math.inf else lo + 100
        value = rng.randint(int(lo), int(hi)) if integer else round(rng.uniform(lo, hi), 2)
    step = schema.get("multipleOf")
    if isinstance(step, int | float) and step > 0 and not isinstance(step, bool):
        multiple = math.ceil(value / step) * step
        value = multiple if multiple <= high else math.floor(value / step) * step
        value = (
            int(value) if integer or float(value).is_integer() and isinstance(step, int) else round(value, 6)
        )
    return int(value) if integer else value


def _date(rng: random.Random) -> str:
    return f"{rng.randint(2023, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _uuid(rng: random.Random) -> str:
    digits = f"{rng.getrandbits(128):032x}"
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-a{digits[17:20]}-{digits[20:]}"


_FORMATS: dict[str, Callable[[random.Random], str]] = {
    "date": _date,
    "date-time": lambda rng: f"{_date(rng)}T{rng.randint(7, 20):02d}:{rng.choice((0, 15, 30, 45)):02d}:00Z",
    "time": lambda rng: f"{rng.randint(7, 20):02d}:{rng.choice((0, 15, 30, 45)):02d}:00",
    "email": lambda rng: f"{rng.choice(_FIRST).lower()}@example.com",
    "uuid": _uuid,
    "uri": lambda rng: rng.choice(_URLS),
    "url": lambda rng: rng.choice(_URLS),
    "uri-reference": lambda rng: rng.choice(_URLS),
    "iri": lambda rng: rng.choice(_URLS),
    "hostname": lambda rng: rng.choice(("api.example.com", "example.org", "mail.example.net")),
    "ipv4": lambda rng: f"192.0.2.{rng.randint(1, 254)}",
    "ipv6": lambda rng: f"2001:db8::{rng.randint(1, 9999):x}",
    "byte": lambda rng: base64.b64encode(rng.choice((b"hello", b"report", b"photo data"))).decode(),
    "binary": lambda rng: rng.choice(("rex.jpg", "photo.png", "scan.pdf", "avatar.jpg")),
    "password": lambda rng: rng.choice(_POOLS["password"]),
}  # fmt: skip


def _search(pattern: str, text: str) -> bool:
    try:
        return pattern_search(pattern, text)
    except (re.error, PatternTimeout):
        return True  # a pattern Python cannot read (or too slow to run): leave the value to the spec check


def _from_pattern(pattern: str, rng: random.Random) -> str | None:
    """A string matching a simple regular expression (classes, groups, alternation, bounded repeats)."""
    try:
        tree = _regex.parse(pattern)
    except Exception:
        return None
    out: list[str] = []
    steps = [MAX_PATTERN_STEPS]

    def walk(items: Any) -> None:
        for op, arg in items:
            # Repeats of something empty (`(?:(?:a{0}){999}){999}`) make no text to stop at: count steps.
            steps[0] -= 1
            if steps[0] < 0:
                raise OverflowError("pattern too complex")
            name = str(op)
            if name == "LITERAL":
                out.append(chr(arg))
            elif name == "NOT_LITERAL":
                out.append("a" if chr(arg) != "a" else "b")
            elif name == "ANY":
                out.append(rng.choice("abcdefghkmnpqrstuvwxyz"))
            elif name == "IN":
                out.append(_class_char(arg, rng))
            elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                low, high, sub = arg
                low = min(low, MAX_TEXT)  # `a{200000000}`: no request is that long
                for _ in range(rng.randint(low, max(low, min(high, low + 3)))):
                    if len(out) > MAX_TEXT:
                        break
                    walk(sub)
            elif name == "SUBPATTERN":
                walk(arg[-1])
            elif name == "BRANCH":
                walk(rng.choice(arg[1]))
            elif name == "CATEGORY":
                out.append(_category_char(str(arg), rng))
            elif name != "AT":
                raise ValueError(name)

    try:
        walk(tree)
    except (ValueError, TypeError, OverflowError):
        return None
    text = "".join(out)
    return text if _search(pattern, text) else None


def _category_char(category: str, rng: random.Random) -> str:
    if category.endswith("NOT_DIGIT") or category.endswith("NOT_SPACE"):
        return rng.choice("abcxyz")
    if category.endswith("DIGIT"):
        return rng.choice("0123456789")
    if category.endswith("NOT_WORD"):
        return "-"
    if category.endswith("WORD"):
        return rng.choice("abcdefxyz0123")
    return " "


def _class_char(items: list, rng: random.Random) -> str:
    if any(str(op) == "NEGATE" for op, _ in items):
        banned: set[str] = set()
        for op, arg in items:
            if str(op) == "LITERAL":
                banned.add(chr(arg))
            elif str(op) == "RANGE":
                banned.update(chr(code) for code in range(arg[0], min(arg[1], arg[0] + 500) + 1))
        return next((char for char in "aZ0_-x.9 " if char not in banned), "~")
    op, arg = rng.choice(items)
    if str(op) == "RANGE":
        return chr(rng.randint(arg[0], arg[1]))
    if str(op) == "CATEGORY":
        return _category_char(str(arg), rng)
    return chr(arg) if str(op) == "LITERAL" else "a"


# ------------------------------------------------------------------------------------ one operation


@dataclass
class _Mention:
    """One value the request has to say: a top-level argument, or one field of an object body."""

    key: str  # field name, normalised
    words: str  # as said: "photo URLs"
    value: Any
    schema: Any
    target: bool = False  # a path parameter: the thing the request acts on
    noun: str = ""  # petId → "pet"
    records: bool = False  # an array body of objects


class _OperationRows:
    """Requests and calls for one operation, with its own random stream (seeded by seed and operation)."""

    def __init__(self, op: Operation, seed: int, checker: _Checker):
        self.op = op
        self.checker = checker
        self.seed = seed
        self.rng = random.Random(f"{seed}/{op.operation_id}")
        context = set(_words(f"{op.operation_id} {op.summary} {op.path} {' '.join(op.tags)}"))
        self.values = _Values(self.rng, context)
        self.arguments_list = argument_names(op)
        self.phrases = _phrases(op)
        self.words = context - {"get", "by", "the", "a", "an", "of", "to", "for", "with", "in", "and"}
        body = op.request_body
        has_required = any(
            param.required if param is not None else body is not None and body.required
            for _, param in self.arguments_list
        )
        self.frames = [frame for frame in _FRAMES if frame != "values_first" or has_required]

    # -- arguments

    def arguments(self, forced: frozenset[str] = frozenset(), rng: random.Random | None = None) -> dict:
        rng = rng or self.rng
        values = self.values if rng is self.rng else _Values(rng, self.words)
        row: dict = {}
        arguments: dict[str, Any] = {}
        optional_taken = 0
        for name, param in self.arguments_list:
            if param is not None:
                chance = 0.15 if param.location == "header" else 0.35
                wanted = name in forced or (optional_taken < 3 and rng.random() < chance)
                if param.required or wanted:
                    optional_taken += not param.required
                    try:
                        arguments[name] = values.value(param.schema, param.name, "", 0, row)
                    except UNDRAWABLE:  # left out: the spec check then fails this attempt
                        pass
                continue
            body = self.op.request_body
            assert body is not None
            fields = frozenset(key[len(_FIELD) :] for key in forced if key.startswith(_FIELD))
            if body.required or fields or rng.random() < 0.85:
                schema = _resolved(body.schema, rng) if isinstance(body.schema, dict) else {}
                try:
                    if "object" in (types_of(schema) or _implied_types(schema)) and not schema.get("enum"):
                        value = values.object(schema, "", 0, row, fields)
                    else:
                        value = values.value(
                            schema, "file" if schema.get("format") == "binary" else "body", "", 0, row
                        )
                except UNDRAWABLE:
                    continue
                if value not in ({}, None, "") or body.required:
                    arguments[name] = value
        return arguments

    def mentions(self, arguments: dict[str, Any]) -> list[_Mention]:
        found: list[_Mention] = []
        for name, param in self.arguments_list:
            if name not in arguments:
                continue
            value = arguments[name]
            if param is not None:
                found.append(
                    _Mention(_key(param.name), _said(param.name), value, param.schema,
                             param.location == "path", _noun(param.name))
                )  # fmt: skip
                continue
            body = self.op.request_body
            schema = body.schema if body is not None and isinstance(body.schema, dict) else {}
            if isinstance(value, dict):
                properties = _resolved(schema, random.Random(0)).get("properties", {})
                for key, item in value.items():
                    found.append(_Mention(_key(key), _said(key), item, properties.get(key, {})))
            elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
                found.append(_Mention("", "", value, schema, records=True))
            else:
                words = "file" if isinstance(schema, dict) and schema.get("format") == "binary" else "content"
                found.append(_Mention(words, words, value, schema))
        return found

    # -- rows

    def samples(self, count: int, eval_fraction: float, seen: set[str]) -> list[_Sample]:
        rng = self.rng
        n_eval = 0
        if eval_fraction > 0 and count >= 2:
            n_eval = min(max(1, round(count * eval_fraction)), count - 1)
        frames = list(self.frames)
        rng.shuffle(frames)
        held = 0
        if n_eval:
            held = max(1, round(len(frames) * max(eval_fraction, 0.15)))
            held = min(held, len(frames) - 3)
        eval_frames, train_frames = frames[:held], frames[held:]
        # Eval first, taking only its share of a small value space (an ID from 2 to 9), so that training
        # can be kept off the eval values without being left with one value to learn from.
        # A space of a few values (a three-value enum) is not split at all: training needs every value.
        quota = self._eval_value_quota(eval_fraction) if n_eval else None
        eval_rows = self._fill(n_eval, eval_frames, "eval", seen, set(), quota or None)
        eval_values = {sample.values for sample in eval_rows} if quota != 0 else set()
        train = self._fill(count - n_eval, train_frames, "train", seen, eval_values)
        return train + eval_rows

    def _eval_value_quota(self, eval_fraction: float) -> int | None:
        """How many distinct value combinations eval may take: None for plenty, 0 for too few to split."""
        if not self.arguments_list:
            return 0
        probe = random.Random(f"{self.seed}/{self.op.operation_id}/probe")
        found = {canonical(self.arguments(rng=probe)) for _ in range(_PROBES)}
        if len(found) >= 0.8 * _PROBES:
            return None
        return 0 if len(found) < _FEWEST_TO_SPLIT else max(1, round(len(found) * eval_fraction))

    def _fill(
        self,
        count: int,
        frames: list[str],
        split: str,
        seen: set[str],
        avoid: set[str],
        quota: int | None = None,
    ) -> list[_Sample]:
        made: list[_Sample] = []
        if not frames:
            return made
        budget = count * _ATTEMPTS_PER_ROW + 40
        attempt = 0
        while len(made) < count and attempt < budget:
            frame = frames[attempt % len(frames)]
            attempt += 1
            phrase = self.rng.choice(self.phrases)
            try:
                arguments = self._draw_arguments(phrase, made, avoid, quota)
                if self.checker.failed(self.op.operation_id, arguments):
                    continue
            except UNDRAWABLE:
                # A schema no value can meet as drawn (minimum above maximum, a step of 1e-320, a pattern
                # of lone surrogates): this attempt fails, as one that breaks the spec does.
                continue
            text = self.say(frame, phrase, arguments)
            normal = re.sub(r"\W+", " ", text.lower()).strip()
            if not text or len(text) > MAX_TEXT or normal in seen:
                continue
            seen.add(normal)
            made.append(_Sample(text, split, f"{frame}:{phrase.source}", self.op.operation_id, arguments))
        return made

    def _draw_arguments(
        self, phrase: _Phrase, made: list[_Sample], avoid: set[str], quota: int | None
    ) -> dict[str, Any]:
        forced = self._by_target_arguments(phrase)
        arguments = self.arguments(forced)
        own = {sample.values for sample in made} if quota is not None else set()
        for _ in range(
            12 if (avoid or quota is not None and len(own) >= quota) and self.arguments_list else 0
        ):
            value = canonical(arguments)
            if value not in avoid and (quota is None or len(own) < quota or value in own):
                break
            arguments = self.arguments(forced)
        return arguments

    def _by_target_arguments(self, phrase: _Phrase) -> frozenset[str]:
        """Optional parameters the phrase itself names ("Find pets by status" needs a status)."""
        match = _BY.match(phrase.rest)
        if not match:
            return frozenset()
        target = _key(match["target"])
        names = [n for n, param in self.arguments_list if param and _target_matches(target, _key(param.name))]
        body = self.op.request_body
        if not names and body is not None and isinstance(body.schema, dict):
            properties = body.schema.get("properties")
            for key in properties if isinstance(properties, dict) else {}:
                if _target_matches(target, _key(key)) and not _is_container(properties[key]):
                    return frozenset({_FIELD + key})
        return frozenset(names)

    # -- wording

    def say(self, frame: str, phrase: _Phrase, arguments: dict[str, Any]) -> str:
        rng = self.rng
        mentions = self.mentions(arguments)
        verb = rng.choice(_SYNONYMS.get(phrase.verb, (phrase.verb,)))
        if verb.endswith(" me") and frame in _FIRST_PERSON:
            verb = phrase.verb
        lead = ""
        if frame == "values_first" and mentions:
            targets = [m for m in mentions if m.target]
            rest = phrase.rest
            if targets:
                lead = "For " + _join([_say_target(m, rng) for m in targets]) + ", "
                mentions = [m for m in mentions if not m.target]
            else:
                said = [_say(m, "with", rng, self.op.method) for m in mentions if not m.records]
                if said:
                    lead = rng.choice(("Using ", "With ")) + _join(said) + ", "
                    mentions = [m for m in mentions if m.records]
        else:
            rest, mentions = self._work_in(phrase.rest, mentions)
        clause, tail = self._clause(mentions, frame == "terse")
        core = f"{verb} {rest}".strip() + clause
        if lead:
            text = lead + core + "."
        else:
            templates = _FRAMES[frame] or ("{core}.",)
            if verb.endswith(" me"):
                templates = tuple(t for t in templates if "for me" not in t) or templates
            template = rng.choice(templates)
            text = template.format(core=core, ing=_gerund(core))
        text = _cap(text) if frame != "terse" else text
        if tail:
            text = text.rstrip(".") + ("" if text.endswith("?") else ".") + " " + tail
        return self._decorate(text, frame)

    def _decorate(self, text: str, frame: str) -> str:
        rng = self.rng
        if frame == "terse":
            return text.rstrip(".")
        if rng.random() < 0.2:
            first = text.split(" ", 1)[0]
            prefix = rng.choice(_PREFIXES)
            keep = first in ("I", "I'd", "I'm") or _is_acronym(first) or not prefix.endswith(", ")
            text = prefix + (text if keep else text[:1].lower() + text[1:])
        if rng.random() < 0.2:
            text = text + ("" if text.endswith((".", "?", "!", ")")) else ".") + rng.choice(_SUFFIXES)
        elif rng.random() < 0.1 and text.endswith("."):
            first = text.split(" ", 1)[0]
            if first not in ("I", "I'd", "I'm") and not _is_acronym(first):
                text = text[:1].lower() + text[1:-1]
        return text

    def _work_in(self, rest: str, mentions: list[_Mention]) -> tuple[str, list[_Mention]]:
        """Say a value inside the phrase where it fits: "pet by ID 42", "pets with status sold"."""
        rng = self.rng
        match = _BY.match(rest)
        if match:
            target_key = _key(match["target"])
            for m in mentions:
                if not m.records and _target_matches(target_key, m.key) and _scalar_or_list(m.value):
                    base, target = match["base"], match["target"]
                    return _by_variant(base, target, m, rng, self.op.method), [
                        x for x in mentions if x is not m
                    ]
        words = rest.split(" ") if rest else []
        for m in mentions:
            if not m.target or not m.noun or not _scalar_or_list(m.value):
                continue
            noun = m.noun.split(" ")
            for index in range(len(words) - len(noun) + 1):
                if [w.lower() for w in words[index : index + len(noun)]] == [n.lower() for n in noun]:
                    start = index
                    if start and words[start - 1].lower() in _ADJECTIVES:
                        start -= 1
                    if start and words[start - 1].lower() in ("a", "an", "the"):
                        start -= 1
                    said = _say_target(m, rng, bare=True)
                    new = [*words[:start], said, *words[index + len(noun) :]]
                    return " ".join(new), [x for x in mentions if x is not m]
        return rest, mentions

    def _clause(self, mentions: list[_Mention], terse: bool) -> tuple[str, str]:
        rng, method = self.rng, self.op.method
        clause, tail = "", ""
        targets = [m for m in mentions if m.target]
        records = [m for m in mentions if m.records]
        others = [m for m in mentions if not m.target and not m.records]
        if targets:
            clause += " for " + _join([_say_target(m, rng) for m in targets])
        if others:
            if rng.random() < 0.3:
                rng.shuffle(others)
            styles = ["with", "with", "paren", "colon"]
            if not terse:
                styles += ["sentence"] + (["setting"] if method in ("post", "put", "patch") else [])
                styles += ["where"] if method == "get" else []
            style = rng.choice(styles)
            said = [_say(m, "sentence" if style == "sentence" else style, rng, method) for m in others]
            if style == "sentence":
                tail = _cap(_join(said)) + "."
            elif style == "paren":
                clause += " (" + ", ".join(said) + ")"
            elif style == "colon":
                clause += ": " + ", ".join(said)
            elif style == "setting":
                clause += ", setting " + _join(said)
            elif style == "where":
                clause += " where " + _join(said)
            else:
                clause += " with " + _join(said)
        for m in records:
            items = m.schema.get("items", {}) if isinstance(m.schema, dict) else {}
            entries = [_say_fields(item, items, rng) for item in m.value]
            if len(entries) == 1:
                clause += rng.choice((": ", " with ")) + entries[0]
            else:
                clause += rng.choice((": ", f", {_number_words(len(entries))} of them: ")) + _join(
                    [f"({entry})" for entry in entries]
                )
        return clause, tail


def _target_matches(target: str, key: str) -> bool:
    if not target or not key:
        return False
    if target == key or key.endswith(target):
        return True
    return target in ("id", "identifier") and key.endswith("id")


def _plural(words: str) -> bool:
    """ "photo URLs" and "tags" take "are"; "status" does not."""
    return words.endswith("s") and not words.endswith(("us", "ss", "is"))


def _is_container(schema: Any) -> bool:
    return isinstance(schema, dict) and bool(
        {"object", "array"} & set(types_of(schema) or _implied_types(schema))
    )


def _scalar_or_list(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and all(not isinstance(item, dict | list) for item in value)
    return not isinstance(value, dict)


def _spoken(value: Any, last: str = "and") -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return _join([_spoken(item) for item in value], last)
    if isinstance(value, str):
        plain = re.fullmatch(r"[\w@.+\-/:?=&#%~]+", value) and not re.search(r"[*:]", value.split("//")[-1])
        iso = re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:]+Z?|\d\d:\d\d(:\d\d)?", value)
        return value if plain or iso else f'"{value}"'
    return str(value)


def _say(m: _Mention, style: str, rng: random.Random, method: str) -> str:
    """One value with its name, worded for the clause it goes in."""
    if isinstance(m.value, dict):
        return f"{m.words} ({_say_fields(m.value, m.schema, rng)})"
    if isinstance(m.value, list) and m.value and all(isinstance(item, dict) for item in m.value):
        items = m.schema.get("items", {}) if isinstance(m.schema, dict) else {}
        return f"{m.words} " + _join([f"({_say_fields(item, items, rng)})" for item in m.value])
    words = m.words
    plural = isinstance(m.value, list) and _plural(words)
    value = _spoken(m.value, "or" if method == "get" and rng.random() < 0.7 else "and")
    if isinstance(m.value, bool):
        yes_no = "yes" if m.value else "no"
        forms = {
            "sentence": (f"{words} should be {value}", f"the {words} is {value}"),
            "setting": (f"{words} to {value}",),
            "where": (f"{words} is {value}",),
        }.get(style, (f"{words} set to {value}", f"{words} {value}", f"{words}: {yes_no}"))
        return rng.choice(forms)
    be = "are" if plural else "is"
    if style == "sentence":
        return rng.choice(
            (f"the {words} {be} {value}", f"{words} should be {value}", f"use {value} for {words}")
        )
    if style == "setting":
        return f"{words} to {value}"
    if style == "where":
        return rng.choice((f"{words} {be} {value}", f"{words} = {value}"))
    if style == "paren":
        return rng.choice((f"{words}: {value}", f"{words} {value}"))
    forms = [f"{words} {value}", f"{words} {value}", f"the {words} {value}", f"{words} set to {value}"]
    if isinstance(m.value, int | float) and m.key not in ("id",) and not _id_like(m.key):
        forms.append(f"{words} of {value}")
    return rng.choice(forms)


def _say_fields(value: dict, schema: Any, rng: random.Random) -> str:
    properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
    parts = [
        _say(_Mention(_key(k), _said(k), v, properties.get(k, {})), "paren", rng, "")
        for k, v in value.items()
    ]
    return ", ".join(parts) or "no fields"


def _say_target(m: _Mention, rng: random.Random, bare: bool = False) -> str:
    """The thing acted on: "pet 42", "pet #42", "the pet with ID 42", "user alice"."""
    value, noun = _spoken(m.value), m.noun or m.words
    forms = [f"{noun} {value}", f"{noun} {value}"]
    if isinstance(m.value, int) and not isinstance(m.value, bool):
        forms += [f"{noun} #{value}", f"the {noun} with ID {value}", f"{noun} number {value}"]
        if _id_like(m.key):
            forms.append(f"{noun} ID {value}")
    elif not bare or noun != m.words:
        forms += [f"the {noun} {value}"] + ([f"{m.words} {value}"] if noun != m.words else [])
    return rng.choice(forms)


def _by_variant(base: str, target: str, m: _Mention, rng: random.Random, method: str) -> str:
    """The by-target said with its value: "pets by status sold", "pets whose status is sold"."""
    value = _spoken(m.value, "or" if method == "get" and rng.random() < 0.7 else "and")
    plain = base
    for article in _ARTICLES:
        if plain.lower().startswith(article):
            plain = plain[len(article) :]
    target_key = _key(target)
    forms = [f"{base} by {target} {value}", f"{base} with {target} {value}"]
    if target_key in ("id", "identifier") or m.key.endswith("id"):
        forms += [f"{plain} {value}", f"the {plain} with ID {value}"]
        if isinstance(m.value, int) and not isinstance(m.value, bool):
            forms += [f"{plain} #{value}", f"{plain} number {value}"]
    elif target_key.endswith("name"):
        forms += [f"{plain} {value}", f"{plain} named {value}"]
    else:
        be = "are" if _plural(target) else "is"
        forms += [f"{base} whose {target} {be} {value}", f"{base} where {target} {be} {value}"]
    return rng.choice(forms)


# --------------------------------------------------------------------------------- irrelevant rows

_OFF_TOPIC: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("weather", "tell me the weather forecast for {city} tomorrow", ("weather", "forecast")),
    ("translate", 'translate "{phrase}" into {language}', ("translate", "translation", "language")),
    ("poem", "write a short poem about {topic}", ("poem", "poetry")),
    ("joke", "tell me a joke about {topic}", ("joke",)),
    ("math", "work out {a} times {b}", ("calculate", "math", "multiply", "calculator")),
    ("flight", "book me a flight from {city} to {city2} next {weekday}", ("flight", "airline", "booking")),
    ("reminder", "remind me to {chore} at {time}", ("reminder", "remind", "schedule")),
    ("recipe", "give me a recipe for {dish}", ("recipe", "dish", "cook", "food")),
    ("email", "draft an email to my landlord about {issue}", ("email", "mail", "message")),
    ("book", "summarise the plot of {novel}", ("book", "plot", "novel")),
    ("timer", "set a timer for {n} minutes", ("timer", "alarm")),
    ("music", "play some {genre} music", ("music", "song", "playlist", "play")),
    ("capital", "tell me the capital of {country}", ("capital", "country")),
    ("units", "convert {n} {unit_a} to {unit_b}", ("convert", "unit", "conversion")),
    ("stocks", "tell me the current share price of {company}", ("stock", "share", "price", "market")),
    ("news", "summarise today's top news headlines", ("news", "headline")),
    ("restaurant", "find a good {cuisine} restaurant in {city}", ("restaurant", "food")),
    ("explain", "explain how {concept} works", ("explain",)),
    ("code", "write a Python function that reverses a string", ("python", "code", "function")),
    ("hotel", "reserve a hotel room in {city} for {n} nights", ("hotel", "room", "reservation")),
    ("currency", "convert {n} US dollars to {currency}", ("currency", "dollar", "exchange")),
    ("spelling", 'check the spelling of "{word}"', ("spell", "spelling")),
    ("trivia", "tell me who painted the Mona Lisa", ("paint", "art")),
    ("fitness", "plan a {n}-minute workout for me", ("workout", "fitness", "exercise")),
)
_FILLERS: dict[str, tuple[str, ...]] = {
    "city": ("Paris", "Tokyo", "Lisbon", "Denver", "Cairo", "Oslo", "Lima"),
    "city2": ("Madrid", "Seoul", "Boston", "Rome", "Dublin"),
    "phrase": ("good morning", "where is the train station", "thank you very much", "see you soon"),
    "language": ("Spanish", "Japanese", "German", "Italian", "Portuguese"),
    "topic": ("autumn", "the ocean", "coffee", "cats", "Mondays", "the moon"),
    "weekday": ("Monday", "Friday", "Sunday", "Wednesday"),
    "chore": ("call my mother", "water the plants", "pay rent", "buy milk"),
    "time": ("6pm", "9:30 tomorrow", "noon", "7am"),
    "dish": ("banana bread", "pad thai", "lentil soup", "tiramisu"),
    "issue": ("the broken heater", "a leaking tap", "the rent increase"),
    "novel": ("Moby Dick", "Pride and Prejudice", "Dune", "1984"),
    "genre": ("jazz", "lo-fi", "classical", "rock"),
    "country": ("Australia", "Canada", "Kenya", "Peru", "Norway"),
    "unit_a": ("miles", "pounds", "gallons"),
    "unit_b": ("kilometres", "kilograms", "litres"),
    "company": ("Apple", "Toyota", "Nestle", "Siemens"),
    "cuisine": ("Thai", "Italian", "Ethiopian", "Mexican"),
    "concept": ("photosynthesis", "compound interest", "a rainbow", "a black hole"),
    "currency": ("euros", "yen", "pounds", "pesos"),
    "word": ("necessary", "accommodate", "rhythm", "definitely"),
}
_ASKS = ("{core}.", "Please {core}.", "Can you {core}?", "Could you {core}?", "I need you to {core}.",
         "I'd like you to {core}.", "Would you {core}?", "Hey, {core}.", "{core}")  # fmt: skip


class _Irrelevant:
    """Requests no operation fits, answered in plain text; eval rows use tasks held out of training."""

    def __init__(self, spec: NormalisedSpec, generators: list[_OperationRows], seed: int):
        self.rng = random.Random(f"{seed}/irrelevant")
        vocabulary: set[str] = set()
        for generator in generators:
            op = generator.op
            vocabulary |= set(_words(f"{op.operation_id} {op.summary} {op.description} {op.path}"))
            for name, _ in generator.arguments_list:
                vocabulary |= set(_words(name))
            body = op.request_body
            if body is not None and isinstance(body.schema, dict):
                vocabulary |= {w for key in body.schema.get("properties", {}) for w in _words(key)}
        vocabulary |= {word.rstrip("s") for word in vocabulary}
        self.tasks = [task for task in _OFF_TOPIC if not set(task[2]) & vocabulary]
        self.capabilities = [
            f"{g.phrases[0].verb} {g.phrases[0].rest}".strip() for g in generators if g.phrases
        ]
        title = re.sub(r"\s*[-–:]\s*(?:OpenAPI|Swagger)\b.*$", "", spec.title.strip()) or "this"
        self.api = title if "api" in title.lower() else f"{title} API"

    def samples(self, count: int, eval_fraction: float, seen: set[str]) -> list[_Sample]:
        if count < 1 or not self.tasks:
            return []
        rng = self.rng
        tasks = list(self.tasks)
        rng.shuffle(tasks)
        n_eval = (
            min(max(1, round(count * eval_fraction)), count - 1) if eval_fraction > 0 and count > 1 else 0
        )
        held = min(max(1, round(len(tasks) * 0.2)), len(tasks) - 1) if n_eval and len(tasks) > 1 else 0
        made: list[_Sample] = []
        for split, wanted, pool in (("train", count - n_eval, tasks[held:]), ("eval", n_eval, tasks[:held])):
            done, attempt = 0, 0
            while pool and done < wanted and attempt < wanted * _ATTEMPTS_PER_ROW + 40:
                task_id, text, _ = pool[attempt % len(pool)]
                attempt += 1
                fills = {slot: rng.choice(options) for slot, options in _FILLERS.items()}
                fills.update(a=str(rng.randint(12, 99)), b=str(rng.randint(3, 49)), n=str(rng.randint(2, 90)))
                core = text.format(**fills)
                request = _cap(rng.choice(_ASKS).format(core=core))
                normal = re.sub(r"\W+", " ", request.lower()).strip()
                if normal in seen:
                    continue
                seen.add(normal)
                made.append(_Sample(request, split, f"irrelevant:{task_id}", None, None, self._reply()))
                done += 1
        return made

    def _reply(self) -> str:
        rng = self.rng
        examples = rng.sample(self.capabilities, min(2, len(self.capabilities)))
        can = _join(examples, "or")
        return rng.choice(
            (
                f"Sorry, I can't help with that. The tools I have only cover the {self.api}: for example, "
                f"I can {can}.",
                f"I'm afraid none of my tools can do that. I can only work with the {self.api}, "
                f"for instance to {can}.",
                f"That's outside what I can do here: my tools are for the {self.api} only "
                f"(for example, to {can}).",
                f"Unfortunately I don't have a tool for that. I can help with the {self.api} instead, "
                f"such as to {can}.",
            )
        )


# ------------------------------------------------------------------------------------------ DPO pairs

_EXTRA_ARGUMENTS: dict[str, tuple[tuple[str, Any], ...]] = {
    "get": (
        ("include_details", True),
        ("verbose", True),
        ("format", "json"),
        ("fields", "all"),
        ("sort", "name"),
    ),
    "delete": (("confirm", True), ("reason", "no longer needed"), ("force", True), ("cascade", True)),
    "write": (("notify", True), ("dry_run", False), ("validate", True), ("overwrite", True)),
}
_SMALL = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen \
seventeen eighteen nineteen".split()
)
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


def _number_words(n: int) -> str:
    if 0 <= n < 20:
        return _SMALL[n]
    if 20 <= n < 100:
        return _TENS[n // 10 - 2] + ("" if n % 10 == 0 else "-" + _SMALL[n % 10])
    return f"#{n}"


class _Rejections:
    """DPO pairs: the right answer against a plausible wrong call, cycling the kinds of mistake."""

    def __init__(self, generators: list[_OperationRows], checker: _Checker, seed: int):
        self.generators = {g.op.operation_id: g for g in generators}
        self.checker = checker
        self.rng = random.Random(f"{seed}/dpo")
        self.cursor = 0

    def rows(self, samples: list[_Sample], tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = []
        for sample in samples:
            if sample.operation is None or sample.arguments is None:
                generator = self.rng.choice(list(self.generators.values()))
                rejected = _call_message(generator.op.operation_id, generator.arguments(rng=self.rng))
                kind = UNNEEDED_CALL
            else:
                kind, name, arguments = self._mistake(sample.operation, sample.arguments)
                rejected = _call_message(name, copy.deepcopy(arguments))  # shares nothing with `chosen`
            rows.append(
                {
                    "prompt": [{"role": "user", "content": sample.text}],
                    "chosen": [_answer(sample)],
                    "rejected": [rejected],
                    "tools": tools,
                    "split": sample.split,
                    "meta": {**_meta(sample), "rejection": kind},
                }
            )
        return rows

    def _mistake(self, name: str, arguments: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        start = self.cursor
        self.cursor += 1
        for offset in range(len(REJECTION_KINDS)):
            kind = REJECTION_KINDS[(start + offset) % len(REJECTION_KINDS)]
            found = getattr(self, f"_{kind}")(name, arguments)
            if found is not None:
                return kind, found[0], found[1]
        return "hallucinated_argument", name, {**arguments, "unexpected_argument_": True}

    def _flagged(self, name: str, candidates: list[dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
        self.rng.shuffle(candidates)
        for candidate in candidates:
            if self.checker.failed(name, candidate):
                return name, candidate
        return None

    def _wrong_operation(self, name: str, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        this = self.generators[name]
        others = [g for g in self.generators.values() if g is not this]
        if not others:
            return None
        ranked = sorted(others, key=lambda g: -len(g.words & this.words))
        other = self.rng.choice(ranked[:3])
        wrong = other.arguments(rng=self.rng)
        for key in wrong:  # the same value under the same name makes the mistake look likely
            if key in arguments and type(arguments[key]) is type(wrong[key]):
                wrong[key] = arguments[key]
        return other.op.operation_id, wrong

    def _missing_required_argument(self, name: str, arguments: dict[str, Any]) -> tuple[str, dict] | None:
        generator = self.generators[name]
        candidates = []
        for arg, param in generator.arguments_list:
            if arg not in arguments:
                continue
            body = generator.op.request_body
            required = param.required if param is not None else body is not None and body.required
            if required:
                candidates.append({key: value for key, value in arguments.items() if key != arg})
            if param is None and isinstance(arguments[arg], dict) and body is not None:
                needed = body.schema.get("required", []) if isinstance(body.schema, dict) else []
                for field_name in needed:
                    if field_name in arguments[arg]:
                        smaller = {k: v for k, v in arguments[arg].items() if k != field_name}
                        candidates.append({**arguments, arg: smaller})
        return self._flagged(name, candidates)

    def _wrong_type(self, name: str, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        generator = self.generators[name]
        candidates = []
        body = generator.op.request_body
        json_body = body is not None and "json" in body.media_type.split(";")[0]
        for arg, param in generator.arguments_list:
            if arg not in arguments:
                continue
            value = arguments[arg]
            if param is not None:
                bad = _text_mistype(value)
                if bad is not None:
                    candidates.append({**arguments, arg: bad})
            elif isinstance(value, dict):
                for key, item in value.items():
                    bad = _json_mistype(item) if json_body else _text_mistype(item)
                    if bad is not None:
                        candidates.append({**arguments, arg: {**value, key: bad}})
            elif json_body:
                bad = _json_mistype(value)
                if bad is not None:
                    candidates.append({**arguments, arg: bad})
        return self._flagged(name, candidates)

    def _hallucinated_argument(self, name: str, arguments: dict[str, Any]) -> tuple[str, dict] | None:
        generator = self.generators[name]
        known = {arg for arg, _ in generator.arguments_list}
        method = generator.op.method
        pool = list(_EXTRA_ARGUMENTS.get(method, _EXTRA_ARGUMENTS["write"]))
        for value in arguments.values():  # a body field given beside the body, as if it were a parameter
            if isinstance(value, dict):
                pool += [(key, item) for key, item in value.items()]
        candidates = [{**arguments, key: item} for key, item in pool if key not in known]
        return self._flagged(name, candidates)


def _text_mistype(value: Any) -> Any:
    """A wrong type that survives being sent as text: words for a number, "yes" for a boolean."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return _number_words(value)
    if isinstance(value, float):
        return f"about {value}"
    return None


def _json_mistype(value: Any) -> Any:
    """A wrong JSON type a model might write: a quoted number, an object flattened to its name."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dict):
        return str(value.get("name") or json.dumps(value))
    return None
