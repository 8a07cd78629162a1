"""The TOFU evaluation done the straightforward way: one item at a time.

Every (question, answer) pair gets its own forward pass (no batching, no padding, nothing
shared between a question's answers) and every question its own ``generate`` call. The
metric arithmetic is written out again here, loop by loop, from REFERENCE §2, instead of
reusing :mod:`nbutils.evaluation.tofu`. It is the baseline of
``benchmarks/bench_tofu_eval.py`` and a cross-check: both must give the same numbers.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from rouge_score import rouge_scorer
from scipy.stats import hmean, ks_2samp
from transformers import StoppingCriteriaList

from ..models.prompts import encode_prompt
from ..profiles import Profile
from .generation import StopOnNewline
from .scoring import encode_pair
from .tofu import tofu_rows, tofu_splits
from .tofu_logs import TofuEval, load_reference

EPS = 1e-10


@torch.no_grad()
def naive_token_scores(model, tokenizer, question: str, answer: str, prompt_format: str):
    """Per answer token (EOS included): log p(label) and whether the argmax is the label."""
    device = next(model.parameters()).device
    prompt = encode_prompt(tokenizer, question, prompt_format)
    ids, labels = encode_pair(tokenizer, prompt, answer, prompt_format)
    logits = model(input_ids=torch.tensor([ids], device=device)).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1).cpu()
    pred = logits.argmax(-1).cpu()
    logprobs, correct = [], []
    for t in range(len(prompt), len(ids)):  # the token at t is predicted at position t - 1
        logprobs.append(float(logp[t - 1, labels[t]]))
        correct.append(int(pred[t - 1]) == labels[t])
    return logprobs, correct


@torch.no_grad()
def naive_generate(model, tokenizer, question: str, prompt_format: str, max_new_tokens: int,
                   stop_at_newline: bool = True) -> str:
    """Greedy answer to one question, cut at EOS and (optionally) at the first newline."""
    device = next(model.parameters()).device
    prompt = encode_prompt(tokenizer, question, prompt_format)
    ids = torch.tensor([prompt], device=device)
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                         max_new_tokens=max_new_tokens, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         stopping_criteria=StoppingCriteriaList(
                             [StopOnNewline(tokenizer, len(prompt))] if stop_at_newline else []))
    text = tokenizer.decode(out[0, len(prompt):], skip_special_tokens=True)
    return text.split("\n")[0].strip() if stop_at_newline else text.strip()


def naive_evaluate_tofu(model, tokenizer, profile: Profile, reference=None,
                        progress: bool = False) -> TofuEval:
    """The same logs as :func:`nbutils.evaluation.tofu.evaluate_tofu`, item by item."""
    from tqdm.auto import tqdm

    model.eval()
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)
    fmt = profile.prompt_format
    logs: dict[str, dict] = {}
    for split in tofu_splits(profile):
        p = split.prefix
        rows = tofu_rows(profile, split.config)  # the same loader as the fast path
        prob, para, pert, norm, rouge, ratios, em, es = {}, {}, {}, {}, {}, {}, {}, {}
        for i, row in enumerate(tqdm(rows, desc=split.config, disable=not progress)):
            key = str(i)
            q = row["question"]
            lp, corr = naive_token_scores(model, tokenizer, q, row["answer"], fmt)
            answer_logp = sum(lp) / len(lp)  # log P̃(answer | q)
            prob[key] = {"prob": math.exp(answer_logp), "avg_loss": -answer_logp}
            wrong_logps = []
            for wrong in row["perturbed_answer"]:
                wlp, _ = naive_token_scores(model, tokenizer, q, wrong, fmt)
                wrong_logps.append(sum(wlp) / len(wlp))
            pert[key] = {"prob": [math.exp(x) for x in wrong_logps], "avg_loss": [-x for x in wrong_logps]}
            if split.paraphrased:
                plp, _ = naive_token_scores(model, tokenizer, q, row["paraphrased_answer"], fmt)
                para_logp = sum(plp) / len(plp)
                para[key] = {"prob": math.exp(para_logp), "avg_loss": -para_logp}
                correct_prob = math.exp(para_logp)
            else:
                p_true = math.exp(answer_logp)
                norm[key] = {"prob": p_true / (p_true + sum(math.exp(x) for x in wrong_logps) + EPS)}
                correct_prob = p_true
            geo_wrong = math.exp(sum(wrong_logps) / len(wrong_logps))
            ratios[key] = {"score": geo_wrong / (correct_prob + EPS)}
            gen = naive_generate(model, tokenizer, q, fmt, profile.max_new_tokens,
                                 profile.stop_at_newline)
            s = scorer.score(row["answer"], gen)
            rouge[key] = {"rouge1_recall": s["rouge1"].recall, "rougeL_f1": s["rougeL"].fmeasure,
                          "rougeL_recall": s["rougeL"].recall, "input": q,
                          "ground_truth": row["answer"], "generation": gen}
            y = corr[:-1]  # EOS excluded
            em[key] = {"score": sum(y) / len(y) if y else None}
            k = 0  # open-unlearning's search: the first k whose suffix is all correct; it
            for k in range(len(y)):  # stops at |y| - 1 when none is
                if all(y[k:]):
                    break
            es[key] = {"score": 1 - k / len(y) if y else None}

        def mean(d, field="prob"):
            return float(np.mean([v[field] for v in d.values() if v[field] is not None]))

        logs[f"{p}_Q_A_Prob"] = {"agg_value": mean(prob), "value_by_index": prob}
        if split.paraphrased:
            logs[f"{p}_Q_A_PARA_Prob"] = {"agg_value": mean(para), "value_by_index": para}
        logs[f"{p}_Q_A_PERT_Prob"] = {"agg_value": float(np.mean([np.mean(v["prob"]) for v in pert.values()])),
                                      "value_by_index": pert}
        if not split.paraphrased:
            logs[f"{p}_Q_A_Prob_normalised"] = {"agg_value": mean(norm), "value_by_index": norm}
        logs[f"{p}_Q_A_ROUGE"] = {"agg_value": mean(rouge, "rougeL_recall"), "value_by_index": rouge}
        r = [v["score"] for v in ratios.values()]
        if p == "forget":
            tr = float(np.mean([min(x, 1 / (x + EPS)) for x in r]))
        else:
            tr = float(np.mean([max(0.0, 1 - x) for x in r]))
        logs[split.truth_ratio_key] = {"agg_value": tr, "value_by_index": ratios}
        if p == "forget":
            logs["extraction_strength"] = {"agg_value": mean(es, "score"), "value_by_index": es}
            logs["exact_memorization"] = {"agg_value": mean(em, "score"), "value_by_index": em}
        elif p == "retain":
            logs["retain_extraction_strength"] = {"agg_value": mean(es, "score"), "value_by_index": es}

    utility = [logs[k]["agg_value"] for k in
               ("retain_Q_A_Prob", "retain_Q_A_ROUGE", "retain_Truth_Ratio",
                "ra_Q_A_Prob_normalised", "ra_Q_A_ROUGE", "ra_Truth_Ratio",
                "wf_Q_A_Prob_normalised", "wf_Q_A_ROUGE", "wf_Truth_Ratio")]
    fq = None
    if reference is not None:
        mine = [logs["forget_truth_ratio"]["value_by_index"][str(i)]["score"]
                for i in range(len(logs["forget_truth_ratio"]["value_by_index"]))]
        fq = float(ks_2samp(mine, load_reference(reference)).pvalue)
    out = {"forget_quality": {"agg_value": fq}, "model_utility": {"agg_value": float(hmean(utility))}}
    out.update(logs)
    return TofuEval(out, {"profile": profile.name, "implementation": "naive"})
