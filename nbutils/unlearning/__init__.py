"""Unlearning: every method behind one registry, on one Trainer subclass."""

from .base import METHODS, MethodConfig, UnlearningMethod, get_method, register
from .run import checkpoints, ensure_unlearned, run_name, unlearning_log
from .trainer import NonFiniteLossError, UnlearnTrainer

__all__ = ["METHODS", "MethodConfig", "NonFiniteLossError", "UnlearnTrainer", "UnlearningMethod",
           "checkpoints", "ensure_unlearned", "get_method", "register", "run_name", "unlearning_log"]
