"""Arena: blind votes between two of the user's models, a leaderboard, and the votes as DPO pairs.

A battle is a comparison of two sessions drawn at random from a pool the user picks, shown as "Model A"
and "Model B" (in random order) until the user votes; the vote reveals the names and is final, so the
names can never sway it. Both sessions stream through the chat's own path, like Compare. The votes rank
the models (`arena_ratings`) and, because a vote says which of two answers to the same prompt was
better, each decisive one is a preference pair: Save as DPO dataset feeds them back into training.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import sqlalchemy as sa
from flask import abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from wtforms import StringField
from wtforms.validators import AnyOf, InputRequired, Length, ValidationError

from app.chat import bp, services
from app.chat.arena_ratings import Outcome, Standing, model_key, standings
from app.chat.compare import FOLLOW_UP_REFUSED, follow_up_text, open_sessions
from app.chat.examples import answer_of, answer_problems, offered_tools, pair_row, prompt_messages
from app.chat.forms import ActionForm, CompareForm, MessageForm, ToolResultForm
from app.chat.no_script import sent_without_script, write_pending_replies
from app.chat.rated import save_chat_dataset
from app.extensions import db
from app.form_base import Form
from app.models import ArenaBattle, ChatMessage, ChatSession, DatasetKind, MessageStatus, Verdict, utcnow
from app.ownership import owned

TAG_PREFIX = "arena:"
_GROUP = re.compile(r"^[0-9a-f]{8}$")
LABELS = ("Model A", "Model B")
VERDICTS = {
    Verdict.A.value: "A is better",
    Verdict.B.value: "B is better",
    Verdict.TIE.value: "Tie",
    Verdict.BOTH_BAD.value: "Both are bad",
}
RECENT_BATTLES = 50
MAX_PAIRS = 5000
UNPROCESSABLE = 422
CONFLICT = 409


class ArenaForm(CompareForm):
    """Compare's settings; `models` is the pool two are drawn from."""

    def validate_models(self, field) -> None:
        if len(set(field.data or [])) < 2:
            raise ValidationError("Pick at least two models: each battle draws two of them.")


class VoteForm(Form):
    verdict = StringField(validators=[InputRequired("Pick a verdict."), AnyOf(list(VERDICTS))])


class SavePairsForm(Form):
    name = StringField("Dataset name", validators=[InputRequired("Name the dataset."), Length(max=100)])


@bp.route("/arena", methods=["GET", "POST"])
@login_required
def arena():
    form = _arena_form()
    if request.method == "GET":  # ?models=3&models=7 (a model's or a run's page) narrows the pool
        offered = [value for value, _ in form.models.choices]
        asked = [m for m in request.args.getlist("models", type=int) if m in offered]
        form.models.data = asked if len(asked) >= 2 else offered
        return render_template("chat/arena_new.html", form=form)
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return render_template("chat/arena_new.html", form=form), UNPROCESSABLE
    spec = services.owned_spec(form.spec.data) if form.spec.data else None
    battle = start_battle(form.models.data, spec, form, form.content.data.strip())
    if sent_without_script():
        write_pending_replies(_sessions(battle))
    return redirect(url_for("chat.battle", group=battle.group))


def start_battle(pool: list[int], spec, settings: ArenaForm, text: str) -> ArenaBattle:
    """Two models drawn from `pool` (ids the form offered), in random order, blind until the vote."""
    drawn = secrets.SystemRandom().sample(sorted(set(pool)), 2)
    models = [services.usable_model(model_id) for model_id in drawn]
    if None in models:
        abort(404)
    group = secrets.token_hex(4)
    first, second = open_sessions(models, spec, settings, text, TAG_PREFIX + group, list(LABELS))
    battle = ArenaBattle(
        owner_id=current_user.id,
        group=group,
        prompt=text[:200],
        model_a_id=models[0].id,
        model_a_name=models[0].name,
        model_b_id=models[1].id,
        model_b_name=models[1].name,
        session_a_id=first.id,
        session_b_id=second.id,
    )
    db.session.add(battle)
    db.session.commit()
    return battle


@bp.route("/arena/<group>")
@login_required
def battle(group: str):
    return _battle_page(owned_battle(group))


@bp.route("/arena/<group>/messages", methods=["POST"])
@login_required
def battle_send(group: str):
    """A follow-up to both models: the vote can weigh a whole conversation."""
    fight = owned_battle(group)
    form = MessageForm()
    text = follow_up_text(form)
    if text is None:
        return _battle_page(fight, message_form=form), UNPROCESSABLE
    sessions = _sessions(fight)
    if None in sessions:
        return _battle_page(fight, problem="A session of this battle was deleted."), UNPROCESSABLE
    if services.add_user_turns(sessions, text) is None:
        return _battle_page(fight, message_form=form, problem=FOLLOW_UP_REFUSED), CONFLICT
    if sent_without_script():
        write_pending_replies(sessions)
    return redirect(url_for("chat.battle", group=group))


@bp.route("/arena/<group>/vote", methods=["POST"])
@login_required
def vote(group: str):
    fight = owned_battle(group)
    form = VoteForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return _battle_page(fight, problem="Pick one of the four verdicts."), UNPROCESSABLE
    if fight.voted:
        return _battle_page(fight, problem="This battle has its vote already: votes are final."), CONFLICT
    problem = _unvotable(fight)
    if problem:
        return _battle_page(fight, problem=problem), UNPROCESSABLE
    # One vote, even from two tabs at once: only the update that finds no verdict yet counts.
    cast = db.session.execute(
        sa.update(ArenaBattle)
        .where(ArenaBattle.id == fight.id, ArenaBattle.verdict.is_(None))
        .values(verdict=form.verdict.data, voted_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if cast.rowcount != 1:
        db.session.rollback()
        return _battle_page(owned_battle(group), problem="This battle has its vote already."), CONFLICT
    for chat in _sessions(fight):
        chat.blind_label = None
    db.session.commit()
    return redirect(url_for("chat.battle", group=group))


@bp.route("/arena/leaderboard")
@login_required
def arena_leaderboard():
    return _leaderboard_page(SavePairsForm(formdata=None, name="Arena votes"))


@bp.route("/arena/pairs", methods=["POST"])
@login_required
def save_arena_pairs():
    """Each decisive vote as a DPO row: the winner's first answer chosen over the loser's."""
    form = SavePairsForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return _leaderboard_page(form, sum(form.errors.values(), [])), UNPROCESSABLE
    rows, skipped = vote_pairs(_decisive_battles())
    if not rows:
        reasons = ["No vote can become a pair yet: vote A or B better in a battle first."]
        if skipped:
            reasons.append(
                f"{skipped} skipped: the winner's answer breaks the tools' schemas or equals the loser's."
            )
        return _leaderboard_page(form, reasons), UNPROCESSABLE
    options = {"from": "arena votes", "skipped": skipped}
    dataset, problems = save_chat_dataset(form.name.data, DatasetKind.DPO, rows, options)
    if dataset is None:
        return _leaderboard_page(form, problems), UNPROCESSABLE
    return redirect(url_for("datasets.detail", dataset_id=dataset.id))


def owned_battle(group: str) -> ArenaBattle:
    """Another user's battle is a 404 like a missing one."""
    if not _GROUP.fullmatch(group):
        abort(404)
    fight = db.session.execute(owned(ArenaBattle).where(ArenaBattle.group == group)).scalar_one_or_none()
    if fight is None:
        abort(404)
    return fight


def battle_of_session(session: ChatSession) -> ArenaBattle | None:
    either = sa.or_(ArenaBattle.session_a_id == session.id, ArenaBattle.session_b_id == session.id)
    return db.session.execute(owned(ArenaBattle).where(either)).scalar_one_or_none()


def model_standing(model_id: int) -> tuple[int, int, Standing] | None:
    """Where a model stands in the user's arena: (rank, models ranked, its row); None before a vote."""
    battles = list(db.session.execute(owned(ArenaBattle).where(ArenaBattle.verdict.is_not(None))).scalars())
    table = standings(*battle_outcomes(battles))
    for rank, row in enumerate(table, start=1):
        if row.model_id == model_id:
            return rank, len(table), row
    return None


def battle_outcomes(battles: list[ArenaBattle]) -> tuple[list[Outcome], dict[str, tuple[str, int | None]]]:
    """The voted battles as rating outcomes, and each model key's name and id (the latest name wins)."""
    outcomes, names = [], {}
    scores = {Verdict.A: 1.0, Verdict.B: 0.0, Verdict.TIE: 0.5, Verdict.BOTH_BAD: 0.5}
    for fight in sorted(battles, key=lambda b: b.id):
        if fight.verdict not in scores:
            continue
        a = model_key(fight.model_a_id, fight.model_a_name)
        b = model_key(fight.model_b_id, fight.model_b_name)
        names[a] = (fight.model_a_name, fight.model_a_id)
        names[b] = (fight.model_b_name, fight.model_b_id)
        outcomes.append(Outcome(a, b, scores[Verdict(fight.verdict)], fight.verdict == Verdict.BOTH_BAD))
    return outcomes, names


def vote_pairs(battles: list[ArenaBattle]) -> tuple[list[dict[str, Any]], int]:
    """DPO rows, oldest battle first, and how many decisive votes could not become one.

    The pair is each side's first answer to the battle's prompt: later turns answer different
    conversations (each model saw its own earlier replies), so only the first shares one prompt."""
    rows, skipped = [], 0
    for fight in sorted(battles, key=lambda b: b.id):
        sides = [(fight.session_a, fight.model_a_name), (fight.session_b, fight.model_b_name)]
        (winner, _), (loser, loser_name) = sides if fight.verdict == Verdict.A else sides[::-1]
        chosen_turn = _first_answer(winner)
        rejected_turn = _first_answer(loser)
        if chosen_turn is None or rejected_turn is None:
            skipped += 1
            continue
        prompt = prompt_messages(winner, chosen_turn)
        tools = offered_tools(winner)
        chosen, rejected = answer_of(chosen_turn), answer_of(rejected_turn)
        if (
            prompt != prompt_messages(loser, rejected_turn)
            or chosen == rejected
            or answer_problems(tools, chosen)
        ):
            skipped += 1
            continue
        row = pair_row(winner, chosen_turn, chosen, rejected, "train", tools)
        row["meta"].update({"rejection": "arena", "rejected_model": loser_name, "battle": fight.group})
        rows.append(row)
    return rows, skipped


def _first_answer(session: ChatSession | None) -> ChatMessage | None:
    """The session's first kept reply with words or calls; None when it has none (or is gone)."""
    for turn in session.messages if session is not None else []:
        if turn.role == "assistant" and not turn.replaced:
            usable = turn.status in (MessageStatus.COMPLETE, MessageStatus.STOPPED)
            answer = answer_of(turn)
            return turn if usable and (answer.content or answer.calls) else None
    return None


def _unvotable(fight: ArenaBattle) -> str | None:
    sessions = _sessions(fight)
    if None in sessions:
        return "A session of this battle was deleted, so it can no longer be judged."
    for chat in sessions:
        if any(m.role == "assistant" and not m.is_final for m in chat.messages):
            return "Wait until both answers have finished, then vote."
    return None


def _sessions(fight: ArenaBattle) -> list[ChatSession | None]:
    return [fight.session_a, fight.session_b]


def _decisive_battles() -> list[ArenaBattle]:
    decisive = ArenaBattle.verdict.in_([Verdict.A.value, Verdict.B.value])
    query = owned(ArenaBattle).where(decisive).order_by(ArenaBattle.id.desc()).limit(MAX_PAIRS)
    return list(db.session.execute(query).scalars())


def _battle_page(fight: ArenaBattle, message_form: MessageForm | None = None, problem: str | None = None):
    columns = []
    for label, chat, name in zip(
        LABELS, _sessions(fight), (fight.model_a_name, fight.model_b_name), strict=True
    ):
        heading = name if fight.voted else label
        columns.append((heading, chat, services.session_messages(chat) if chat is not None else []))
    return render_template(
        "chat/arena.html",
        battle=fight,
        columns=columns,
        verdicts=VERDICTS,
        problem=problem,
        message_form=message_form or MessageForm(formdata=None),
        vote_form=VoteForm(formdata=None),
        action_form=ActionForm(),
        tool_result_form=ToolResultForm(),
    )


def _leaderboard_page(form: SavePairsForm, problems: list[str] | None = None):
    battles = list(db.session.execute(owned(ArenaBattle).order_by(ArenaBattle.id.desc())).scalars())
    outcomes, names = battle_outcomes(battles)
    table: list[Standing] = standings(outcomes, names)
    decisive = sum(b.verdict in (Verdict.A, Verdict.B) for b in battles)
    return render_template(
        "chat/arena_leaderboard.html",
        standings=table,
        battles=battles[:RECENT_BATTLES],
        voted=len(outcomes),
        decisive=decisive,
        verdicts=VERDICTS,
        form=form,
        problems=problems or [],
    )


def _arena_form() -> ArenaForm:
    form = ArenaForm()
    form.models.label.text = "Models to draw from"
    form.models.choices = [(model.id, model.name) for model in services.usable_models()]
    form.spec.choices = [(None, "No tools")] + [(spec.id, spec.label) for spec in services.user_specs()]
    return form
