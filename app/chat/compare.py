"""Compare models: one prompt, several models, answers side by side.

A comparison is a group of ordinary chat sessions, one per model, tagged `compare:<group>`: each answer
streams through the chat's own path (the same SSE stream, stop button, tool-call checks and figures for
Analytics), each session can be opened and continued on its own, and a follow-up prompt on the compare
page goes to every session of the group.
"""

from __future__ import annotations

import re
import secrets

import sqlalchemy as sa
from flask import abort, redirect, render_template, request, url_for
from flask_login import login_required

from app.chat import bp, services
from app.chat.forms import MAX_COMPARED_MODELS, ActionForm, CompareForm, MessageForm, ToolResultForm
from app.chat.no_script import sent_without_script, write_pending_replies
from app.extensions import db
from app.models import ChatMode, ChatSession, ChatSessionTag, LLMModel
from app.ownership import owned

TAG_PREFIX = "compare:"
_GROUP = re.compile(r"^[0-9a-f]{8}$")
UNPROCESSABLE = 422
CONFLICT = 409
FOLLOW_UP_REFUSED = (
    "An answer is still being written (or another tab sent meanwhile): wait for every answer to finish, "
    "then send."
)


@bp.route("/compare", methods=["GET", "POST"])
@login_required
def compare():
    form = _compare_form()
    if request.method == "GET":  # ?models=3&models=7 (a model's or a run's page) picks those
        offered = [value for value, _ in form.models.choices]
        asked = [m for m in request.args.getlist("models", type=int) if m in offered][:MAX_COMPARED_MODELS]
        form.models.data = asked or offered[:2]
        return render_template("chat/compare_new.html", form=form)
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return render_template("chat/compare_new.html", form=form), UNPROCESSABLE
    spec = services.owned_spec(form.spec.data) if form.spec.data else None
    group = start_comparison(form.models.data, spec, form, form.content.data.strip())
    if sent_without_script():
        write_pending_replies(_group_sessions(group))
    return redirect(url_for("chat.comparison", group=group))


@bp.route("/compare/<group>")
@login_required
def comparison(group: str):
    return _comparison_page(group, _group_sessions(group))


@bp.route("/compare/<group>/messages", methods=["POST"])
@login_required
def compare_send(group: str):
    sessions = _group_sessions(group)
    form = MessageForm()
    text = follow_up_text(form)
    if text is None:
        return _comparison_page(group, sessions, form), UNPROCESSABLE
    if services.add_user_turns(sessions, text) is None:
        form.content.errors = [FOLLOW_UP_REFUSED]
        return _comparison_page(group, sessions, form), CONFLICT
    if sent_without_script():
        write_pending_replies(sessions)
    return redirect(url_for("chat.comparison", group=group))


def follow_up_text(form: MessageForm) -> str | None:
    """A follow-up for every session of a group (Compare, Arena): its text, or None with the form's
    errors set (a bad CSRF token is a 400)."""
    if form.validate_on_submit() and form.content.data.strip():
        return form.content.data.strip()
    if "csrf_token" in form.errors:
        abort(400)
    if not form.content.errors:
        form.content.errors = ["Type a message."]
    return None


def _comparison_page(group: str, sessions: list[ChatSession], form: MessageForm | None = None) -> str:
    return render_template(
        "chat/compare.html",
        group=group,
        columns=[(chat, services.session_messages(chat)) for chat in sessions],
        message_form=form or MessageForm(formdata=None),
        action_form=ActionForm(),
        tool_result_form=ToolResultForm(),
    )


def start_comparison(model_ids: list[int], spec, settings: CompareForm, text: str) -> str:
    """One session per model, the prompt sent to each; the group's id."""
    group = secrets.token_hex(4)
    models = [services.usable_model(model_id) for model_id in dict.fromkeys(model_ids)]
    if None in models:
        abort(404)
    open_sessions(models, spec, settings, text, TAG_PREFIX + group)
    return group


def open_sessions(
    models: list[LLMModel], spec, settings: CompareForm, text: str, tag: str, labels: list[str] | None = None
) -> list[ChatSession]:
    """A session per model with the same tools, tool choice, system prompt and sampling, tagged `tag`,
    and `text` sent to each. `labels`: what each session shows instead of its model (the arena)."""
    sessions = []
    for index, model in enumerate(models):
        chat = services.create_session(model, ChatMode.CHAT, None)
        chat.tool_choice = settings.tool_choice.data
        chat.system_prompt = (settings.system_prompt.data or "").strip()
        chat.temperature = settings.temperature.data or 0.0
        if settings.max_tokens.data:
            chat.max_tokens = settings.max_tokens.data
        if labels:
            chat.blind_label = labels[index]
        if spec is not None:
            services.attach_spec_tools(chat, spec)
        services.set_tags(chat, [tag])
        services.add_user_turn(chat, text)
        sessions.append(chat)
    return sessions


def _group_sessions(group: str) -> list[ChatSession]:
    """The user's sessions of one comparison; another user's group is a 404 like a missing one."""
    if not _GROUP.fullmatch(group):
        abort(404)
    tagged = sa.select(ChatSessionTag.session_id).where(ChatSessionTag.tag == TAG_PREFIX + group)
    # An arena side before its vote is left out: this page names each session's model.
    query = owned(ChatSession).where(ChatSession.id.in_(tagged), ChatSession.blind_label.is_(None))
    query = query.order_by(ChatSession.id)
    sessions = list(db.session.execute(query).scalars())
    if not sessions:
        abort(404)
    return sessions


def _compare_form() -> CompareForm:
    form = CompareForm()
    form.models.choices = [(model.id, model.name) for model in services.usable_models()]
    form.spec.choices = [(None, "No tools")] + [(spec.id, spec.label) for spec in services.user_specs()]
    return form
