"""What goes wrong with an OpenAPI document or a call against it, said so that a user can act on it."""

from __future__ import annotations

from dataclasses import dataclass


class SpecError(Exception):
    """A document that cannot be read or used: `message` for the user, `location` where (if known)."""

    def __init__(self, message: str, location: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        return f"{self.message} (at {self.location})" if self.location else self.message


class UnknownOperation(SpecError):
    """A tool call names no operation of the spec."""


@dataclass(frozen=True)
class SpecProblem:
    """One thing wrong with a document: a sentence and a dotted path such as `paths./pet.post.responses`."""

    message: str
    location: str | None = None


def format_location(parts: tuple[str | int, ...] | list[str | int]) -> str:
    """`("paths", "/pet", "post")` → `paths./pet.post`; the root is `(root)`."""
    return ".".join(str(part) for part in parts) if parts else "(root)"
