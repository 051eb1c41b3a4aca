"""Chat pages: sessions, streamed replies (server-sent events), stop, tools, tool results, settings."""

from __future__ import annotations

from flask import Response, abort, redirect, render_template, request, stream_with_context, url_for
from flask_login import login_required

from app.chat import bp, services
from app.chat.arena import battle_of_session
from app.chat.forms import (
    RATINGS,
    ActionForm,
    MessageForm,
    NewSessionForm,
    RatingForm,
    RenameForm,
    SettingsForm,
    TagsForm,
    ToolResultForm,
    ToolsForm,
)
from app.chat.generation import await_other_writer, claim, run_reply, warm_session
from app.chat.no_script import chat_page, sent_without_script, write_pending_replies
from app.chat.streaming import sse_event
from app.extensions import db, htmx
from app.models import ChatMessage, ChatMode, ChatSession, MessageStatus
from app.ownership import get_owned_child_or_404, get_owned_or_404

UNPROCESSABLE = 422
CONFLICT = 409
REPLY_IN_PROGRESS = "A reply is still being written: wait for it to finish (or stop it), then send."
CHANGED_MEANWHILE = "The conversation changed meanwhile (another tab?): reload the page, then send."


def _model_choices():
    return [(m.id, m.name) for m in services.usable_models()]


def _spec_choices(blank: str = "—"):
    return [(None, blank)] + [(s.id, s.label) for s in services.user_specs()]


def _new_session_form(form: NewSessionForm | None = None) -> NewSessionForm:
    form = form or NewSessionForm()
    form.model.choices = _model_choices()
    form.spec.choices = _spec_choices()
    return form


def _settings_form(session: ChatSession, formdata=None) -> SettingsForm:
    form = SettingsForm(formdata=formdata, obj=None if formdata else session)
    if formdata is None:
        form.model.data = session.model_id
    form.model.choices = _model_choices()
    return form


def _tools_form(session: ChatSession, formdata=None) -> ToolsForm:
    form = ToolsForm(formdata=formdata)
    form.spec.choices = _spec_choices("Pick a spec")
    if formdata is None and session.spec_id:
        form.spec.data = session.spec_id
    return form


def _example_prompts(session: ChatSession) -> list[str]:
    if session.mode != ChatMode.API or session.spec is None:
        return []
    from app.openapi.examples import example_prompts
    from app.openapi.normalise import NormalisedSpec

    return example_prompts(NormalisedSpec.from_dict(session.spec.normalised))


def _session_context(session: ChatSession, **extra):
    messages = services.session_messages(session)
    context = {
        "session": session,
        "sessions": services.list_sessions(),
        "messages": messages,
        "answerable": services.answerable_calls(messages),
        "message_form": MessageForm(),
        "settings_form": _settings_form(session),
        "tools_form": _tools_form(session),
        "rename_form": RenameForm(title=session.title),
        "tags_form": TagsForm(tags=", ".join(session.tags)),
        "action_form": ActionForm(),
        "tool_result_form": ToolResultForm(),
        "new_form": _new_session_form(),
        "examples": _example_prompts(session),
        "all_tags": services.user_tags(),
    }
    context.update(extra)
    return context


@bp.route("/")
@login_required
def index():
    """The most recent session, or an empty page with the new-chat form."""
    tag = request.args.get("tag") or None
    search = (request.args.get("q") or "").strip()[:100] or None
    sessions = services.list_sessions(tag=tag, search=search)
    if htmx and request.args.get("fragment") == "sidebar":
        return render_template("chat/_session_list.html", sessions=sessions, current=None)
    latest = next((s for s in sessions if not s.blind_label), None)  # not into an arena battle
    if latest is not None and not tag and not search:
        return redirect(url_for("chat.session", session_id=latest.id))
    return render_template(
        "chat/index.html",
        sessions=sessions,
        new_form=_new_session_form(),
        all_tags=services.user_tags(),
        tag=tag,
        search=search or "",
    )


@bp.route("/new", methods=["POST"])
@login_required
def new_session():
    form = _new_session_form(NewSessionForm())
    model = services.usable_model(form.model.data) if form.validate_on_submit() else None
    spec = services.owned_spec(form.spec.data) if model else None
    if model and form.mode.data == ChatMode.API and spec is None:
        form.spec.errors = ["Pick one of your specs."]
        model = None
    if model is None:
        if not form.model.errors and not form.spec.errors:
            form.model.errors = ["Pick an enabled model."]
        return render_template(
            "chat/index.html",
            sessions=services.list_sessions(),
            new_form=form,
            all_tags=services.user_tags(),
            tag=None,
            search="",
        ), UNPROCESSABLE
    session = services.create_session(model, form.mode.data, spec)
    return redirect(url_for("chat.session", session_id=session.id))


@bp.route("/<int:session_id>")
@login_required
def session(session_id: int):
    chat = get_owned_or_404(ChatSession, session_id)
    if to_battle := _blind_battle_redirect(chat):
        return to_battle
    return render_template("chat/session.html", **_session_context(chat))


def _blind_battle_redirect(chat: ChatSession):
    """An arena session before its vote: its page and its download would name the model, so they lead
    to the battle instead."""
    if not chat.blind_label:
        return None
    fight = battle_of_session(chat)
    return redirect(url_for("chat.battle", group=fight.group)) if fight is not None else None


@bp.route("/<int:session_id>/warm", methods=["POST"])
@login_required
def warm(session_id: int):
    """The page asks for this when it opens (and when tools change): a local model reads the prompt so
    far, tool list and all, while the user types, instead of after they send. Nothing to show."""
    chat = get_owned_or_404(ChatSession, session_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    warm_session(chat)
    return "", 204


@bp.route("/<int:session_id>/composer")
@login_required
def composer(session_id: int):
    """The input box, pre-filled (the NL → API example buttons)."""
    chat = get_owned_or_404(ChatSession, session_id)
    form = MessageForm(formdata=None, content=(request.args.get("prompt") or "")[:2000])
    return render_template("chat/_composer.html", session=chat, message_form=form)


@bp.route("/<int:session_id>/messages", methods=["POST"])
@login_required
def send(session_id: int):
    chat = get_owned_or_404(ChatSession, session_id)
    form = MessageForm()
    if not form.validate_on_submit() or not form.content.data.strip():
        if not form.content.errors:
            form.content.errors = ["Type a message."]
        if htmx:  # out of band: the form targets the message list, and the box must replace itself
            return render_template(
                "chat/_composer.html", session=chat, message_form=form, oob=True
            ), UNPROCESSABLE
        return _page_with_form(chat, form, UNPROCESSABLE)
    # Asked first only to say why a refused send was refused (add_user_turn checks it again, and claims).
    busy = services.reply_in_progress(chat)
    turn = None if busy else services.add_user_turn(chat, form.content.data.strip())
    if turn is None:
        return _send_refused(chat, form, REPLY_IN_PROGRESS if busy else CHANGED_MEANWHILE)
    return _turn_response(chat, turn)


def _send_refused(chat: ChatSession, form: MessageForm, reason: str):
    """A message the conversation cannot take now: the reason under the messages, the typed text left in
    the box (without JS: the page again, the text and the reason in its composer)."""
    if htmx:
        return render_template("chat/_error.html", message=reason), CONFLICT
    form.content.errors = [reason]
    return _page_with_form(chat, form, CONFLICT)


def _page_with_form(chat: ChatSession, form: MessageForm, status: int):
    """The session's page again with the message box as sent (no JS); an arena side before its vote
    leads to its battle instead, as its page does (the page would name the model)."""
    if to_battle := _blind_battle_redirect(chat):
        return to_battle
    return render_template("chat/session.html", **_session_context(chat, message_form=form)), status


def _turn_response(chat: ChatSession, turn: services.Turn, **extra):
    """After a send: the page again without JS (the reply written first when scripts are off), else the
    two new bubbles and a fresh composer."""
    if not htmx:
        if sent_without_script():
            write_pending_replies([chat])
        return redirect(url_for("chat.session", session_id=chat.id))
    return render_template(
        "chat/_turn.html",
        session=chat,
        turn=turn,
        message_form=MessageForm(formdata=None),
        action_form=ActionForm(),
        **extra,
    )


@bp.route("/<int:session_id>/messages/<int:message_id>/tool-result", methods=["POST"])
@login_required
def tool_result(session_id: int, message_id: int):
    chat = get_owned_or_404(ChatSession, session_id)
    message = get_owned_child_or_404(ChatMessage, message_id, ChatSession, ChatMessage.session_id)
    form = ToolResultForm()
    messages = services.session_messages(chat)
    valid = form.validate_on_submit()
    if (
        message.session_id != chat.id
        or not valid
        or form.call_id.data not in services.answerable_calls(messages)
    ):
        reason = (
            "; ".join(sum(form.errors.values(), []))
            or "That call has a result already or is not the last one."
        )
        return render_template("chat/_error.html", message=reason), UNPROCESSABLE
    turn = services.add_tool_result(chat, message, form.call_id.data, form.content.data)
    if turn is None:
        reason = "The conversation changed meanwhile (another tab?): reload the page."
        return render_template("chat/_error.html", message=reason), UNPROCESSABLE
    return _turn_response(chat, turn, answered_call=form.call_id.data)


@bp.route("/messages/<int:message_id>/stream")
@login_required
def stream(message_id: int):
    """Server-sent events: `token` events while the model writes, then one `done` with the final card."""
    message = get_owned_child_or_404(ChatMessage, message_id, ChatSession, ChatMessage.session_id)
    if request.method == "HEAD":  # no body will be read: claiming would leave the reply unwritten
        return Response(mimetype="text/event-stream")
    started_here = message.status == MessageStatus.PENDING and claim(message.id)

    def events():
        # The view's database session has ended by now: load the row again in this one.
        if started_here:
            for piece in run_reply(db.session.get(ChatMessage, message_id)):
                yield sse_event("token", render_template("chat/_token.html", piece=piece))
        else:  # written elsewhere (a second tab, or the request a reload left writing): its text so far
            for piece in await_other_writer(message_id):
                if piece is None:
                    yield ": the reply is being written elsewhere\n\n"
                else:
                    yield sse_event("token", render_template("chat/_token.html", piece=piece))
        final = db.session.get(ChatMessage, message_id)
        if final is None:  # deleted meanwhile (its session was)
            return
        yield sse_event("done", _final_card(final))

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(stream_with_context(events()), mimetype="text/event-stream", headers=headers)


def _final_card(message: ChatMessage) -> str:
    chat = message.session
    messages = services.session_messages(chat)
    return render_template(
        "chat/_message.html",
        m=message,
        session=chat,
        answerable=services.answerable_calls(messages),
        tool_result_form=ToolResultForm(),
        action_form=ActionForm(),
    )


@bp.route("/messages/<int:message_id>/write", methods=["POST"])
@login_required
def write_reply(message_id: int):
    """A pending reply on a page without JavaScript (its stream never opens): write it in this request,
    then show the page it was on again."""
    message = get_owned_child_or_404(ChatMessage, message_id, ChatSession, ChatMessage.session_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    chat = message.session
    write_pending_replies([chat])
    if to_battle := _blind_battle_redirect(chat):
        return to_battle
    back = chat_page(request.form.get("back"))
    return redirect(back or url_for("chat.session", session_id=chat.id) + f"#msg-{message_id}")


@bp.route("/messages/<int:message_id>/stop", methods=["POST"])
@login_required
def stop(message_id: int):
    message = get_owned_child_or_404(ChatMessage, message_id, ChatSession, ChatMessage.session_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    services.request_stop(message)
    return Response(status=204)


@bp.route("/<int:session_id>/messages/<int:message_id>/edit", methods=["POST"])
@login_required
def edit_prompt(session_id: int, message_id: int):
    """Change the last user message and send it again: the page reloads with the new reply streaming."""
    chat = get_owned_or_404(ChatSession, session_id)
    message = get_owned_child_or_404(ChatMessage, message_id, ChatSession, ChatMessage.session_id)
    form = MessageForm()
    if not form.validate_on_submit() or not (form.content.data or "").strip():
        if "csrf_token" in form.errors:
            abort(400)
        reason = "; ".join(form.content.errors) or "Type a message."
        return render_template("chat/_error.html", message=reason), UNPROCESSABLE
    turn = (
        services.edit_last_prompt(chat, message, form.content.data.strip())
        if message.session_id == chat.id
        else None
    )
    if turn is None:
        reason = "Only the last message can be edited, once its reply has finished."
        return render_template("chat/_error.html", message=reason), UNPROCESSABLE
    if sent_without_script():
        write_pending_replies([chat])
    return redirect(url_for("chat.session", session_id=chat.id) + f"#msg-{turn.reply.id}")


@bp.route("/<int:session_id>/messages/<int:message_id>/regenerate", methods=["POST"])
@login_required
def regenerate(session_id: int, message_id: int):
    """Replace the last reply with a new one from the session's current model and settings."""
    chat = get_owned_or_404(ChatSession, session_id)
    message = get_owned_child_or_404(ChatMessage, message_id, ChatSession, ChatMessage.session_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    reply = services.regenerate(chat, message) if message.session_id == chat.id else None
    if reply is None:
        reason = "Only the last reply can be regenerated, once it has finished."
        return render_template("chat/_error.html", message=reason), UNPROCESSABLE
    if not htmx:
        if sent_without_script():
            write_pending_replies([chat])
        return redirect(url_for("chat.session", session_id=chat.id))
    return render_template("chat/_message.html", m=reply, session=chat, action_form=ActionForm())


@bp.route("/<int:session_id>/messages/<int:message_id>/rating", methods=["POST"])
@login_required
def rate(session_id: int, message_id: int):
    """Mark a finished reply good or bad (or neither again); Analytics counts the ratings per model."""
    chat = get_owned_or_404(ChatSession, session_id)
    message = get_owned_child_or_404(ChatMessage, message_id, ChatSession, ChatMessage.session_id)
    form = RatingForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return render_template("chat/_error.html", message="Rate a reply good, bad or none."), UNPROCESSABLE
    if message.session_id != chat.id or message.role != "assistant" or not message.is_final:
        return render_template(
            "chat/_error.html", message="Only a finished reply can be rated."
        ), UNPROCESSABLE
    message.rating = RATINGS[form.rating.data]
    db.session.commit()
    if not htmx:
        return redirect(url_for("chat.session", session_id=chat.id) + f"#msg-{message.id}")
    return render_template("chat/_rating.html", m=message, action_form=ActionForm())


@bp.route("/<int:session_id>/export.<any(json, md):extension>")
@login_required
def export(session_id: int, extension: str):
    """The conversation as shown, as a JSON or Markdown download."""
    from werkzeug.utils import secure_filename

    from app.chat.export import session_json, session_markdown

    chat = get_owned_or_404(ChatSession, session_id)
    if to_battle := _blind_battle_redirect(chat):
        return to_battle
    messages = services.session_messages(chat)
    body = session_json(chat, messages) if extension == "json" else session_markdown(chat, messages)
    mimetype = "application/json" if extension == "json" else "text/markdown"
    filename = f"{secure_filename(chat.title)[:80] or 'chat'}.{extension}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(body, mimetype=mimetype, headers=headers)


@bp.route("/<int:session_id>/settings", methods=["POST"])
@login_required
def settings(session_id: int):
    chat = get_owned_or_404(ChatSession, session_id)
    if chat.blind_label:  # an arena side before its vote: its model is what the vote is about
        abort(404)
    form = _settings_form(chat, request.form)
    model = services.usable_model(form.model.data) if form.validate_on_submit() else None
    if model is None and not form.errors:
        form.model.errors = ["Pick an enabled model."]
    status = 200
    if model is not None:
        chat.model_id = model.id
        chat.system_prompt = form.system_prompt.data or ""
        chat.temperature = form.temperature.data
        chat.top_p = form.top_p.data
        chat.max_tokens = form.max_tokens.data
        chat.stop_sequences = form.stop_sequences.data or []
        chat.presence_penalty = form.presence_penalty.data or 0.0
        chat.frequency_penalty = form.frequency_penalty.data or 0.0
        chat.tool_choice = form.tool_choice.data
        chat.constrained = form.constrained.data
        db.session.commit()
        saved = True
    else:
        db.session.rollback()
        saved, status = False, UNPROCESSABLE
    if not htmx:
        return (
            redirect(url_for("chat.session", session_id=chat.id))
            if saved
            else (render_template("chat/session.html", **_session_context(chat, settings_form=form)), status)
        )
    return render_template("chat/_settings.html", session=chat, settings_form=form, saved=saved), status


@bp.route("/<int:session_id>/tools", methods=["POST"])
@login_required
def tools(session_id: int):
    chat = get_owned_or_404(ChatSession, session_id)
    form = _tools_form(chat, request.form)
    errors: list[str] = []
    if not form.validate_on_submit():
        errors = sum(form.errors.values(), [])
    elif form.source.data == "spec":
        spec = services.owned_spec(form.spec.data)
        if spec is None:
            errors = ["Pick one of your specs."]
        elif spec.operation_count == 0:
            errors = [f"{spec.label} has no operations to offer as tools."]
        else:
            services.attach_spec_tools(chat, spec)
    else:
        parsed, errors = services.parse_pasted_tools(form.tools_json.data or "")
        if not errors:
            services.attach_pasted_tools(chat, parsed)
    status = UNPROCESSABLE if errors else 200
    if not htmx:
        return (
            redirect(url_for("chat.session", session_id=chat.id))
            if not errors
            else (
                render_template(
                    "chat/session.html", **_session_context(chat, tools_form=form, tool_errors=errors)
                ),
                status,
            )
        )
    return render_template("chat/_tools.html", session=chat, tools_form=form, tool_errors=errors), status


@bp.route("/<int:session_id>/tools/remove", methods=["POST"])
@login_required
def remove_tools(session_id: int):
    chat = get_owned_or_404(ChatSession, session_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    services.remove_tools(chat)
    if not htmx:
        return redirect(url_for("chat.session", session_id=chat.id))
    return render_template("chat/_tools.html", session=chat, tools_form=_tools_form(chat), tool_errors=[])


@bp.route("/<int:session_id>/rename", methods=["POST"])
@login_required
def rename(session_id: int):
    chat = get_owned_or_404(ChatSession, session_id)
    form = RenameForm()
    if not form.validate_on_submit() or not form.title.data.strip():
        return render_template(
            "chat/_error.html", message="A title of at most 120 characters is required."
        ), (UNPROCESSABLE)
    chat.title = form.title.data.strip()
    db.session.commit()
    return redirect(url_for("chat.session", session_id=chat.id))


@bp.route("/<int:session_id>/tags", methods=["POST"])
@login_required
def tags(session_id: int):
    chat = get_owned_or_404(ChatSession, session_id)
    if chat.blind_label:  # an arena side before its vote: a tag would put it where its model is named
        abort(404)
    form = TagsForm()
    tags, error = (
        services.parse_tags(form.tags.data) if form.validate_on_submit() else ([], "Tags: too long.")
    )
    if error:
        return render_template("chat/_error.html", message=error), UNPROCESSABLE
    services.set_tags(chat, tags)
    return redirect(url_for("chat.session", session_id=chat.id))


@bp.route("/<int:session_id>/delete", methods=["POST"])
@login_required
def delete(session_id: int):
    chat = get_owned_or_404(ChatSession, session_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    services.delete_session(chat)
    return redirect(url_for("chat.index"))


@bp.app_template_filter("markdown")
def markdown_filter(text: str):
    from app.chat.markdown import render_markdown

    return render_markdown(text)


@bp.app_template_filter("without_tool_calls")
def without_tool_calls(text: str) -> str:
    """Reply text with `<tool_call>` blocks removed: those show as checked cards instead."""
    from app.chat.examples import reply_text

    return reply_text(text)
