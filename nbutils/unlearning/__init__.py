"""Unlearning: every method behind one registry, on one Trainer subclass."""

from .base import METHOD_REGISTRY, MethodConfig, UnlearningMethod, get_method, register
from .cached_runs import checkpoints, ensure_unlearned, run_name, unlearning_log
from .tasks import MethodNotApplicable, UnlearningTask
from .trainer import NonFiniteLossError, UnlearnTrainer

__all__ = ["METHOD_REGISTRY", "MethodConfig", "MethodNotApplicable", "NonFiniteLossError", "UnlearningTask", "UnlearnTrainer", "UnlearningMethod",
           "checkpoints", "ensure_unlearned", "get_method", "register", "run_name", "unlearning_log"]
