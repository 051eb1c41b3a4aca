"""Grammar-constrained tool calls for local llama.cpp models.

A GBNF grammar built from the offered tools' schemas makes even an untrained 135M model answer in
the one tool-call format (`<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, see
`tool_calls`) with a real tool name and arguments that match its schema. Two modes:

- `required`: the reply is exactly one call and nothing else.
- `auto`: the reply is either one call or plain text that does not start with `<`.

The JSON part comes from llama-cpp-python's own converter (`llama_cpp.llama_grammar.SchemaConverter`,
llama.cpp's `json_schema_to_grammar.py`) with two fixes: its string rule lets raw control characters
(a newline) into strings, which `json.loads` then rejects, so strings here follow JSON strictly; and
its literals do not escape backslashes, so a `"` in a property name or enum value broke the grammar.
Schemas the converter cannot handle (remote `$ref`, some `allOf` shapes) fall back to "any JSON object"
for that tool's arguments: name and format stay constrained, and `tool_schema.check_tool_call` still
judges the arguments. The call is spelled tight, `<tool_call>{...}</tool_call>` as `format_tool_call`
writes it: with newlines inside the tags the 135M model picked the right tool less often.

What caching buys, checked against llama-cpp-python 0.3.36 (figures: docs/benchmarks.md):

- `LlamaGrammar` is only a holder for the GBNF text (`from_string` parses nothing). Each generation
  (`Llama.generate` → `_init_sampler` → `LlamaSampler.add_grammar`) builds a new native grammar sampler
  from that text, and `llama_sampler_sample` advances the parse state of that per-generation sampler
  only. So one `LlamaGrammar` can be reused across generations and threads, and `grammar_for` does.
- What the cache saves is the schema → GBNF conversion and llama.cpp's check of the result (~0.7 ms for
  three small tools, more for big schemas); a cached lookup is ~8 µs. llama.cpp parses the GBNF again
  for every generation (~0.03 ms), which cannot be avoided from here.
- The real cost is per token: llama.cpp's `grammar=` checks every vocabulary entry (49k for SmolLM2)
  against the grammar at each step, ~3 ms against ~7 ms to decode a token of the 135M model on 2
  cores (0.62x of free). So `LocalModelHolder` does not pass `grammar=`: `grammar_sampling` checks the
  sampled token first and masks the vocabulary only when the grammar rejects it (0.83x).
"""

from __future__ import annotations

import functools
import json
import re
import warnings
from typing import Any, Literal

from app.serving.tool_schema import close_object_schemas, function_of

GrammarMode = Literal["required", "auto"]
GRAMMAR_MODES: tuple[GrammarMode, ...] = ("required", "auto")
GRAMMAR_CACHE_SIZE = 64

TOOL_CALL_OPEN = "<tool_call>"  # the same literals as app.serving.tool_calls
TOOL_CALL_CLOSE = "</tool_call>"
_ANY_OBJECT: dict[str, Any] = {"type": "object"}
# JSON strings: no raw control characters (llama.cpp's converter allows them; json.loads does not).
_STRICT_CHAR_RULE = (
    r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])'
)


# llama.cpp spells out `x{m,n}` as m copies of x plus n - m nested optional ones: memory grows with the
# count (a 200-byte `"minItems": 3000000` took 0.5 GB) and past ~20,000 its grammar parser crashes the
# process outright (a `"maxLength": 65535`, common in real specs). Bounds above this are left out of
# the grammar; `check_tool_call` still holds the reply to them.
MAX_GRAMMAR_REPEAT = 256
_REPEAT_KEYWORDS = ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties")
_LITERAL_KEYWORDS = ("const", "enum", "default", "examples", "example")  # data, not schemas
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_PATTERN_COUNT = re.compile(r"\{(\d+)(?:,(\d*))?\}")


class GrammarError(ValueError):
    """The tools cannot be turned into a grammar llama.cpp accepts."""


def tool_call_schema(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """JSON Schema of one call `{"name": ..., "arguments": {...}}` to any of `tools` (either shape)."""
    return _calls_schema(_named_parameters(tools))


def tool_grammar_text(tools: list[dict[str, Any]], mode: GrammarMode = "required") -> str:
    """GBNF for a reply in `mode` (see the module docstring); cached per tool set and mode."""
    return _grammar_text(_cache_key(tools), _checked_mode(mode))


def grammar_for(tools: list[dict[str, Any]], mode: GrammarMode = "required") -> Any:
    """The `llama_cpp.LlamaGrammar` to pass as `grammar=`; cached, and safe to reuse across generations."""
    return _grammar(_cache_key(tools), _checked_mode(mode))


def local_tool_grammar(model: Any, tools: list[dict[str, Any]], mode: GrammarMode) -> Any:
    """The grammar for a local model offered `tools`; None for a remote model, no tools, or schemas the
    converter cannot handle (that reply is then unconstrained, and still checked)."""
    from app.models import Provider

    if not tools or model.provider != Provider.LOCAL_GGUF:
        return None
    try:
        return grammar_for(tools, mode)
    except (GrammarError, RecursionError):  # deeper in the stack than the checks that parsed the tools
        return None


def json_grammar(schema: dict[str, Any] | None) -> Any:
    """The `LlamaGrammar` for a reply that is one JSON value matching `schema` (objects closed like tool
    arguments), or any JSON object when `schema` is None: OpenAI's `response_format`. Cached."""
    try:
        return _json_grammar(_cache_key(schema if schema is not None else _ANY_OBJECT))
    except RecursionError:
        raise GrammarError("The schema is nested too deeply for a grammar.") from None


def clear_grammar_cache() -> None:
    """Forget every cached grammar (for benchmarks and tests that time a first build)."""
    _grammar.cache_clear()
    _grammar_text.cache_clear()
    _json_grammar.cache_clear()


@functools.lru_cache(maxsize=GRAMMAR_CACHE_SIZE)
def _json_grammar(schema_json: str) -> Any:
    from llama_cpp import LlamaGrammar

    schema = json.loads(schema_json)
    try:
        rules = _json_rules(close_object_schemas(schema), "")  # "" names the top rule "root"
    except Exception as exc:  # the converter asserts on shapes it does not know
        reason = str(exc) or type(exc).__name__
        raise GrammarError(f"This JSON schema cannot be turned into a grammar ({reason[:200]}).") from exc
    text = "\n".join(f"{name} ::= {rule}" for name, rule in sorted(rules.items()))
    _check_gbnf(text)
    return LlamaGrammar.from_string(text, verbose=False)


def _cache_key(tools: list[dict[str, Any]]) -> str:
    # Key order is kept on purpose: it sets the order the grammar asks for properties in.
    try:
        return json.dumps(tools, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise GrammarError(f"Tools must be plain JSON: {exc}") from exc
    except RecursionError:
        raise GrammarError("The schema is nested too deeply for a grammar.") from None


def _checked_mode(mode: str) -> GrammarMode:
    if mode not in GRAMMAR_MODES:
        raise GrammarError(f"Unknown grammar mode {mode!r}; expected one of {', '.join(GRAMMAR_MODES)}.")
    return mode  # type: ignore[return-value]


@functools.lru_cache(maxsize=GRAMMAR_CACHE_SIZE)
def _grammar(tools_json: str, mode: GrammarMode) -> Any:
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_string(_grammar_text(tools_json, mode), verbose=False)


@functools.lru_cache(maxsize=GRAMMAR_CACHE_SIZE)
def _grammar_text(tools_json: str, mode: GrammarMode) -> str:
    tools = json.loads(tools_json)
    named = [(name, _convertible(parameters)) for name, parameters in _named_parameters(tools)]
    schema = _calls_schema(named)
    rules = _json_rules(schema, "call")
    rules["call-block"] = f"{_literal(TOOL_CALL_OPEN)} call {_literal(TOOL_CALL_CLOSE)}"
    if mode == "required":
        rules["root"] = "call-block"
    else:
        rules["root"] = "call-block | text"
        rules["text"] = r"[^<] [^\x00]*"
    text = "\n".join(f"{name} ::= {rule}" for name, rule in sorted(rules.items()))
    _check_gbnf(text)
    return text


def _named_parameters(tools: Any) -> list[tuple[str, dict[str, Any]]]:
    named: list[tuple[str, dict[str, Any]]] = []
    for tool in tools if isinstance(tools, list) else []:
        function = function_of(tool)
        if function is None or not isinstance(function.get("name"), str):
            continue
        parameters = function.get("parameters")
        named.append((function["name"], parameters if isinstance(parameters, dict) else _ANY_OBJECT))
    return named


def _calls_schema(named: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One schema for "a call to one of these tools".

    A tool whose parameters hold local `$ref`s (`#/$defs/Address`, as pydantic and zod write nested
    models) is moved whole under the top `$defs`, its refs rebased there: nested under the call's
    `arguments`, `#/...` would point at the wrong schema, the converter would fail, and the tool would
    lose its grammar. (Through `anyOf`'s list the converter cannot follow a pointer, so the refs are
    not simply rebased in place.)
    """
    if not named:
        raise GrammarError("No tools to build a grammar from.")
    alternatives = []
    hoisted: dict[str, Any] = {}
    for index, (name, parameters) in enumerate(named):
        arguments = close_object_schemas(parameters)
        if _has_local_ref(arguments):
            key = f"tool{index}"
            hoisted[key] = _rebased_refs(arguments, f"#/$defs/{key}")
            arguments = {"$ref": f"#/$defs/{key}"}
        alternatives.append(_call_schema(name, arguments))
    schema = alternatives[0] if len(alternatives) == 1 else {"anyOf": alternatives}
    return {**schema, "$defs": hoisted} if hoisted else schema


def _call_schema(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"name": {"const": name}, "arguments": arguments},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def _has_local_ref(schema: Any) -> bool:
    if isinstance(schema, list):
        return any(_has_local_ref(item) for item in schema)
    if not isinstance(schema, dict):
        return False
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#"):
        return True
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):  # names there are properties, not keywords
            if any(_has_local_ref(sub) for sub in value.values()):
                return True
        elif key not in _LITERAL_KEYWORDS and _has_local_ref(value):
            return True
    return False


def _rebased_refs(schema: Any, base: str) -> Any:
    """A copy of `schema` whose local refs (`#`, `#/...`) point into `base` instead of the root."""
    if isinstance(schema, list):
        return [_rebased_refs(item, base) for item in schema]
    if not isinstance(schema, dict):
        return schema
    rebased = {}
    for key, value in schema.items():
        if key == "$ref" and isinstance(value, str) and value.startswith("#"):
            rebased[key] = base + value[1:]
        elif key in _SCHEMA_MAPS and isinstance(value, dict):  # a property may be named "default"
            rebased[key] = {name: _rebased_refs(sub, base) for name, sub in value.items()}
        elif key in _LITERAL_KEYWORDS:
            rebased[key] = value
        else:
            rebased[key] = _rebased_refs(value, base)
    return rebased


def _convertible(parameters: dict[str, Any]) -> dict[str, Any]:
    """`parameters` when llama.cpp's converter handles them, else "any JSON object"."""
    try:
        rules = _json_rules(_calls_schema([("probe", parameters)]), "")  # "" names the top rule "root"
        _check_gbnf("\n".join(f"{name} ::= {rule}" for name, rule in rules.items()))
    except Exception:  # the converter asserts on shapes it does not know; any failure means fall back
        return _ANY_OBJECT
    return parameters


def within_grammar_limits(schema: Any) -> Any:
    """`schema` without the length and count bounds (and regex patterns) too big to spell out in a
    grammar: see MAX_GRAMMAR_REPEAT. Everything else is kept as it was."""
    if isinstance(schema, list):
        return [within_grammar_limits(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    bounded: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _REPEAT_KEYWORDS and isinstance(value, int | float) and value > MAX_GRAMMAR_REPEAT:
            continue
        if key == "pattern" and isinstance(value, str):
            spelled = grammar_pattern(value)
            if spelled is not None and not _pattern_too_long(spelled):
                bounded[key] = spelled
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):  # property names are not keywords
            bounded[key] = {name: within_grammar_limits(sub) for name, sub in value.items()}
        else:
            bounded[key] = value if key in _LITERAL_KEYWORDS else within_grammar_limits(value)
    return bounded


# Shorthand classes spelled out: llama-cpp-python's converter copies `\d` or `\.` into GBNF as it is,
# which llama.cpp then rejects (so a tool whose schema had `^\d+\.\d+$` lost its whole grammar).
_CLASS_BODIES = {"d": "0-9", "w": "a-zA-Z0-9_", "s": " \\t\\n\\r"}
# Everything Python's `\s` matches: a negated class (`\S`, `[^\s]`) must leave out all of it, or the
# grammar would let through characters the checker then refuses. (`\d` and `\w` are far larger in
# Unicode; a grammar that negates them is left to the checker.)
_ALL_SPACE = (
    " \\t\\n\\r\\x0B\\x0C\\x1C-\\x1F\\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000"
)
_COUNT = re.compile(r"\{\d*(?:,\d*)?\}")
_POSSESSIVE = re.compile(r"(?<!\\)[*+?}]\+")
# Escapes GBNF reads as they are, and those the converter already turns into literals.
_KEPT_ESCAPES = frozenset("tnrxu\\") | frozenset("[]()|{}*+?")


def grammar_pattern(pattern: str) -> str | None:
    """`pattern` in the subset of regular expressions the grammar converter spells correctly: `\\d`,
    `\\w`, `\\s` become ASCII classes (a subset of what they match: the grammar may be narrower than
    the pattern, never wider), `\\S` the class of every non-space, an escaped punctuation mark its
    literal. None when it uses what a grammar cannot say exactly (a word boundary, a back-reference,
    `\\D` or `\\W`, a Unicode property): the grammar then leaves the pattern out, and the checker still
    holds the reply to it."""
    out: list[str] = []
    in_class = negated = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            index += 2
            if escaped in _CLASS_BODIES:
                if in_class and negated:  # `[^\\d]`: the class must leave out every digit there is
                    if escaped != "s":
                        return None
                    out.append(_ALL_SPACE)
                else:  # a subset of what it matches: the grammar is narrower, never wider
                    body = _CLASS_BODIES[escaped]
                    out.append(body if in_class else f"[{body}]")
            elif escaped == "S" and not in_class:
                out.append(f"[^{_ALL_SPACE}]")
            elif escaped in "DWS":
                return None
            elif escaped == "^" and not in_class:
                out.append("[\\x5E]")  # `[^]` would be a negated class
            elif in_class and escaped in "-^[":
                out.append(f"\\x{ord(escaped):02X}")  # GBNF has no `\\^` (nor, safely, `\\-`) escape
            elif in_class and escaped in "{}()|*+?.$/":
                out.append(escaped)  # a literal inside a class, where GBNF has no escape for it
            elif escaped in _KEPT_ESCAPES:
                out.append("\\" + escaped)
            elif not escaped.isalnum():
                out.append(escaped if in_class else f"[{escaped}]")
            else:
                return None
            continue
        if char == "[" and not in_class:
            in_class, negated = True, pattern[index + 1 : index + 2] == "^"
            out.append(char)
            index += 1
            # A `]` (after an optional `^`) first in a class is a literal, not its end.
            if negated:
                out.append("^")
                index += 1
            if pattern[index : index + 1] == "]":
                out.append("\\]")
                index += 1
            continue
        if not in_class and char == "{":
            count = _COUNT.match(pattern, index)
            if count:  # a quantifier, copied whole
                out.append(count[0])
                index = count.end()
                continue
            char = "\\{"
        elif not in_class and char in "]}":
            char = "\\" + char  # a literal (llama-cpp-python's converter loops for ever on a stray one)
        elif char == "]" and in_class:
            in_class = False
        out.append(char)
        index += 1
    spelled = "".join(out)
    try:  # what Python cannot read is no pattern the converter should be handed either
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "possible nested set": still a pattern
            re.compile(spelled)
    except (re.error, OverflowError, RecursionError):
        return None
    # Possessive repeats (`a*+`) have no grammar spelling; the converter writes one llama.cpp refuses.
    return None if _POSSESSIVE.search(spelled) else spelled


def _pattern_too_long(pattern: str) -> bool:
    return len(pattern) > 4 * MAX_GRAMMAR_REPEAT or any(
        int(number) > MAX_GRAMMAR_REPEAT
        for counts in _PATTERN_COUNT.findall(pattern)
        for number in counts
        if number
    )


def _json_rules(schema: dict[str, Any], root_name: str) -> dict[str, str]:
    converter = _converter_class()(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    schema = within_grammar_limits(schema)
    converter.visit(converter.resolve_refs(schema, "tools"), root_name)
    rules = dict(converter._rules)  # the converter has no public accessor for rules by name
    if "char" in rules:
        rules["char"] = _STRICT_CHAR_RULE
    return rules


@functools.cache
def _converter_class() -> type:
    from llama_cpp.llama_grammar import SchemaConverter

    class Converter(SchemaConverter):
        def _format_literal(self, literal: str) -> str:
            # The stock one leaves backslashes alone, so a `"` or `\n` in a property name or enum value
            # (JSON-escaped by then) makes GBNF that llama.cpp cannot parse.
            escaped = (
                literal.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
            )
            return f'"{escaped}"'

        def _generate_constant_rule(self, value: Any) -> str:
            return self._format_literal(json.dumps(value, ensure_ascii=False))  # "Zürich", not "Z\u00fcrich"

    return Converter


def _literal(text: str) -> str:
    return json.dumps(text)  # GBNF string literals escape like JSON for these plain ASCII tags


def _check_gbnf(text: str) -> None:
    """Have llama.cpp parse the grammar now, so a bad one fails here and not mid-chat.

    No vocabulary is needed: llama.cpp only uses it for lazy (trigger-word) grammars, which these are not.
    """
    import llama_cpp

    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escape in a schema's literal
        raise GrammarError("The schema holds half a UTF-16 pair (a lone \\ud800–\\udfff escape).") from None
    sampler = llama_cpp.llama_sampler_init_grammar(None, encoded, b"root")
    if not sampler:
        raise GrammarError("llama.cpp rejected the generated grammar (see its log for the rule).")
    llama_cpp.llama_sampler_free(sampler)
