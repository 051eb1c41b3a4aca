"""Save a chat reply, corrected where needed, as a training example: an SFT row, or a DPO pair whose
rejected answer is the model's reply, in a new dataset or one of the user's own of that kind."""

from __future__ import annotations

from flask import abort, render_template, session, url_for
from flask_login import current_user, login_required

from app.chat import bp
from app.chat.examples import (
    Answer,
    answer_of,
    answer_problems,
    calls_as_text,
    offered_tools,
    pair_problems,
    parse_calls,
    preference_row,
    training_row,
)
from app.chat.forms import SaveExampleForm
from app.datasets.browse import PAGE_SIZE
from app.datasets.services import DatasetError, store_rows, unique_name
from app.extensions import db
from app.models import ChatMessage, ChatSession, Dataset, DatasetKind, DatasetStatus
from app.ownership import get_owned_child_or_404, get_owned_or_404, owned

UNPROCESSABLE = 422
LAST_DATASET_KEY = "example_dataset_id"  # the dataset and kind picked last time are picked again
LAST_KIND_KEY = "example_kind"
KIND_NAMES = {DatasetKind.SFT.value: "SFT rows", DatasetKind.DPO.value: "preference pairs (DPO)"}


@bp.route("/<int:session_id>/messages/<int:message_id>/example", methods=["GET", "POST"])
@login_required
def save_example(session_id: int, message_id: int):
    chat = get_owned_or_404(ChatSession, session_id)
    if chat.blind_label:  # an arena side before its vote: the saved row would name its model
        abort(404)
    message = get_owned_child_or_404(ChatMessage, message_id, ChatSession, ChatMessage.session_id)
    if message.session_id != chat.id or message.role != "assistant" or not message.is_final:
        return render_template(
            "chat/_error.html", message="Only a finished reply can be saved."
        ), UNPROCESSABLE
    targets = _target_datasets()
    form = SaveExampleForm()
    form.dataset.choices = [("new", "A new dataset")] + [
        (str(d.id), f"{d.name} ({d.kind.upper()})") for d in targets
    ]
    if not form.is_submitted():
        answer = answer_of(message)
        form.content.data, form.calls.data = answer.content, calls_as_text(answer.calls)
        form.kind.data = session.get(LAST_KIND_KEY, DatasetKind.SFT.value)
        form.dataset.data = str(session.get(LAST_DATASET_KEY, "new"))
        form.new_name.data = f"{chat.title} examples"[:100]
        return _form(form, chat, message)
    if not form.validate():
        return _form(form, chat, message, sum(form.errors.values(), [])), UNPROCESSABLE
    kind = form.kind.data
    calls, problems = parse_calls(form.calls.data or "")
    answer = Answer((form.content.data or "").strip(), calls)
    tools = offered_tools(chat)  # for NL → API sessions this builds the spec's tools: once per request
    problems = problems or answer_problems(tools, answer)
    if not problems and kind == DatasetKind.DPO.value:
        problems = pair_problems(chat, message, answer)
    target = next((d for d in targets if str(d.id) == form.dataset.data), None)
    if form.dataset.data != "new" and target is None:
        problems.append("Pick one of your datasets, or a new one.")
    elif target is not None and target.kind != kind:
        problems.append(
            f"“{target.name}” holds {KIND_NAMES[target.kind]}: "
            f"pick a dataset of {KIND_NAMES[kind]}, or a new one."
        )
    if problems:
        return _form(form, chat, message, problems), UNPROCESSABLE
    make_row = preference_row if kind == DatasetKind.DPO.value else training_row
    row = make_row(chat, message, answer, form.split.data, tools)
    try:
        if target is None:
            target = store_rows(
                current_user.id,
                unique_name(form.new_name.data or f"{chat.title} examples"),
                kind,
                [row],
                source="chat",
                source_format="toolsmith",
            )
        else:
            from app.datasets.editing import append_rows

            target = append_rows(target, [row])
    except DatasetError as exc:
        return _form(form, chat, message, [p.message for p in exc.problems]), UNPROCESSABLE
    session[LAST_DATASET_KEY] = target.id
    session[LAST_KIND_KEY] = kind
    return render_template(
        "chat/_example_saved.html",
        dataset=target,
        row_number=target.sample_count,
        link=url_for("datasets.detail", dataset_id=target.id, page=-(-target.sample_count // PAGE_SIZE)),
    )


def _target_datasets() -> list[Dataset]:
    query = owned(Dataset).where(
        Dataset.kind.in_(list(KIND_NAMES)), Dataset.status == DatasetStatus.READY.value
    )
    return list(db.session.execute(query.order_by(Dataset.created_at.desc())).scalars())


def _form(form: SaveExampleForm, chat: ChatSession, message: ChatMessage, problems: list[str] | None = None):
    return render_template(
        "chat/_example_form.html",
        form=form,
        chat=chat,
        message=message,
        tool_names=[t["function"]["name"] for t in offered_tools(chat)],
        problems=problems or [],
    )
