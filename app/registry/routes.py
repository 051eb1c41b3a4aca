"""Models pages: list, add (provider templates, GGUF import), edit, enable, test, try, download, delete."""

from __future__ import annotations

import json
from pathlib import Path

from flask import abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user, login_required
from werkzeug.utils import secure_filename

from app.extensions import db, htmx
from app.models import LLMModel, Provider, TrainingRun
from app.ownership import get_manageable_or_404, get_visible_or_404
from app.registry import bp
from app.registry.evaluation_display import EvaluationSummary, evaluation_summary
from app.registry.forms import HubInfoForm, ModelActionForm, ModelForm, TryPromptForm
from app.registry.gguf_store import (
    GGUFImportError,
    prepare_gguf_upload,
    release_upload_reservation,
    remove_managed_file,
    resolve_store_path,
    store_uploaded_gguf,
)
from app.registry.hub import HubLookupError, fetch_model_info
from app.registry.providers import PROVIDER_TEMPLATES, template_for
from app.registry.services import (
    OWNER_FILTERS,
    ModelFilters,
    apply_form,
    can_manage,
    delete_model,
    endpoint_address_error,
    fill_from_gguf,
    is_loaded,
    list_models,
    new_model,
    record_connection_test,
    shown_base_url,
)
from app.serving import SamplingParams, ServingError, generate, user_may_use_private_endpoints
from app.uploads import streams_uploads

UNPROCESSABLE = 422


def _page_context(**extra):
    return {
        "providers": PROVIDER_TEMPLATES,
        "owner_filters": OWNER_FILTERS,
        "can_manage": can_manage,
        "shown_base_url": shown_base_url,
        "is_loaded": is_loaded,
        "action_form": ModelActionForm(),
        **extra,
    }


@bp.app_template_filter("evaluation_summary")
def evaluation_summary_filter(metrics: dict | None) -> EvaluationSummary:
    return evaluation_summary(metrics)


@bp.route("/")
@login_required
def index():
    """Every model the user can use, as cards; the filter form swaps only the list."""
    filters = ModelFilters.from_args(request.args)
    models = list_models(filters)
    template = "registry/_list.html" if htmx.target == "model-list" else "registry/index.html"
    return render_template(template, **_page_context(models=models, filters=filters))


def _render_form(form: ModelForm, model: LLMModel | None = None, status: int = 200, error: str | None = None):
    provider = form.provider.data if model is None else model.provider
    if provider not in PROVIDER_TEMPLATES:
        error = error or "Unknown provider: " + "; ".join(form.provider.errors or ["choose one above"])
        provider = Provider.OPENAI_COMPATIBLE
    return (
        render_template(
            "registry/form.html",
            **_page_context(
                form=form, model=model, provider=provider, template=template_for(provider), error=error
            ),
        ),
        status,
    )


bp.teardown_request(release_upload_reservation)


def _refuse_oversized_upload():
    """Runs before the body is read (see app.uploads): a refusal answers at once, nothing is stored."""
    try:
        prepare_gguf_upload()
    except GGUFImportError as exc:
        form = ModelForm(formdata=None, provider=Provider.LOCAL_GGUF)
        return _render_form(form, status=exc.status, error=str(exc))
    return None


@bp.route("/new", methods=["GET", "POST"])
@streams_uploads(_refuse_oversized_upload)
@login_required
def new():
    """Add a model from a provider template; a local GGUF comes as an upload or (admins) a store path."""
    if request.method == "GET":
        provider = request.args.get("provider", Provider.LOCAL_GGUF)
        if provider not in PROVIDER_TEMPLATES:
            provider = Provider.LOCAL_GGUF
        defaults = dict(template_for(provider).defaults)
        return _render_form(ModelForm(formdata=None, provider=provider, **defaults))
    form = ModelForm()
    if not form.validate_on_submit():
        return _render_form(form, status=UNPROCESSABLE)
    if form.provider.data == Provider.LOCAL_GGUF:
        return _create_local(form)
    blocked = endpoint_address_error(form.base_url.data, user_may_use_private_endpoints(current_user))
    if blocked:
        form.base_url.errors.append(blocked)
        return _render_form(form, status=UNPROCESSABLE)
    model = new_model(form, current_user)
    db.session.add(model)
    db.session.commit()
    flash(f"Added “{model.name}”. Use Test connection to check it answers.", "success")
    return redirect(url_for("models.detail", model_id=model.id))


def _create_local(form: ModelForm):
    stored_upload = None
    try:
        if form.gguf_server_path.data:
            if not current_user.is_admin:
                raise GGUFImportError("Only admins can register a file already on the server.")
            path, info = resolve_store_path(form.gguf_server_path.data)
        elif form.gguf_file.data:
            owner_id = None if (current_user.is_admin and form.shared.data) else current_user.id
            path, info = store_uploaded_gguf(form.gguf_file.data, owner_id)
            stored_upload = path
        else:
            raise GGUFImportError("Choose a .gguf file to upload.")
        model = new_model(form, current_user)
        if not form.name.data:
            model.name = Path(form.gguf_file.data.filename if stored_upload else path).stem[:120]
        fill_from_gguf(model, path, info)
        db.session.add(model)
        db.session.commit()
    except GGUFImportError as exc:
        db.session.rollback()
        form.gguf_file.errors.append(str(exc))
        return _render_form(form, status=UNPROCESSABLE)
    except BaseException:
        db.session.rollback()
        if stored_upload:
            remove_managed_file(str(stored_upload))
        raise
    flash(f"Imported “{model.name}” ({model.quantization or 'unknown quantization'}).", "success")
    return redirect(url_for("models.detail", model_id=model.id))


@bp.route("/hub-info", methods=["POST"])
@login_required
def hub_info():
    """ "Fetch model info": fill the add form's descriptive fields from the Hugging Face Hub."""
    form = ModelForm()
    lookup = HubInfoForm()
    message, ok = None, False
    if not lookup.validate():
        message = "; ".join(lookup.model_id.errors or lookup.api_key.errors or ["Enter a model id."])
    else:
        try:
            facts = fetch_model_info(lookup.model_id.data, lookup.api_key.data or None)
        except HubLookupError as exc:
            message = str(exc)
        else:
            ok = True
            form.name.data = form.name.data or facts.name
            form.description.data = form.description.data or facts.description
            form.supports_tools.data = facts.supports_tools or form.supports_tools.data
            form.context_length.data = form.context_length.data or facts.context_length
            form.base_model.data = form.base_model.data or facts.base_model
            message = "Filled from the Hugging Face Hub. " + " ".join(facts.notes)
    return render_template(
        "registry/_facts.html",
        form=form,
        hub_message=message,
        hub_ok=ok,
        template=template_for(form.provider.data),
    )


@bp.route("/<int:model_id>")
@login_required
def detail(model_id: int):
    """One model: status, metadata, provenance, test, try it, download."""
    model = get_visible_or_404(LLMModel, model_id)
    return render_template("registry/detail.html", **_detail_context(model))


def _detail_context(model: LLMModel, **extra):
    from app.chat.arena import model_standing
    from app.chat.rated import rating_counts
    from app.evaluations.services import results_for_model
    from app.training.source_spec import model_spec

    shown = {
        "model": model,
        "try_form": TryPromptForm(),
        "evaluations": results_for_model(model.id),
        "ratings": rating_counts(model.id),
        "arena": model_standing(model.id),
        "trained_spec": model_spec(model),
        "training_run": _viewers_training_run(model),
    }
    return _page_context(**(shown | extra))


def _viewers_training_run(model: LLMModel) -> TrainingRun | None:
    """The run that trained the model, to link to: only the viewer's own (a run page is its owner's alone,
    and a model made global may come from an admin's run)."""
    if model.training_run_id is None:
        return None
    run = db.session.get(TrainingRun, model.training_run_id)
    return run if run is not None and run.owner_id == current_user.id else None


@bp.route("/<int:model_id>/edit", methods=["GET", "POST"])
@login_required
def edit(model_id: int):
    """Change a model's settings; an empty API key field keeps the stored key."""
    model = get_manageable_or_404(LLMModel, model_id)
    if request.method == "GET":
        form = ModelForm(formdata=None, obj=model)
        form.api_key.data = None  # `obj` would bind the decrypting method; the key is never put in a form
        form.training_date.data = model.training_date.date() if model.training_date else None
        form.lora_config.data = _json_text(model.lora_config)
        form.evaluation_metrics.data = _json_text(model.evaluation_metrics)
        return _render_form(form, model)
    form = ModelForm()
    form.provider.data = model.provider  # the provider of an existing model does not change
    form.editing = True
    if not form.validate_on_submit():
        return _render_form(form, model, status=UNPROCESSABLE)
    if model.provider != Provider.LOCAL_GGUF:
        blocked = endpoint_address_error(form.base_url.data, user_may_use_private_endpoints(current_user))
        if blocked:
            form.base_url.errors.append(blocked)
            return _render_form(form, model, status=UNPROCESSABLE)
    dropped_key = apply_form(model, form, current_user)
    db.session.commit()
    flash(f"Saved “{model.name}”.", "success")
    if dropped_key:
        flash("The address moved to another server, so the stored API key was removed: enter the key "
              "for the new server.", "info")  # fmt: skip
    return redirect(url_for("models.detail", model_id=model.id))


def _json_text(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True) if value else ""


def _status_response(model: LLMModel):
    if htmx:
        return render_template("registry/_status.html", **_page_context(model=model))
    return redirect(
        request.referrer if _same_site(request.referrer) else url_for("models.detail", model_id=model.id)
    )


def _same_site(url: str | None) -> bool:
    return bool(url) and url.startswith(request.host_url)


@bp.route("/<int:model_id>/toggle", methods=["POST"])
@login_required
def toggle(model_id: int):
    """Enable or disable a model (disabled models are hidden from chat)."""
    model = get_manageable_or_404(LLMModel, model_id)
    if ModelActionForm().validate_on_submit():
        model.enabled = not model.enabled
        db.session.commit()
    return _status_response(model)


@bp.route("/<int:model_id>/test", methods=["POST"])
@login_required
def test_connection(model_id: int):
    """Send a real, short request to the model and show the outcome in place."""
    model = get_visible_or_404(LLMModel, model_id)
    if ModelActionForm().validate_on_submit():
        record_connection_test(model)
    return _status_response(model)


@bp.route("/<int:model_id>/delete", methods=["POST"])
@login_required
def delete(model_id: int):
    """Delete a model and the GGUF file Toolsmith stored for it."""
    model = get_manageable_or_404(LLMModel, model_id)
    if ModelActionForm().validate_on_submit():
        name = model.name
        delete_model(model)
        flash(f"Deleted “{name}”.", "success")
    return redirect(url_for("models.index"))


@bp.route("/<int:model_id>/try", methods=["POST"])
@login_required
def try_prompt(model_id: int):
    """Send one prompt and show the reply with its tokens and timings."""
    model = get_visible_or_404(LLMModel, model_id)
    form = TryPromptForm()
    result, error, status = None, None, 200
    if not model.enabled:
        error, status = "This model is disabled. Enable it first.", 409
    elif not form.validate_on_submit():
        error, status = "; ".join(form.prompt.errors) or "Enter a prompt.", UNPROCESSABLE
    else:
        params = SamplingParams(
            temperature=float(form.temperature.data), max_tokens=min(model.max_tokens, 256)
        )
        try:
            result = generate(model, [{"role": "user", "content": form.prompt.data}], params)
        except ServingError as exc:
            error, status = str(exc), 502
    if htmx:
        context = _page_context(model=model, try_form=form, result=result, try_error=error)
        return render_template("registry/_try_result.html", **context), status
    context = _detail_context(model, try_form=form, result=result, try_error=error)
    return render_template("registry/detail.html", **context), status


@bp.route("/<int:model_id>/download")
@login_required
def download(model_id: int):
    """Stream a local model's GGUF file, so it runs in any llama.cpp-based tool."""
    model = get_visible_or_404(LLMModel, model_id)
    if model.provider != Provider.LOCAL_GGUF or not model.gguf_path or not Path(model.gguf_path).is_file():
        abort(404)
    name = secure_filename(model.name) or "model"
    current_app.logger.info("User %s downloads model %s", current_user.id, model.id)
    return send_file(model.gguf_path, as_attachment=True, download_name=f"{name}.gguf", conditional=True)
