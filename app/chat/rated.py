"""Rated replies: every reply the user rated, newest first, and the good ones saved as an SFT dataset.

Rating as you chat is the cheapest feedback there is; this page turns it into training data in one step
(the good replies, as they were, with their conversations and tools), and lists the bad ones with a link
to each, where *Save as training example* can record the correction as a preference pair.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from wtforms import StringField
from wtforms.validators import InputRequired, Length

from app.chat import bp
from app.chat.examples import (
    answer_of,
    answer_problems,
    offered_tools,
    pair_row,
    prompt_messages,
    training_row,
)
from app.chat.forms import RATINGS
from app.datasets.services import DatasetError, store_rows, unique_name
from app.extensions import db
from app.form_base import Form
from app.models import ChatMessage, ChatSession, Dataset, DatasetKind

SHOWN = 100  # rows on the page; saving takes every good reply up to MAX_SAVED
MAX_SAVED = 5000
UNPROCESSABLE = 422


class SaveRatedForm(Form):
    name = StringField("Dataset name", validators=[InputRequired("Name the dataset."), Length(max=100)])


def rated_query(rating: int | None, model_id: int | None = None) -> sa.Select:
    """The user's rated replies (one verdict, or both), newest first; only their own sessions match, and
    not an arena side before its vote (the filter and the rows would name its model)."""
    query = (
        sa.select(ChatMessage)
        .join(ChatSession, ChatSession.id == ChatMessage.session_id)
        .where(ChatSession.owner_id == current_user.id, ChatMessage.role == "assistant")
        .where(ChatSession.blind_label.is_(None))  # an arena side before its vote names no model
        .order_by(ChatMessage.id.desc())
    )
    query = query.where(ChatMessage.rating == rating if rating else ChatMessage.rating.is_not(None))
    return query.where(ChatMessage.model_id == model_id) if model_id else query


@bp.route("/rated")
@login_required
def rated():
    return _page(_good_form())


@bp.route("/rated/dataset", methods=["POST"])
@login_required
def save_rated():
    """Every good reply (of one model, if picked) as an SFT row in a new dataset."""
    form = SaveRatedForm()
    _, model_id = _filters()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return _page(form, sum(form.errors.values(), [])), UNPROCESSABLE
    replies = db.session.execute(rated_query(1, model_id).limit(MAX_SAVED)).scalars()
    rows, skipped = good_rows(list(replies))
    if not rows:
        reasons = ["No good reply can become a row yet: rate some replies 👍 Good first."]
        if skipped:
            reasons.append(f"{skipped} skipped: their calls break the tools' schemas.")
        return _page(form, reasons), UNPROCESSABLE
    options = {"from": "rated replies", "skipped": skipped}
    dataset, problems = save_chat_dataset(form.name.data, DatasetKind.SFT, rows, options)
    if dataset is None:
        return _page(form, problems), UNPROCESSABLE
    return redirect(url_for("datasets.detail", dataset_id=dataset.id))


@bp.route("/rated/pairs", methods=["POST"])
@login_required
def save_pairs():
    """Each good reply that replaced a bad one (regenerated) as a DPO pair in a new dataset."""
    form = SaveRatedForm(prefix="pairs")
    _, model_id = _filters()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return _page(_good_form(), sum(form.errors.values(), [])), UNPROCESSABLE
    rows = regenerated_pairs(pair_candidates(model_id))
    if not rows:
        reasons = ["No pair yet: rate a reply 👎 Bad, regenerate it, and rate the new one 👍 Good."]
        return _page(_good_form(), reasons), UNPROCESSABLE
    options = {"from": "rated replies (regenerated pairs)"}
    dataset, problems = save_chat_dataset(form.name.data, DatasetKind.DPO, rows, options)
    if dataset is None:
        return _page(_good_form(), problems), UNPROCESSABLE
    return redirect(url_for("datasets.detail", dataset_id=dataset.id))


def save_chat_dataset(
    name: str, kind: DatasetKind, rows: list[dict[str, Any]], options: dict[str, Any]
) -> tuple[Dataset | None, list[str]]:
    """Rows taken from the user's chats as a new dataset of theirs (a free name made of `name`); or
    None and why the rows were refused."""
    try:
        dataset = store_rows(
            current_user.id,
            unique_name(name),
            kind.value,
            rows,
            source="chat",
            source_format="toolsmith",
            options=options,
        )
    except DatasetError as exc:
        return None, [problem.message for problem in exc.problems]
    return dataset, []


def pair_candidates(model_id: int | None) -> list[ChatMessage]:
    """Good replies in sessions where a bad reply was regenerated: the only places a pair can be."""
    regenerated_bad = sa.select(ChatMessage.session_id).where(
        ChatMessage.replaced.is_(True), ChatMessage.rating == -1
    )
    query = rated_query(1, model_id).where(ChatMessage.session_id.in_(regenerated_bad)).limit(MAX_SAVED)
    return list(db.session.execute(query).scalars())


def regenerated_pairs(good: list[ChatMessage]) -> list[dict[str, Any]]:
    """DPO rows, oldest first: a good reply chosen over each bad one it replaced (the same user turn,
    regenerated), when both are usable answers and they differ."""
    rows = []
    tools_of: dict[int, list[dict[str, Any]]] = {}
    for message in sorted(good, key=lambda m: m.id):
        session = message.session
        asked = _user_turn_before(message)
        rejected = [
            turn
            for turn in session.messages
            if turn.role == "assistant" and turn.replaced and turn.rating == -1 and turn.id < message.id
            and _user_turn_before(turn) == asked
        ]  # fmt: skip
        prompt = prompt_messages(session, message) if rejected else []
        if not prompt or prompt[-1]["role"] != "user":
            continue  # no bad reply it replaced, or a reply to a tool result (DPO prompts end with the user)
        if session.id not in tools_of:
            tools_of[session.id] = offered_tools(session)
        chosen = answer_of(message)
        if answer_problems(tools_of[session.id], chosen):
            continue
        for bad in rejected:
            worse = answer_of(bad)
            if worse != chosen and (worse.content or worse.calls):
                rows.append(pair_row(session, message, chosen, worse, "train", tools_of[session.id]))
    return rows


def _user_turn_before(message: ChatMessage) -> int | None:
    before = [m.id for m in message.session.messages if m.id < message.id and m.role == "user"]
    return before[-1] if before else None


def rating_counts(model_id: int | None = None) -> dict[str, int]:
    """How many of the user's replies (of one model, if given) they rated good and bad."""
    counts = dict(
        db.session.execute(
            sa.select(ChatMessage.rating, sa.func.count())
            .join(ChatSession, ChatSession.id == ChatMessage.session_id)
            .where(ChatSession.owner_id == current_user.id, ChatMessage.rating.is_not(None))
            .where(ChatMessage.model_id == model_id if model_id else sa.true())
            .group_by(ChatMessage.rating)
        ).all()
    )
    return {"good": counts.get(1, 0), "bad": counts.get(-1, 0)}


def good_rows(replies: list[ChatMessage]) -> tuple[list[dict[str, Any]], int]:
    """SFT rows, oldest first, of the replies whose answer is a usable example; and how many were not."""
    rows, skipped = [], 0
    tools_of: dict[int, list[dict[str, Any]]] = {}  # built once per session (a spec's tools cost a parse)
    for message in sorted(replies, key=lambda m: m.id):
        session = message.session
        if session.id not in tools_of:
            tools_of[session.id] = offered_tools(session)
        answer = answer_of(message)
        if answer_problems(tools_of[session.id], answer):
            skipped += 1
            continue
        rows.append(training_row(session, message, answer, "train", tools_of[session.id]))
    return rows, skipped


def _good_form() -> SaveRatedForm:
    return SaveRatedForm(formdata=None, name="Rated good replies")


def _filters() -> tuple[int | None, int | None]:
    rating = RATINGS.get(request.args.get("rating", ""))
    model = request.args.get("model", "")
    return rating, int(model) if model.isdecimal() and len(model) < 10 else None


def _prompt_of(message: ChatMessage) -> str:
    """The user message the reply answered (the last one before it)."""
    before = [m for m in message.session.messages if m.id < message.id and m.role == "user"]
    return before[-1].content if before else ""


def _rated_models() -> list[tuple[int, str]]:
    query = (
        sa.select(ChatMessage.model_id, sa.func.max(ChatMessage.model_name))
        .join(ChatSession, ChatSession.id == ChatMessage.session_id)
        .where(ChatSession.owner_id == current_user.id, ChatMessage.rating.is_not(None))
        .where(ChatMessage.model_id.is_not(None), ChatSession.blind_label.is_(None))
        .group_by(ChatMessage.model_id)
    )
    return sorted(((mid, name or "") for mid, name in db.session.execute(query)), key=lambda item: item[1])


def _page(form: SaveRatedForm, problems: list[str] | None = None) -> str:
    rating, model_id = _filters()
    shown = list(db.session.execute(rated_query(rating, model_id).limit(SHOWN)).scalars())
    return render_template(
        "chat/rated.html",
        replies=[(m, _prompt_of(m)) for m in shown],
        rating=request.args.get("rating", ""),
        model_id=model_id,
        models=_rated_models(),
        counts=rating_counts(model_id),
        pairs=len(regenerated_pairs(pair_candidates(model_id))),
        form=form,
        pairs_form=SaveRatedForm(formdata=None, prefix="pairs", name="Preference pairs from chat"),
        problems=problems or [],
    )
