"""Data: the fictitious world, TOFU and MUSE splits in the hub layout, probe sets."""

from .muse import ensure_muse_source, load_muse
from .tofu import DataValidationError, ensure_tofu_source, load_idk_pool, load_tofu

__all__ = ["DataValidationError", "ensure_muse_source", "ensure_tofu_source", "load_idk_pool",
           "load_muse", "load_tofu"]
