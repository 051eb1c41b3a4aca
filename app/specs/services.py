"""Importing an OpenAPI document: parse safely, validate, normalise, store as a new version."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import ApiSpec
from app.openapi.errors import SpecError, SpecProblem
from app.openapi.normalise import normalise
from app.openapi.parsing import load_document
from app.openapi.validate import validate_document
from app.ownership import owned

VERSION_ATTEMPTS = 3


class SpecImportError(Exception):
    def __init__(self, problems: list[SpecProblem]):
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


def _refuse_lone_surrogates(document: Any) -> None:
    """A `\\ud83d` escape with no pair (half an emoji, from a cut string) parses as JSON but is no text
    UTF-8 can hold: generating a dataset from it failed later with a 500."""
    try:
        json.dumps(document, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError as exc:
        where = exc.object[max(exc.start - 40, 0) : exc.start].encode("utf-8", "replace").decode()
        raise SpecError(f"A broken \\u escape (half a UTF-16 pair) follows {where!r}.") from None
    except (RecursionError, ValueError):
        pass  # the validator reports those shapes itself


def import_spec(data: bytes | str, filename: str | None, name: str | None) -> ApiSpec:
    """A new `ApiSpec` row (the next version when the name exists), or `SpecImportError` and no row."""
    max_bytes = current_app.config["MAX_SPEC_UPLOAD_BYTES"]
    try:
        document = load_document(data, filename, max_bytes=max_bytes)
        _refuse_lone_surrogates(document)
        problems = validate_document(document)
        if problems:
            raise SpecImportError(problems)
        spec = normalise(document)
    except SpecError as exc:
        raise SpecImportError([SpecProblem(exc.message, exc.location)]) from exc
    # The title comes from the document, NUL characters and all: stripped here, before the version
    # lookup, not only when the row is saved (the lookup and the unique version would disagree).
    name = (name or spec.title or (filename or "spec").rsplit(".", 1)[0]).replace("\x00", "")
    name = name.strip()[:120] or "spec"
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    for _ in range(VERSION_ATTEMPTS):
        latest = db.session.execute(
            sa.select(sa.func.max(ApiSpec.version_number)).where(
                ApiSpec.owner_id == current_user.id, ApiSpec.name == name
            )
        ).scalar()
        row = ApiSpec(
            owner_id=current_user.id,
            name=name,
            version_number=(latest or 0) + 1,
            title=spec.title[:300],
            api_version=spec.version[:64],
            spec_format=spec.spec_format,
            source_filename=(filename or "")[:255] or None,
            raw_text=text,
            normalised=spec.to_dict(),
            operation_count=len(spec.operations),
            base_urls=spec.base_urls,
        )
        db.session.add(row)
        try:
            db.session.commit()
            return row
        except IntegrityError:  # another import of this name took the version meanwhile: the next one
            db.session.rollback()
    raise SpecImportError(
        [SpecProblem("Other imports of this name kept taking its next version: import again.")]
    )


def list_specs() -> list[ApiSpec]:
    return list(
        db.session.execute(owned(ApiSpec).order_by(ApiSpec.name, ApiSpec.version_number.desc())).scalars()
    )


def delete_spec(spec: ApiSpec) -> None:
    db.session.delete(spec)
    db.session.commit()
