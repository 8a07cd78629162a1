"""Evaluation: generation, ROUGE and (later) every TOFU / MUSE / MIA metric."""
