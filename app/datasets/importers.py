"""Dataset files → Toolsmith rows (`app.datasets.rows`): detect the format, convert, check every record.

Formats, recognised record by record (a file is a JSON array, or JSONL, one record per line):

- "toolsmith": the project's own SFT or DPO rows.
- "openai": OpenAI chat format: assistant `tool_calls` with an `id` and `arguments` as a JSON string;
  tool messages point back with `tool_call_id` (mapped to the function's name).
- "sharegpt": `conversations` of `from`/`value` turns (human, gpt, function_call, observation, system)
  with `tools` as a JSON string of bare function definitions (LLaMA-Factory, glaive); `role`/`content`
  turns and a top-level `system` string are accepted too, and `chosen`/`rejected` turns make it a DPO row.
- "dpo": preference rows whose prompt/chosen/rejected are strings (wrapped as user / assistant messages),
  or that have no prompt (the messages chosen and rejected share become the prompt).
- "prompt-completion": `prompt` + `completion` rows, read as one SFT conversation.
- "xlam": xLAM / APIGen function calling (Salesforce/xlam-function-calling-60k): a `query` (the user
  message), `answers` (the calls, one assistant message) and `tools`, both usually JSON strings; a tool's
  `parameters` map each name to a description and a Python-style type ("str", "List[int]",
  "int, optional"), which becomes JSON Schema (a type with no JSON counterpart, such as "Any" or
  "Union[int, float]", accepts any value; a ", optional" type or a `default` makes the parameter optional).

Along the way, calls written as Hermes `<tool_call>{...}</tool_call>` text in an assistant turn become
structured `tool_calls`, tool definitions are normalised to the OpenAI shape, `split` aliases
("validation", "test", ...) become "eval", and keys other than messages/tools/split/meta are dropped.

A file imports whole or not at all: when any record has a problem, `rows` is empty and `problems` says
what to fix on which line (the first MAX_PROBLEMS of them, after a one-line summary). Importing only the
good rows would train on something other than what the user uploaded without their noticing.
`ImportProblem.line` is the JSONL line, or the item's position (from 1) in a JSON array.

Pure functions, no Flask, no database; `import_dataset` takes any bytes and never raises.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from app.datasets.rows import (
    called_functions,
    json_kind,
    normalise_tools,
    row_has_call,
    row_tools,
    validate_dpo_row,
    validate_sft_row,
)
from app.json_input import loads as loads_json
from app.json_input import printable
from app.serving.tool_calls import TOOL_CALL_CLOSE, TOOL_CALL_OPEN
from app.serving.tool_schema import function_of

DEFAULT_MAX_ROWS = 200_000
MAX_PROBLEMS = 48  # with the summary and the "... and N more" line, the page lists at most 50
NOT_JSON_SUFFIXES = (".csv", ".tsv", ".parquet", ".arrow", ".xlsx", ".xls", ".zip", ".gz", ".tar", ".pdf")

USER_TAGS = frozenset({"human", "user"})
ASSISTANT_TAGS = frozenset({"gpt", "assistant", "model", "chatgpt", "bot"})
SYSTEM_TAGS = frozenset({"system", "developer"})
CALL_TAGS = frozenset({"function_call", "tool_call"})
RESULT_TAGS = frozenset({"observation", "tool", "function", "tool_response"})
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "eval": "eval",
    "evaluation": "eval",
    "validation": "eval",
    "valid": "eval",
    "val": "eval",
    "dev": "eval",
    "test": "eval",
}
_TAGGED_CALL = re.compile(
    re.escape(TOOL_CALL_OPEN) + r"\s*(.*?)\s*(?:" + re.escape(TOOL_CALL_CLOSE) + r"|$)", re.S
)
_A_KIND = {"sft": "an SFT", "dpo": "a DPO"}
# xLAM parameter types (Python's, lower-cased, and JSON Schema's own names) → JSON Schema.
_XLAM_SCALARS = {
    "str": "string",
    "string": "string",
    "int": "integer",
    "integer": "integer",
    "float": "number",
    "number": "number",
    "bool": "boolean",
    "boolean": "boolean",
}
_XLAM_ARRAYS = frozenset({"list", "tuple", "set", "frozenset", "sequence", "array"})
_XLAM_OBJECTS = frozenset({"dict", "mapping", "object"})
_XLAM_TYPE = re.compile(r"(?:typing\.)?([A-Za-z_]\w*)\s*(?:\[(.*)\])?", re.S)
# A JSON string escape for half of a UTF-16 surrogate pair: such text cannot be written back as UTF-8.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")

# xLAM writes no reply for a request none of its tools fits (an empty `answers`): this one is trained
# instead, so the model learns to answer in words rather than call something.
XLAM_NO_CALL_REPLY = "None of the tools I have can do that."


@dataclass(frozen=True)
class ImportProblem:
    """One thing to fix: where (JSONL line or JSON array position; None for the whole file) and what."""

    line: int | None
    message: str


@dataclass
class ImportResult:
    """What a file held: its kind ("sft" | "dpo"), detected format, converted rows, problems."""

    kind: str = "sft"
    format: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)
    records: int = 0  # records read from the file, good or bad

    @property
    def ok(self) -> bool:
        return bool(self.rows) and not self.problems

    @property
    def row_count(self) -> int:
        return len(self.rows)

    @property
    def rows_with_call(self) -> int:
        return sum(1 for row in self.rows if row_has_call(row))

    @property
    def tool_names(self) -> list[str]:
        """Functions offered in any row's tools, sorted."""
        return sorted({name for row in self.rows for name in row_tools(row)})

    @property
    def called_names(self) -> list[str]:
        """Functions some row's answer calls, sorted."""
        return sorted({name for row in self.rows for name in called_functions(row)})


class _Refused(Exception):
    """The file as a whole cannot be read (empty, binary, not JSON, too many rows)."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class _Unreadable:
    """A record that is not JSON (its line's problem)."""

    message: str


def import_dataset(data: bytes, filename: str, max_rows: int = DEFAULT_MAX_ROWS) -> ImportResult:
    """Read a dataset file and convert it to Toolsmith rows; any problem leaves `rows` empty."""
    try:
        text = _decode(data, filename)
        records = _read_records(text, filename, max_rows)
    except _Refused as refusal:
        return ImportResult(problems=[ImportProblem(refusal.line, refusal.message)])
    check_text = bool(_SURROGATE_ESCAPE.search(text))

    result = ImportResult(records=len(records))
    problems: list[ImportProblem] = []
    more_problems = bad_records = 0
    formats: dict[str, None] = {}  # in order of first appearance
    first_line_of: dict[str, int] = {}
    mixed_reported = False
    for line, value in records:
        if isinstance(value, _Unreadable):
            row, kind, record_format, messages = None, None, "", [value.message]
        else:
            row, kind, record_format, messages = _convert_record(value)
        if row is not None and not messages and check_text and not _writable(row):
            messages = ["Holds half of a UTF-16 surrogate pair (a \\ud800-style escape), which is not text."]
        if kind is not None:
            first_line_of.setdefault(kind, line)
            if len(first_line_of) > 1 and kind != result.kind and not mixed_reported:
                first = first_line_of[result.kind]
                messages = [
                    *messages,
                    f"This is {_A_KIND[kind]} row, but line {first} holds {_A_KIND[result.kind]} row; "
                    "a dataset holds one kind only (split the file).",
                ]
                mixed_reported = True
            elif len(first_line_of) == 1:
                result.kind = kind
        if record_format:
            formats.setdefault(record_format, None)
        if messages:
            bad_records += 1
            for message in messages:
                if len(problems) < MAX_PROBLEMS:
                    problems.append(ImportProblem(line, printable(message)))
                else:
                    more_problems += 1
        elif row is not None:
            result.rows.append(row)

    result.format = "+".join(formats)
    if problems:
        total = len(records)
        summary = (
            f"None of the {total} rows can be imported."
            if bad_records == total
            else f"{bad_records} of {total} rows have problems."
        )
        result.problems = [
            ImportProblem(None, summary + " Nothing was imported: fix the file and upload it again.")
        ]
        result.problems.extend(problems)
        if more_problems:
            result.problems.append(ImportProblem(None, f"... and {more_problems} more problems."))
        result.rows = []
    return result


def _decode(data: bytes, filename: str) -> str:
    suffix = PurePath(filename or "").suffix.lower()
    if suffix in NOT_JSON_SUFFIXES:
        raise _Refused(f"Toolsmith imports JSON or JSONL files; convert the {suffix} file to JSONL first.")
    if not bytes(data).strip():
        raise _Refused("The file is empty.")
    if b"\x00" in data:
        raise _Refused(
            "The file is binary, not UTF-8 text (it holds NUL bytes, as UTF-16 text does too). "
            "Upload JSON or JSONL saved as UTF-8."
        )
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        line = bytes(data).count(b"\n", 0, exc.start) + 1
        raise _Refused(
            f"The file is not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x}). "
            "Upload JSON or JSONL saved as UTF-8.",
            line,
        ) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise _Refused("The file is empty.")
    return text


def _read_records(text: str, filename: str, max_rows: int) -> list[tuple[int, Any]]:
    """(line, parsed JSON or `_Unreadable`) for each record: a JSON array's items, or JSONL lines."""
    if text.lstrip().startswith("["):
        return _whole_file_records(text, max_rows)
    # Only "\n" ends a JSONL line: str.splitlines would also split on U+2028 and friends, which JSON
    # allows raw inside strings.
    numbered = [(number, line) for number, line in enumerate(text.split("\n"), start=1) if line.strip()]
    try:
        _loads(numbered[0][1])
    except ValueError:
        # Not JSONL from its first line: perhaps one pretty-printed JSON document.
        try:
            document = _loads(text)
        except ValueError:
            if PurePath(filename or "").suffix.lower() == ".json":
                return _whole_file_records(text, max_rows)  # refuses, with the error's line
        else:
            return _document_records(document, max_rows)
    if len(numbered) > max_rows:
        raise _Refused(f"The file has {len(numbered):,} rows; at most {max_rows:,} can be imported at once.")
    records: list[tuple[int, Any]] = []
    for number, line in numbered:
        try:
            records.append((number, _loads(line)))
        except ValueError as exc:
            records.append((number, _Unreadable(_json_error(exc))))
    return records


def _whole_file_records(text: str, max_rows: int) -> list[tuple[int, Any]]:
    try:
        document = _loads(text)
    except json.JSONDecodeError as exc:
        raise _Refused(f"The file is not valid JSON: {exc.msg} (column {exc.colno}).", exc.lineno) from None
    except ValueError as exc:
        raise _Refused(f"The file is not valid JSON: {exc}.") from None
    return _document_records(document, max_rows)


def _document_records(document: Any, max_rows: int) -> list[tuple[int, Any]]:
    """A JSON array's items numbered from 1, or a single JSON document as record 1."""
    items = document if isinstance(document, list) else [document]
    if not items:
        raise _Refused("The file holds no rows (an empty JSON array).")
    if len(items) > max_rows:
        raise _Refused(f"The file has {len(items):,} rows; at most {max_rows:,} can be imported at once.")
    return list(enumerate(items, start=1))


def _loads(text: str) -> Any:
    """json.loads that refuses NaN/Infinity (not JSON) and reports absurd nesting as a ValueError."""
    return loads_json(text, allow_constants=False)


def _json_error(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"Not valid JSON: {exc.msg} (column {exc.colno})."
    return f"Not valid JSON: {exc}."


def _writable(row: dict[str, Any]) -> bool:
    try:
        json.dumps(row, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError, ValueError):
        return False
    return True


def _convert_record(value: Any) -> tuple[dict[str, Any] | None, str | None, str, list[str]]:
    """One parsed record → (row, kind, format, problems); conversion problems hide validation ones."""
    if not isinstance(value, dict):
        return None, None, "", [f"A row must be a JSON object, got {json_kind(value)}."]
    converter = _Converter()
    try:
        if "chosen" in value or "rejected" in value:
            kind, row = "dpo", converter.dpo_row(value)
        elif "messages" in value or "conversations" in value or ("prompt" in value and "completion" in value):
            kind, row = "sft", converter.sft_row(value)
        elif "query" in value and "answers" in value:
            kind, row = "sft", converter.xlam_row(value)
        elif "prompt" in value:
            return None, None, "", ["A row with a prompt needs chosen and rejected (DPO) or a completion."]
        else:
            keys = ", ".join(_short(key, 24) for key in list(value)[:8]) or "none"
            return (
                None,
                None,
                "",
                [
                    "Not a dataset row: expected messages, conversations, prompt/chosen/rejected, "
                    f"or query/answers (keys: {keys})."
                ],
            )
    except RecursionError:
        return None, None, "", ["The row is nested too deeply."]
    if converter.problems:
        return row, kind, converter.format, converter.problems
    problems = validate_sft_row(row) if kind == "sft" else validate_dpo_row(row)
    return row, kind, converter.format, problems


class _Converter:
    """Converts one record, collecting its problems and noting which format's features it used."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.seen: set[str] = set()

    @property
    def format(self) -> str:
        for name in ("xlam", "sharegpt", "openai", "prompt-completion", "dpo"):
            if name in self.seen:
                return name
        return "toolsmith"

    def sft_row(self, record: dict[str, Any]) -> dict[str, Any]:
        if "conversations" in record:
            self.seen.add("sharegpt")
            messages = self.turns(record["conversations"], "conversations")
        elif "messages" in record:
            messages = self.turns(record["messages"], "messages")
        else:
            self.seen.add("prompt-completion")
            messages = self.side(record["prompt"], "prompt", "user") + self.side(
                record["completion"], "completion", "assistant"
            )
        row: dict[str, Any] = {"messages": self.with_system(record, messages), "tools": self.tools(record)}
        return self.extras(record, row)

    def xlam_row(self, record: dict[str, Any]) -> dict[str, Any]:
        """xLAM / APIGen: the `query` as a user message, the `answers` as one assistant message's calls."""
        self.seen.add("xlam")
        query = record["query"]
        if not isinstance(query, str):
            self.problems.append(f"query must be text, got {json_kind(query)}.")
        parsed, answers = self.decoded(record["answers"], "answers")
        calls: list[dict[str, Any]] = []
        if not parsed:
            pass
        elif not isinstance(answers, list):
            self.problems.append(f"answers must be a list of calls, got {json_kind(answers)}.")
        elif not answers:
            pass  # xLAM's irrelevance records: no tool fits, the answer is a reply without a call
        else:
            for index, raw in enumerate(answers):
                call = self.call(raw, f"answers[{index}]")
                if call is not None:
                    calls.append(call)
        answer: dict[str, Any] = {"role": "assistant", "content": ""}
        if calls:
            answer["tool_calls"] = calls
        elif parsed and isinstance(answers, list) and not answers:
            answer["content"] = XLAM_NO_CALL_REPLY
        messages = [{"role": "user", "content": query if isinstance(query, str) else ""}, answer]
        row: dict[str, Any] = {
            "messages": self.with_system(record, messages),
            "tools": self.xlam_tools(record.get("tools")),
        }
        return self.extras(record, row)

    def dpo_row(self, record: dict[str, Any]) -> dict[str, Any]:
        prompt_key = next((k for k in ("prompt", "conversations", "messages") if k in record), None)
        if prompt_key == "conversations":
            self.seen.add("sharegpt")
        prompt = self.side(record[prompt_key], prompt_key, "user") if prompt_key else None
        answers = {
            key: self.side(record[key], key, "assistant") for key in ("chosen", "rejected") if key in record
        }
        if prompt is None and len(answers) == 2:
            # TRL's implicit-prompt preference rows: chosen and rejected repeat the conversation so far.
            self.seen.add("dpo")
            shared = 0
            chosen, rejected = answers["chosen"], answers["rejected"]
            while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
                shared += 1
            prompt, answers = chosen[:shared], {"chosen": chosen[shared:], "rejected": rejected[shared:]}
        elif prompt:
            for key, answer in answers.items():
                if len(answer) > len(prompt) and answer[: len(prompt)] == prompt:
                    answers[key] = answer[len(prompt) :]
        row: dict[str, Any] = {}
        if prompt is not None:
            row["prompt"] = self.with_system(record, prompt)
        row.update(answers)
        row["tools"] = self.tools(record)
        return self.extras(record, row)

    def side(self, value: Any, path: str, role: str) -> list[dict[str, Any]]:
        """A prompt or an answer: a string (one `role` message), one message object, or a list of them."""
        if isinstance(value, str):
            self.seen.add("dpo")
            return self.turns([{"role": role, "content": value}], path)
        if isinstance(value, dict):
            return self.turns([value], path)
        return self.turns(value, path)

    def with_system(self, record: dict[str, Any], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        system = record.get("system")
        if isinstance(system, str) and system.strip() and not (messages and messages[0]["role"] == "system"):
            return [{"role": "system", "content": system}, *messages]
        return messages

    def turns(self, turns: Any, path: str) -> list[dict[str, Any]]:
        """OpenAI / Toolsmith messages or ShareGPT turns → Toolsmith messages."""
        if not isinstance(turns, list):
            self.problems.append(f"{path} must be a list of messages, got {json_kind(turns)}.")
            return []
        messages: list[dict[str, Any]] = []
        call_names: dict[str, str] = {}  # OpenAI tool_call_id → function name
        pending: list[str] = []  # calls of the last assistant turn, for results that do not say which
        answered = 0
        for index, turn in enumerate(turns):
            where = f"{path}[{index}]"
            if not isinstance(turn, dict):
                self.problems.append(f"{where} must be a message object, got {json_kind(turn)}.")
                continue
            if "role" not in turn and ("from" in turn or "value" in turn):
                self.seen.add("sharegpt")
                raw_tag, value = turn.get("from"), turn.get("value")
            else:
                raw_tag, value = turn.get("role"), turn.get("content")
            tag = raw_tag.strip().lower() if isinstance(raw_tag, str) else None
            if tag in CALL_TAGS:
                calls = self.calls_from_text(value, f"{where}.value")
                names = [call["function"]["name"] for call in calls]
                last = messages[-1] if messages else None
                if last is not None and last["role"] == "assistant":
                    # "gpt" text then "function_call" (or two calls in a row): one assistant turn.
                    last["tool_calls"] = [*last.get("tool_calls", []), *calls]
                    pending = pending + names
                else:
                    messages.append({"role": "assistant", "content": "", "tool_calls": calls})
                    pending = names
                answered = 0
            elif tag in ASSISTANT_TAGS:
                message = self.assistant(turn, value, where, call_names)
                messages.append(message)
                pending, answered = [c["function"]["name"] for c in message.get("tool_calls", [])], 0
            elif tag in RESULT_TAGS:
                messages.append(self.result(turn, value, where, call_names, pending[answered:]))
                answered += 1
            elif tag in USER_TAGS or tag in SYSTEM_TAGS:
                role = "user" if tag in USER_TAGS else "system"
                messages.append({"role": role, "content": self.text(value, f"{where}.content")})
                pending, answered = [], 0
            else:
                self.problems.append(
                    f"{where}: unknown role {_short(raw_tag)} (expected system, user, assistant or tool; "
                    "or ShareGPT's human, gpt, function_call, observation)."
                )
        return messages

    def assistant(
        self, turn: dict[str, Any], value: Any, where: str, call_names: dict[str, str]
    ) -> dict[str, Any]:
        content = self.text(value, f"{where}.content")
        calls: list[dict[str, Any]] = []
        raw_calls = turn.get("tool_calls")
        if isinstance(raw_calls, list):
            for index, raw in enumerate(raw_calls):
                call = self.call(raw, f"{where}.tool_calls[{index}]")
                if call is not None:
                    calls.append(call)
                call_id = raw.get("id") if isinstance(raw, dict) else None
                if isinstance(call_id, str):
                    # Mapped even when the call itself is broken, so its result is not reported as well.
                    self.seen.add("openai")
                    function = raw.get("function") if isinstance(raw.get("function"), dict) else {}
                    call_names[call_id] = call["function"]["name"] if call else str(function.get("name"))
        elif raw_calls is not None:
            self.problems.append(f"{where}.tool_calls must be a list of calls, got {json_kind(raw_calls)}.")
        legacy = turn.get("function_call")  # OpenAI's older single-call field
        if isinstance(legacy, dict) and not calls:
            call = self.call(legacy, f"{where}.function_call")
            calls.extend([call] if call is not None else [])
        if not calls and TOOL_CALL_OPEN in content:
            calls = self.calls_from_tags(content, f"{where}.content")
            content = _TAGGED_CALL.sub("", content).strip()
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            message["tool_calls"] = calls
        return message

    def result(
        self, turn: dict[str, Any], value: Any, where: str, call_names: dict[str, str], unanswered: list[str]
    ) -> dict[str, Any]:
        name = turn.get("name") if isinstance(turn.get("name"), str) and turn.get("name") else None
        call_id = turn.get("tool_call_id")
        if call_id is not None:
            self.seen.add("openai")
            mapped = call_names.get(call_id) if isinstance(call_id, str) else None
            if mapped is None:
                self.problems.append(f"{where}.tool_call_id {_short(call_id)} matches no earlier tool call.")
            elif name is not None and name != mapped:
                self.problems.append(f"{where}.name {name!r} differs from the call it answers ({mapped!r}).")
            name = mapped or name
        elif name is None and unanswered:
            name = unanswered[0]
        message: dict[str, Any] = {"role": "tool"}
        if name is not None:
            message["name"] = name
        message["content"] = self.text(value, f"{where}.content", allow_json=True)
        return message

    def calls_from_text(self, value: Any, where: str) -> list[dict[str, Any]]:
        """A ShareGPT function_call turn: `{name, arguments}` or a list of them, usually as JSON text."""
        if isinstance(value, str):
            try:
                value = _loads(value)
            except ValueError as exc:
                self.problems.append(f"{where}: the function call is not valid JSON ({exc}).")
                return []
        items = value if isinstance(value, list) else [value]
        calls = [
            self.call(item, f"{where}[{index}]" if isinstance(value, list) else where)
            for index, item in enumerate(items)
        ]
        if not items:
            self.problems.append(f"{where}: the function call is empty.")
        return [call for call in calls if call is not None]

    def calls_from_tags(self, content: str, where: str) -> list[dict[str, Any]]:
        calls = []
        for block in _TAGGED_CALL.findall(content):
            try:
                payload = _loads(block)
            except ValueError:
                self.problems.append(f"{where}: a {TOOL_CALL_OPEN} block is not valid JSON.")
                continue
            call = self.call(payload, where)
            if call is not None:
                calls.append(call)
        return calls

    def call(self, raw: Any, where: str) -> dict[str, Any] | None:
        """One call, OpenAI-shaped or bare `{name, arguments}`, → `{"type": "function", "function": ...}`."""
        if not isinstance(raw, dict):
            self.problems.append(f"{where} must be a call object, got {json_kind(raw)}.")
            return None
        function = raw["function"] if isinstance(raw.get("function"), dict) else raw
        name = function.get("name")
        if not isinstance(name, str) or not name.strip():
            self.problems.append(f"{where}: the call needs a function name, got {_short(name)}.")
            return None
        arguments = function.get("arguments", function.get("parameters", {}))
        if isinstance(arguments, str):  # OpenAI sends arguments as JSON text
            if "function" in raw:
                self.seen.add("openai")
            try:
                arguments = _loads(arguments) if arguments.strip() else {}
            except ValueError as exc:
                self.problems.append(f"{where}: the arguments of {name!r} are not valid JSON ({exc}).")
                return None
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            self.problems.append(
                f"{where}: the arguments of {name!r} must be a JSON object, got {json_kind(arguments)}."
            )
            return None
        return {"type": "function", "function": {"name": name, "arguments": arguments}}

    def text(self, value: Any, where: str, allow_json: bool = False) -> str:
        if isinstance(value, str):
            return value
        if value is None:
            return ""
        if isinstance(value, list) and all(
            isinstance(p, dict) and isinstance(p.get("text"), str) for p in value
        ):
            return "".join(part["text"] for part in value)  # OpenAI content parts
        if allow_json and isinstance(value, dict | list | int | float | bool):
            return json.dumps(value, ensure_ascii=False)
        self.problems.append(f"{where} must be text, got {json_kind(value)}.")
        return ""

    def decoded(self, value: Any, path: str) -> tuple[bool, Any]:
        """A field that may hold JSON as text → (True, its value), or (False, None) and a problem."""
        if not isinstance(value, str):
            return True, value
        try:
            return True, _loads(value)
        except ValueError as exc:
            self.problems.append(f"{path} is text but not valid JSON ({exc}).")
            return False, None

    def tools(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        key = "tools"
        if record.get("tools") in (None, "", []) and record.get("functions") not in (None, "", []):
            key = "functions"  # OpenAI's older function-calling format: bare definitions, no "type"
        value = record.get(key)
        if isinstance(value, str) and not value.strip():
            return []
        parsed, value = self.decoded(value, key)
        if not parsed or value is None or value == []:
            return []
        tools, errors = normalise_tools(value)
        self.problems.extend(errors)
        return tools

    def xlam_tools(self, value: Any) -> list[dict[str, Any]]:
        """xLAM `tools`: a list (usually as JSON text) of definitions whose parameters are typed by name."""
        if isinstance(value, str) and not value.strip():
            return []
        parsed, value = self.decoded(value, "tools")
        if not parsed or value is None or value == []:
            return []
        if not isinstance(value, list):
            self.problems.append(f"tools must be a list of tool definitions, got {json_kind(value)}.")
            return []
        converted = [self.xlam_tool(tool, position) for position, tool in enumerate(value, start=1)]
        tools, errors = normalise_tools(converted)
        self.problems.extend(errors)
        return tools

    def xlam_tool(self, tool: Any, position: int) -> Any:
        """A definition with xLAM parameters → JSON Schema parameters; others as they are (checked later)."""
        function = function_of(tool)
        parameters = function.get("parameters") if function is not None else None
        if function is None or not isinstance(parameters, dict) or isinstance(parameters.get("type"), str):
            return tool  # JSON Schema already (`"type": "object"`), or broken in a way normalise_tools says
        schema, problems = _xlam_parameters(parameters)
        name = function.get("name")
        label = f"tool {position}" + (
            f" ({printable(name[:64])})" if isinstance(name, str) and name.strip() else ""
        )
        self.problems.extend(f"tools: {label}: {problem}." for problem in problems)
        converted = {**function, "parameters": schema}
        return converted if function is tool else {**tool, "function": converted}

    def extras(self, record: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
        split = record.get("split")
        if isinstance(split, str) and split.strip().lower() in SPLIT_ALIASES:
            row["split"] = SPLIT_ALIASES[split.strip().lower()]
        elif split is not None:
            self.problems.append(f'split must be "train" or "eval", got {_short(split)}.')
        meta = record.get("meta")
        if isinstance(meta, dict):
            row["meta"] = meta
        elif meta is not None:
            self.problems.append(f"meta must be an object, got {json_kind(meta)}.")
        return row


def _xlam_parameters(parameters: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """xLAM parameters (name → description, Python-style type, optional default) → (JSON Schema, problems)."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    problems: list[str] = []
    for name, spec in parameters.items():
        if not isinstance(spec, dict):
            problems.append(
                f"parameter {_short(name)} must be an object (description, type), got {json_kind(spec)}"
            )
            continue
        schema: dict[str, Any] = {}
        description, declared = spec.get("description"), spec.get("type")
        if isinstance(description, str):
            schema["description"] = description
        elif description is not None:
            problems.append(
                f"parameter {_short(name)}: description must be text, got {json_kind(description)}"
            )
        optional = "default" in spec
        if isinstance(declared, str):
            parts = _top_level_parts(declared)
            if len(parts) > 1 and parts[-1].lower() == "optional":
                optional, declared = True, ", ".join(parts[:-1])
            schema.update(_xlam_schema(declared))
        elif declared is not None:
            problems.append(
                f'parameter {_short(name)}: type must be text such as "str" or "List[int]", '
                f"got {json_kind(declared)}"
            )
        if "default" in spec and _plain_json(spec["default"]):
            schema["default"] = spec["default"]
        properties[name] = schema
        if not optional:
            required.append(name)
    return {"type": "object", "properties": properties, "required": required}, problems


def _xlam_schema(declared: str) -> dict[str, Any]:
    """A Python-style type ("int", "List[str]", "Dict[str, Any]") → JSON Schema; {} (any value) for one with
    no JSON counterpart ("Any", "Union[int, float]", "Callable", ...)."""
    match = _XLAM_TYPE.fullmatch(declared.strip())
    if match is None:
        return {}
    head, inner = match.group(1).lower(), match.group(2)
    if head in _XLAM_SCALARS and inner is None:
        return {"type": _XLAM_SCALARS[head]}
    if head in _XLAM_OBJECTS:
        return {"type": "object"}
    if head not in _XLAM_ARRAYS:
        return {}
    schema: dict[str, Any] = {"type": "array"}
    # List[int], Set[str], Tuple[int, int] and Tuple[int, ...] have items of one type; Tuple[int, str] not.
    items = [_xlam_schema(part) for part in _top_level_parts(inner or "") if part != "..."]
    if items and items[0] and all(item == items[0] for item in items):
        schema["items"] = items[0]
    return schema


def _top_level_parts(text: str) -> list[str]:
    """`text` split at the commas outside brackets, stripped: "Dict[str, int], optional" → 2 parts."""
    parts: list[str] = []
    depth = start = 0
    for index, char in enumerate(text):
        if char in "[({":
            depth += 1
        elif char in "])}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index].strip())
            start = index + 1
    parts.append(text[start:].strip())
    return parts


def _plain_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
