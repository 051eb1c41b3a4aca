"""The OpenAPI spec a run's model was trained to call, so its pages can open the playground on it.

The config's `data.source_spec` names it (newest version of that name); a run without one falls back to
the spec its dataset was generated from. Only for the run's owner: a model an admin made global must
not open someone else's spec, nor a same-named spec of the viewer's that it never saw.
"""

from __future__ import annotations

from flask_login import current_user

from app.extensions import db
from app.models import ApiSpec, Dataset, LLMModel, TrainingRun
from app.ownership import owned


def run_spec(run: TrainingRun | None) -> ApiSpec | None:
    if run is None or run.owner_id != current_user.id:
        return None
    name = ((run.config or {}).get("data") or {}).get("source_spec")
    if isinstance(name, str) and name.strip():
        newest = owned(ApiSpec).where(ApiSpec.name == name).order_by(ApiSpec.version_number.desc())
        named = db.session.execute(newest.limit(1)).scalar_one_or_none()
        if named is not None:
            return named
    if run.dataset_id is None:
        return None
    generated_from = db.select(Dataset.spec_id).where(Dataset.id == run.dataset_id).scalar_subquery()
    return db.session.execute(owned(ApiSpec).where(ApiSpec.id == generated_from)).scalar_one_or_none()


def model_spec(model: LLMModel) -> ApiSpec | None:
    if model.training_run_id is None:
        return None
    return run_spec(db.session.get(TrainingRun, model.training_run_id))
