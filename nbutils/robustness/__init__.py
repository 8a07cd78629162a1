"""Does it really forget? Attacks that try to bring unlearned knowledge back (notebook 15).

The layer above training and evaluation: it relearns (finetunes) and reloads models, then
measures them with the evaluation code.

- :mod:`.quantization` is :func:`nbutils.models.loading.load_model` with ``quantization=``;
- :mod:`.probes`: the forget set's knowledge asked plainly, paraphrased, after a compliant
  answer prefill and with in-context hints;
- :mod:`.relearning`: a short finetune on part of the forget set or on related text;
- :mod:`.logit_lens`: the answer's probability read from every layer;
- :mod:`.fluency`: whether a method's answers are still language;
- :mod:`.scores`: R, Q and robustness (open-unlearning's meta-evaluation), knowledge kept;
- :mod:`.attacks`: all of them on one model, cached, and the tables notebook 15 shows.
"""

from .attacks import ensure_attacks, ensure_model_attacks, robustness_frame  # noqa: F401
