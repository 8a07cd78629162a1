"""Every attack on one model, measured once and cached: the numbers notebook 15 and the
leaderboard read.

:func:`ensure_attacks` takes a model (a run folder or checkpoint) and returns a JSON-able
dict of the forget set's knowledge under each attack (see :mod:`.probes` for what is
measured). :func:`robustness_frame` turns the dicts of the target, the retain model and every
method into a table with the R, Q and robustness scores of :mod:`.scores`.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..models.precision import resolve_precision
from ..paths import (artifact_dir, building, checkpoint_identity, is_complete, mark_complete,
                     read_cached_json, write_json)
from ..profiles import Profile
from .fluency import fluency
from .logit_lens import layer_answer_probs
from .probes import PROBES, knowledge, knowledge_under_probes
from .relearning import RELEARN_DATA, ensure_relearned, relearn_split
from .scores import (knowledge_kept, knowledge_returned, quantization_score, relearning_score,
                     robustness_score)

ATTACKS_VERSION = 1
# the knowledge metric R and Q are computed on (TOFU's forget probability; ROUGE-L beside it)
METRIC = "prob"


def forget_rows(profile: Profile) -> list[dict]:
    """The forget split's rows with their paraphrased questions (its ``_perturbed`` config)."""
    from ..evaluation.tofu import tofu_rows
    return tofu_rows(profile, f"{profile.forget_split}_perturbed")


def _quiet_bitsandbytes() -> None:
    # LLM.int8 says on every matmul that it casts fp32 inputs to fp16: true, and nothing a
    # reader can act on
    warnings.filterwarnings("ignore", message="MatMul8bitLt: inputs will be cast")
    logger = logging.getLogger("bitsandbytes.autograd._functions")
    if not any(isinstance(f, _CastNotice) for f in logger.filters):
        logger.addFilter(_CastNotice())


class _CastNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "inputs will be cast" not in record.getMessage()


def measure(profile: Profile, model_path, reference_path, name: str = "model",
            relearn: bool = True, progress: bool = False) -> dict:
    """Every attack on the model at ``model_path``; ``reference_path`` is the model before
    unlearning (the target), under which fluency's perplexity is computed."""
    from ..models.loading import load_model, load_tokenizer
    _quiet_bitsandbytes()
    rows = forget_rows(profile)
    tokenizer = load_tokenizer(str(model_path), profile)
    model = load_model(str(model_path), profile, load_in_4bit=False)
    single_model = hasattr(model, "get_output_embeddings")  # WHP at inference time is two
    result: dict = {"n_items": len(rows), "precision": resolve_precision(profile.precision)}
    # probes, logit lens, fluency, each quantization, each relearning run
    steps = len(PROBES) + 2 + len(profile.robustness.quantization) + (len(RELEARN_DATA) if relearn else 0)
    from tqdm.auto import tqdm
    bar = tqdm(total=steps, desc=f"attacks on {name}", disable=not progress)

    result["probes"] = knowledge_under_probes(model, tokenizer, rows, profile, PROBES)
    bar.update(len(PROBES))
    result["logit_lens"] = (layer_answer_probs(model, tokenizer, rows, profile.prompt_format,
                                               profile.eval_batch_size).mean(0).tolist()
                            if single_model else None)
    bar.update()
    del model  # one model in memory at a time (the next ones are loaded below)

    reference = load_model(str(reference_path), profile, load_in_4bit=False)
    result["fluency"] = fluency(reference, tokenizer, [r["question"] for r in rows],
                                result["probes"]["plain"]["generations"], profile.prompt_format,
                                profile.eval_batch_size)
    bar.update()
    del reference

    result["quantized"] = {}
    for scheme in profile.robustness.quantization:
        q_model = load_model(str(model_path), profile, quantization=scheme)
        result["quantized"][scheme] = knowledge(q_model, tokenizer, rows, profile, "plain")
        del q_model
        bar.update()

    result["relearned"] = {}
    if relearn:
        train, held_out = relearn_split(rows, profile)
        result["relearn_split"] = {"train": train, "held_out": held_out}
        for data in RELEARN_DATA:
            path = relearned_model(profile, model_path, name, data, [rows[i] for i in train])
            relearned = load_model(str(path), profile, load_in_4bit=False)
            # forget QA: measured on the questions it did not show; related text: on all
            measured = held_out if data == "forget" else list(range(len(rows)))
            out = knowledge(relearned, tokenizer, [rows[i] for i in measured], profile, "plain")
            out["items"] = measured
            result["relearned"][data] = out
            del relearned
            # the measurement is what is kept (ATTACKS.json): the relearned weights are a full
            # checkpoint per model and data set (0.5 GB each on smol, two for every model)
            discard_relearned(path)
            bar.update()
    bar.close()
    return result


def relearned_model(profile: Profile, model_path, name: str, data: str, rows: list[dict]) -> Path:
    """The model after relearning. WHP at inference time is two checkpoints combined at every
    step: an attacker holding them finetunes the one that answers (the baseline) and keeps
    the combination."""
    spec_file = Path(model_path) / "whp_inference.json"
    if not spec_file.exists():
        return ensure_relearned(profile, model_path, name, data, rows)
    from ..models.whp_inference import WHPInferenceModel
    spec = WHPInferenceModel.read_spec(model_path)
    base = ensure_relearned(profile, spec["base"], f"{name}-base", data, rows)
    folder = artifact_dir("robustness", f"{name}-relearn-{data}",
                          {"spec": spec, "relearned_base": checkpoint_identity(base)})
    with building(folder):
        if not is_complete(folder):
            WHPInferenceModel.save_spec(folder, base, spec["reinforced"], spec["alpha"])
            from ..models.loading import load_tokenizer  # loadable on its own, as the run folder is
            load_tokenizer(str(model_path), profile).save_pretrained(folder)
            mark_complete(folder)
    return folder


def discard_relearned(path: Path) -> None:
    """Delete a relearned model (for WHP at inference time, the relearned baseline its folder
    points to as well); a later :func:`relearned_model` call trains it again."""
    spec_file = Path(path) / "whp_inference.json"
    if spec_file.exists():
        from ..models.whp_inference import WHPInferenceModel
        shutil.rmtree(WHPInferenceModel.read_spec(path)["base"], ignore_errors=True)
    shutil.rmtree(path, ignore_errors=True)


def attacks_key(profile: Profile, model_path, reference_path, relearn: bool) -> dict:
    from ..evaluation.tofu import eval_key
    return {"eval": eval_key(profile, model_path), "reference": checkpoint_identity(reference_path),
            "robustness": profile.robustness, "finetune": profile.finetune,
            "qa_per_author": profile.qa_per_author, "eval_batch_size": profile.eval_batch_size,
            "relearn": relearn, "version": ATTACKS_VERSION}


def ensure_attacks(profile: Profile, model_path, reference_path, name: str,
                   relearn: bool = True, progress: bool = False) -> dict:
    """:func:`measure`, computed once per model and settings and cached as ``ATTACKS.json``."""
    folder = artifact_dir("robustness", f"{name}-attacks",
                          attacks_key(profile, model_path, reference_path, relearn))
    cached = folder / "ATTACKS.json"
    result = read_cached_json(cached)
    if result is not None:
        return result
    result = measure(profile, model_path, reference_path, name, relearn, progress)
    write_json(cached, result, default=float)  # a half-written file never looks like a result
    return json.loads(cached.read_text())  # the same values a cached call returns


def _mean_at(values: list[float], items: list[int]) -> float:
    return float(np.mean([values[i] for i in items]))


def robustness_row(result: dict, target: dict, retain: dict, metric: str = METRIC) -> dict:
    """One model's row: its forget knowledge before and after each attack, the share of the
    target's knowledge it keeps, and R (relearning on forget QA), Q (4-bit NF4), robustness."""
    plain = result["probes"]["plain"]
    row = {f"plain {metric}": plain[metric]}
    for probe in PROBES[1:]:
        row[f"{probe} {metric}"] = result["probes"][probe][metric]
    for scheme, out in result["quantized"].items():
        row[f"{scheme} {metric}"] = out[metric]
    for data, out in result.get("relearned", {}).items():
        row[f"relearn {data} {metric}"] = out[metric]
    row["kept"] = knowledge_kept(plain[metric], target["probes"]["plain"][metric])
    q_scheme = "nf4" if "nf4" in result["quantized"] else next(iter(result["quantized"]), None)
    quantized = result["quantized"][q_scheme][metric] if q_scheme else None
    # of what unlearning removed, the share the 4-bit reload brings back (NaN: nothing removed)
    row[f"returned ({q_scheme})"] = (math.nan if quantized is None else
                                     knowledge_returned(plain[metric], quantized, target["probes"]["plain"][metric]))
    row["Q"] = math.nan if quantized is None else quantization_score(plain[metric], quantized)
    if "forget" in result.get("relearned", {}) and "forget" in retain.get("relearned", {}):
        items = result["relearned"]["forget"]["items"]
        per_item = f"{metric}s"
        row["R"] = relearning_score(
            _mean_at(retain["probes"]["plain"][per_item], items),
            retain["relearned"]["forget"][metric],
            _mean_at(plain[per_item], items), result["relearned"]["forget"][metric])
    else:
        row["R"] = math.nan
    row["robustness"] = robustness_score(row["R"], row["Q"])
    row["perplexity"] = result["fluency"]["perplexity"]
    row["repetition"] = result["fluency"]["repetition"]
    return row


def robustness_frame(results: dict[str, dict], metric: str = METRIC) -> pd.DataFrame:
    """One row per model (``results`` must hold ``target`` and ``retain``)."""
    target, retain = results["target"], results["retain"]
    df = pd.DataFrame({name: robustness_row(r, target, retain, metric) for name, r in results.items()}).T
    df.index.name = "model"
    return df.astype(float)


def attack_heatmap_frame(results: dict[str, dict], metric: str = METRIC) -> pd.DataFrame:
    """Methods x attacks: the forget knowledge each attack shows, as a share of the target's
    plain-question value (1 = everything the target knew)."""
    base = results["target"]["probes"]["plain"][metric]
    frame = {}
    for name, r in results.items():
        col = {"none": r["probes"]["plain"][metric]}
        col |= {probe: r["probes"][probe][metric] for probe in PROBES[1:]}
        col |= {scheme: out[metric] for scheme, out in r["quantized"].items()}
        col |= {f"relearn {d}": out[metric] for d, out in r.get("relearned", {}).items()}
        frame[name] = {k: v / base if base else math.nan for k, v in col.items()}
    df = pd.DataFrame(frame).T
    df.index.name = "model"
    return df


def logit_lens_frame(results: dict[str, dict]) -> pd.DataFrame:
    """Long table (model, layer, probability) of the logit-lens curves."""
    rows = [{"model": name, "layer": layer, "answer probability": p}
            for name, r in results.items() if r.get("logit_lens")
            for layer, p in enumerate(r["logit_lens"])]
    return pd.DataFrame(rows)


def returned_answers(results: dict[str, dict], rows: list[dict], attack: str = "nf4",
                     limit: int = 5) -> pd.DataFrame:
    """Examples of answers an attack brings back: items where a method's plain answer missed
    the truth (ROUGE-L recall < 0.5) and the attacked answer has it (>= 0.5)."""
    out = []
    for name, r in results.items():
        if name in ("target", "retain"):
            continue
        attacked = (r["quantized"].get(attack) or r["probes"].get(attack) or {})
        if "rouges" not in attacked:
            continue
        plain = r["probes"]["plain"]
        for i, (before, after) in enumerate(zip(plain["rouges"], attacked["rouges"])):
            if before < 0.5 <= after:
                out.append({"model": name, "question": rows[i]["question"], "true answer": rows[i]["answer"],
                            "plain answer": plain["generations"][i],
                            f"{attack} answer": attacked["generations"][i]})
    df = pd.DataFrame(out)
    return df.groupby("model").head(limit).reset_index(drop=True) if len(df) else df


def ensure_model_attacks(profile: Profile, paths: dict[str, Path], progress: bool = False) -> dict[str, dict]:
    """:func:`ensure_attacks` for every model in ``paths`` (``target`` among them: the
    reference for fluency)."""
    return {name: ensure_attacks(profile, path, paths["target"], f"{name}-{profile.name}",
                                 progress=progress)
            for name, path in paths.items()}
