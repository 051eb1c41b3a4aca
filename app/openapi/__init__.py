"""OpenAPI documents → tools for the chat playground, and checks of the HTTP requests a model's calls make.

Pure Python, no Flask: `load_document` (JSON/YAML, refusing unsafe input) → `validate_document` (never
fetches anything) → `normalise` (one flat list of operations, self-contained JSON Schemas) → `spec_tools`,
`tool_call_to_request`, `check_request` / `check_tool_call` and `example_prompts`.
"""

from __future__ import annotations

from app.openapi.errors import SpecError, SpecProblem, UnknownOperation
from app.openapi.examples import example_prompts
from app.openapi.http_check import CHECK_NAMES, Check, check_request, check_tool_call
from app.openapi.normalise import BodySpec, NormalisedSpec, Operation, Parameter, normalise
from app.openapi.parsing import detect_version, load_document
from app.openapi.tools import HttpRequest, operation_tool, spec_tools, tool_call_to_request
from app.openapi.validate import validate_document

__all__ = [
    "CHECK_NAMES",
    "BodySpec",
    "Check",
    "HttpRequest",
    "NormalisedSpec",
    "Operation",
    "Parameter",
    "SpecError",
    "SpecProblem",
    "UnknownOperation",
    "check_request",
    "check_tool_call",
    "detect_version",
    "example_prompts",
    "load_document",
    "normalise",
    "operation_tool",
    "spec_tools",
    "tool_call_to_request",
    "validate_document",
]
