"""Database models. Import from here: `from app.models import User, BackgroundJob`."""

from app.models.base import OwnedMixin, utcnow
from app.models.job import ACTIVE_JOB_STATES, FINAL_JOB_STATES, BackgroundJob, JobStatus
from app.models.llm import LLMModel, Provider
from app.models.user import User

__all__ = [
    "ACTIVE_JOB_STATES",
    "FINAL_JOB_STATES",
    "BackgroundJob",
    "JobStatus",
    "LLMModel",
    "OwnedMixin",
    "Provider",
    "User",
    "utcnow",
]
