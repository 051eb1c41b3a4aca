"""Database models. Import from here: `from app.models import User, BackgroundJob`."""

from app.models.api_token import ApiRequest, ApiToken
from app.models.arena import ArenaBattle, Verdict
from app.models.base import OwnedMixin, utcnow
from app.models.chat import (
    FINAL_MESSAGE_STATES,
    ChatMessage,
    ChatMode,
    ChatSession,
    ChatSessionTag,
    MessageStatus,
)
from app.models.dataset import Dataset, DatasetKind, DatasetStatus
from app.models.evaluation import (
    FINAL_EVALUATION_STATES,
    Benchmark,
    Evaluation,
    EvaluationItem,
    EvaluationResult,
    EvaluationStatus,
)
from app.models.job import ACTIVE_JOB_STATES, FINAL_JOB_STATES, BackgroundJob, JobStatus
from app.models.llm import LLMModel, Provider
from app.models.spec import ApiSpec
from app.models.training_config import TrainingConfig
from app.models.training_run import FINAL_RUN_STAGES, RunMetric, RunStage, TrainingRun, TrainingSweep
from app.models.user import User

__all__ = [
    "FINAL_MESSAGE_STATES",
    "ApiRequest",
    "ApiToken",
    "ApiSpec",
    "ArenaBattle",
    "ChatMessage",
    "ChatMode",
    "ChatSession",
    "ChatSessionTag",
    "Dataset",
    "DatasetKind",
    "DatasetStatus",
    "Benchmark",
    "Evaluation",
    "EvaluationItem",
    "EvaluationResult",
    "EvaluationStatus",
    "FINAL_EVALUATION_STATES",
    "MessageStatus",
    "ACTIVE_JOB_STATES",
    "FINAL_JOB_STATES",
    "BackgroundJob",
    "JobStatus",
    "LLMModel",
    "OwnedMixin",
    "Provider",
    "TrainingConfig",
    "TrainingRun",
    "TrainingSweep",
    "RunMetric",
    "RunStage",
    "FINAL_RUN_STAGES",
    "User",
    "Verdict",
    "utcnow",
]
