"""nbutils: the package behind the unlearning workbook's notebooks.

Layout (one module per concept):
- ``profiles``   named sizes (tiny / smol / paper) every notebook takes as ``PROFILE``
- ``paths``      the one cache root and config-keyed artifact folders
- ``data``       the fictitious world, TOFU and MUSE splits, probe sets, loading + validation
- ``models``     loading (tiny from scratch, SmolLM2 wheel, hub), prompt formats
- ``finetune``   target and retain models through transformers' Trainer
- ``unlearning`` every method, the UnlearnTrainer, cached runs
- ``evaluation`` generation and metrics
- above them, what composes training and evaluation: ``leaderboard``, ``teaching``,
  ``muse_task``, ``whp_experiment``, ``robustness``, ``probing``, ``publishing``, and
  ``headless`` (every notebook executed with papermill)

Each part imports only from the parts listed before it (``tests/test_layers.py``).
"""

from .notebook_setup import setup_notebook

__all__ = ["setup_notebook"]
__version__ = "0.1.0"
