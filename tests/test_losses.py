"""Every unlearning objective of ``nbutils.unlearning.losses`` against a hand computation.

The hand computations are written with explicit loops and ``math`` on small tensors, never
by calling the function under test, so a wrong shift, mask, sign or factor shows up here.
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from nbutils.unlearning import losses

IGNORE = -100
V = 5  # vocabulary of the hand-made examples


# --- a small batch: row 0 has a 3-token prompt and 4 answer tokens; row 1 a 2-token prompt,
#     2 answer tokens and 3 padding positions -------------------------------------------------
def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 7, V, generator=g) * 2
    labels = torch.tensor([[IGNORE, IGNORE, IGNORE, 1, 4, 0, 2],
                           [IGNORE, IGNORE, 3, 1, IGNORE, IGNORE, IGNORE]])
    return logits, labels


def _log_softmax(row) -> list[float]:
    """log softmax of a 1-d tensor, in plain math."""
    xs = [float(v) for v in row]
    m = max(xs)
    lse = m + math.log(sum(math.exp(x - m) for x in xs))
    return [x - lse for x in xs]


def _answer_positions(labels):
    """(b, t, y): the logits at position t predict answer token y = labels[b, t+1]."""
    out = []
    for b in range(labels.shape[0]):
        for t in range(labels.shape[1] - 1):
            y = int(labels[b, t + 1])
            if y != IGNORE:
                out.append((b, t, y))
    return out


def _hand_S(logits, labels):
    S = [0.0] * labels.shape[0]
    n = [0] * labels.shape[0]
    for b, t, y in _answer_positions(labels):
        S[b] += _log_softmax(logits[b, t])[y]
        n[b] += 1
    return S, n


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def _perturb_masked(logits, labels, scale=50.0, seed=1):
    """``logits`` changed at every position that predicts no answer token (prompt, padding,
    the last position)."""
    g = torch.Generator().manual_seed(seed)
    out = logits.clone()
    answer = {(b, t) for b, t, _ in _answer_positions(labels)}
    for b in range(logits.shape[0]):
        for t in range(logits.shape[1]):
            if (b, t) not in answer:
                out[b, t] = torch.randn(logits.shape[-1], generator=g) * scale
    return out


# --- token / sequence log-probabilities -------------------------------------------------------
def test_token_logprobs_shift_and_mask():
    logits, labels = _batch()
    logp, mask = losses.token_logprobs(logits, labels)
    assert logp.shape == mask.shape == (2, 6)
    expected_mask = [[False, False, True, True, True, True], [False, True, True, False, False, False]]
    assert mask.tolist() == expected_mask
    for b in range(2):
        for t in range(6):
            y = int(labels[b, t + 1])
            want = _log_softmax(logits[b, t])[y] if y != IGNORE else 0.0
            assert float(logp[b, t]) == pytest.approx(want, abs=1e-5)


def test_sequence_logprob_sum_and_length():
    logits, labels = _batch()
    S, n = losses.sequence_logprob(logits, labels)
    hand_S, hand_n = _hand_S(logits, labels)
    assert S.tolist() == pytest.approx(hand_S, abs=1e-5)
    assert n.tolist() == hand_n == [4, 2]
    assert all(s < 0 for s in hand_S)


def test_nll_is_mean_token_nll_over_answer_tokens():
    logits, labels = _batch()
    pos = _answer_positions(labels)
    hand = sum(-_log_softmax(logits[b, t])[y] for b, t, y in pos) / len(pos)
    assert float(losses.nll(logits, labels)) == pytest.approx(hand, abs=1e-5)
    # the token mean, not the mean of per-row means
    S, n = _hand_S(logits, labels)
    assert hand == pytest.approx(-sum(S) / sum(n))
    assert float(losses.grad_ascent_loss(logits, labels)) == pytest.approx(-hand, abs=1e-5)


def test_masked_positions_change_no_loss():
    """Prompt and padding positions (and the last one, which predicts nothing) are outside
    every loss: changing the logits there changes nothing."""
    logits, labels = _batch()
    ref = _batch(seed=3)[0]
    other, other_ref = _perturb_masked(logits, labels), _perturb_masked(ref, labels, seed=2)
    assert not torch.equal(other, logits)
    for fn in (lambda lg, rf: losses.sequence_logprob(lg, labels)[0],
               lambda lg, rf: losses.token_logprobs(lg, labels)[0],
               lambda lg, rf: losses.nll(lg, labels),
               lambda lg, rf: losses.answer_kl(lg, rf, labels),
               lambda lg, rf: losses.undial_loss(lg, rf, labels, beta=10.0)):
        assert torch.allclose(fn(logits, ref), fn(other, other_ref), atol=1e-5)
    # and the answer positions do count
    changed = logits.clone()
    changed[0, 3] += torch.tensor([0.0, 0.0, 0.0, 0.0, 5.0])  # predicts labels[0, 4] = 4
    assert not torch.allclose(losses.sequence_logprob(changed, labels)[0],
                              losses.sequence_logprob(logits, labels)[0])


# --- NPO --------------------------------------------------------------------------------------
def test_npo_value():
    s = torch.tensor([-12.0, -3.5, -40.0])
    s_ref = torch.tensor([-10.0, -4.0, -30.0])
    for beta in (0.1, 1.0, 2.5):
        hand = -(2 / beta) * sum(_log_sigmoid(-beta * (a - r)) for a, r in zip(s.tolist(), s_ref.tolist())) / 3
        assert float(losses.npo_loss(s, s_ref, beta)) == pytest.approx(hand, rel=1e-5)
    # at S_θ = S_ref the loss is (2/β) log 2
    assert float(losses.npo_loss(s_ref, s_ref, 0.1)) == pytest.approx(20 * math.log(2), rel=1e-6)


def test_npo_gradient_wrt_scores():
    """dL/dS_i = (2/n) σ(β (S_i - S_ref,i)): a per-example weight that fades as S_θ drops."""
    s = torch.tensor([-12.0, -3.5, -40.0], requires_grad=True)
    s_ref = torch.tensor([-10.0, -4.0, -30.0])
    beta = 0.3
    losses.npo_loss(s, s_ref, beta).backward()
    n = 3
    hand = [2 / n / (1 + math.exp(-beta * (a - r))) for a, r in zip(s.tolist(), s_ref.tolist())]
    assert s.grad.tolist() == pytest.approx(hand, rel=1e-5)
    # β → 0: σ → 1/2, the gradient is 1/n per row, that of mean_i S_θ,i (= -mean_i(-S_θ,i),
    # gradient ascent on the summed log-likelihood); minimising it lowers every S_θ
    s.grad = None
    losses.npo_loss(s, s_ref, 1e-5).backward()
    assert s.grad.tolist() == pytest.approx([1 / n] * n, rel=1e-4)


def _tiny_llama(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32)
    return LlamaForCausalLM(cfg).eval()


def _tiny_batch():
    ids = torch.tensor([[1, 5, 7, 9, 11, 13, 2, 0], [1, 6, 8, 10, 12, 2, 0, 0], [1, 3, 4, 20, 21, 22, 23, 2]])
    att = (torch.arange(8)[None, :] < torch.tensor([[7], [6], [8]])).long()
    labels = ids.clone()
    labels[:, :3] = IGNORE  # prompt
    labels[att == 0] = IGNORE  # padding
    return ids, att, labels


def test_npo_gradient_is_grad_ascent_as_beta_to_zero_on_a_real_model():
    """On a real (tiny) model: ∇ npo_loss(S_θ, S_ref, β=1e-4) equals ∇ mean_i S_θ,i, the
    gradient of gradient ascent on sequence sums (loss -mean_i(-S_θ,i)), in direction and
    magnitude, w.r.t. the logits and the parameters; one descent step lowers S_θ."""
    model = _tiny_llama()
    ids, att, labels = _tiny_batch()
    with torch.no_grad():
        s_ref = losses.sequence_logprob(model(input_ids=ids, attention_mask=att).logits, labels)[0] \
            + torch.tensor([3.0, -2.0, 1.0])  # a reference that differs from θ

    def grads(loss_fn):
        model.zero_grad()
        logits = model(input_ids=ids, attention_mask=att).logits
        logits.retain_grad()
        loss_fn(logits).backward()
        params = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        return logits.grad.clone(), params.clone()

    g_npo = grads(lambda lg: losses.npo_loss(losses.sequence_logprob(lg, labels)[0], s_ref, 1e-4))
    g_ga = grads(lambda lg: -(-losses.sequence_logprob(lg, labels)[0]).mean())
    for a, b in zip(g_npo, g_ga):
        assert b.abs().max() > 0
        # σ(β d)·2 = 1 + β d / 2 + ...: a relative difference of order β |S_θ - S_ref| ≈ 1e-4
        assert float((a - b).norm() / b.norm()) < 1e-3
        assert float((a - b).abs().max()) < 1e-3 * float(b.abs().max())
        cos = torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0)
        assert float(cos) > 0.99999
    # for a single row it is |a| times the token-mean GradAscent loss's gradient
    one = slice(0, 1)
    n0 = int((labels[one] != IGNORE)[:, 1:].sum())
    g1 = grads(lambda lg: losses.npo_loss(losses.sequence_logprob(lg[one], labels[one])[0], s_ref[one], 1e-4))
    g2 = grads(lambda lg: losses.grad_ascent_loss(lg[one], labels[one]))
    assert float((g1[1] - n0 * g2[1]).norm() / g1[1].norm()) < 1e-3
    # sign: a small descent step on the NPO loss lowers S_θ, as gradient ascent does
    with torch.no_grad():
        before = losses.sequence_logprob(model(input_ids=ids, attention_mask=att).logits, labels)[0]
    model.zero_grad()
    losses.npo_loss(losses.sequence_logprob(model(input_ids=ids, attention_mask=att).logits, labels)[0],
                    s_ref, 1e-4).backward()
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= 1e-2 * p.grad
        after = losses.sequence_logprob(model(input_ids=ids, attention_mask=att).logits, labels)[0]
    assert after.sum() < before.sum()


# --- SimNPO -----------------------------------------------------------------------------------
def test_simnpo_is_reference_free():
    params = list(inspect.signature(losses.simnpo_loss).parameters)
    assert params == ["s_theta", "length", "beta", "delta"]
    from nbutils.unlearning import get_method
    m = get_method("simnpo")
    assert m.reference_logprobs == () and not m.uses_reference_model


def test_simnpo_value_with_delta():
    s = torch.tensor([-6.0, -2.0, -30.0])
    n = torch.tensor([3, 4, 12])
    for beta, delta in ((4.5, 0.0), (2.5, 0.7), (0.7, -1.0)):
        # the code's form: sigma(beta (NLL / |a| - delta)), NLL = -S
        hand = -(2 / beta) * sum(_log_sigmoid(beta * (-v / k - delta))
                                 for v, k in zip(s.tolist(), n.tolist())) / 3
        assert float(losses.simnpo_loss(s, n, beta, delta)) == pytest.approx(hand, rel=1e-5)


def test_simnpo_is_length_normalised():
    """Same per-token log-probability, different lengths: the same loss contribution."""
    per_token = -0.8
    s = torch.tensor([per_token * 3, per_token * 11])
    n = torch.tensor([3, 11])
    both = float(losses.simnpo_loss(s, n, 4.5, 0.3))
    alone = [float(losses.simnpo_loss(s[i:i + 1], n[i:i + 1], 4.5, 0.3)) for i in range(2)]
    assert alone[0] == pytest.approx(alone[1], rel=1e-6)
    assert both == pytest.approx(alone[0], rel=1e-6)
    # NPO on the same sums is not length-normalised
    zero = torch.zeros(1)
    assert float(losses.npo_loss(s[:1], zero, 4.5)) != pytest.approx(float(losses.npo_loss(s[1:], zero, 4.5)))
    # and via real logits: rows with a uniform distribution at every answer position have
    # per-token log p = -log V whatever the length
    logits = torch.zeros(2, 9, V)
    labels = torch.full((2, 9), IGNORE)
    labels[0, 2:5] = 1
    labels[1, 2:9] = 3
    S, length = losses.sequence_logprob(logits, labels)
    assert length.tolist() == [3, 7]
    rows = [float(losses.simnpo_loss(S[i:i + 1], length[i:i + 1], 4.5)) for i in range(2)]
    assert rows[0] == pytest.approx(rows[1], rel=1e-6)
    assert rows[0] == pytest.approx(-(2 / 4.5) * _log_sigmoid(4.5 * math.log(V)), rel=1e-5)


# --- DPO --------------------------------------------------------------------------------------
def test_dpo_equal_policy_and_reference_is_2_log2_over_beta():
    s_w, s_l = torch.tensor([-5.0, -9.0]), torch.tensor([-3.0, -20.0])
    for beta in (0.1, 0.5):
        assert float(losses.dpo_loss(s_w, s_w, s_l, s_l, beta)) == pytest.approx(2 / beta * math.log(2), rel=1e-6)


def test_dpo_value_and_sign():
    s_w, s_w_ref = torch.tensor([-5.0, -9.0]), torch.tensor([-6.0, -8.0])
    s_l, s_l_ref = torch.tensor([-3.0, -25.0]), torch.tensor([-2.0, -20.0])
    beta = 0.5
    hand = 0.0
    for w, wr, l, lr in zip(s_w.tolist(), s_w_ref.tolist(), s_l.tolist(), s_l_ref.tolist()):
        hand += _log_sigmoid(beta * ((w - wr) - (l - lr)))
    hand = -(2 / beta) * hand / 2
    assert float(losses.dpo_loss(s_w, s_w_ref, s_l, s_l_ref, beta)) == pytest.approx(hand, rel=1e-5)
    # preferring w (raising S_θ(w)) or rejecting l (lowering S_θ(l)) lowers the loss
    base = float(losses.dpo_loss(s_w, s_w_ref, s_l, s_l_ref, beta))
    assert float(losses.dpo_loss(s_w + 1, s_w_ref, s_l, s_l_ref, beta)) < base
    assert float(losses.dpo_loss(s_w, s_w_ref, s_l - 1, s_l_ref, beta)) < base
    w = s_w.clone().requires_grad_(True)
    l = s_l.clone().requires_grad_(True)
    losses.dpo_loss(w, s_w_ref, l, s_l_ref, beta).backward()
    assert (w.grad < 0).all() and (l.grad > 0).all()


# --- KL on answer tokens (ours) ---------------------------------------------------------------
def test_answer_kl_against_hand_kl():
    logits, labels = _batch()
    ref = _batch(seed=5)[0]
    pos = _answer_positions(labels)
    total = 0.0
    for b, t, _ in pos:
        lp, lq = _log_softmax(logits[b, t]), _log_softmax(ref[b, t])
        total += sum(math.exp(q) * (q - p) for p, q in zip(lp, lq))  # KL(p_ref || p_θ)
    hand = total / len(pos)
    got = float(losses.answer_kl(logits, ref, labels))
    assert got == pytest.approx(hand, rel=1e-5) and got > 0
    # not the reverse KL
    rev = sum(sum(math.exp(p) * (p - q) for p, q in zip(_log_softmax(logits[b, t]), _log_softmax(ref[b, t])))
              for b, t, _ in pos) / len(pos)
    assert rev != pytest.approx(got, rel=1e-3)
    # averaged over answer tokens only, not all positions (the published code's choice)
    all_pos = [(b, t) for b in range(2) for t in range(6)]
    everywhere = sum(sum(math.exp(q) * (q - p) for p, q in zip(_log_softmax(logits[b, t]), _log_softmax(ref[b, t])))
                     for b, t in all_pos) / len(all_pos)
    assert everywhere != pytest.approx(got, rel=1e-3)


def test_answer_kl_zero_when_equal():
    logits, labels = _batch()
    assert float(losses.answer_kl(logits, logits.clone(), labels)) == pytest.approx(0.0, abs=1e-6)
    # equal on answer positions only: still 0
    other = _perturb_masked(logits, labels)
    assert float(losses.answer_kl(other, logits, labels)) == pytest.approx(0.0, abs=1e-6)


# --- RMU --------------------------------------------------------------------------------------
def test_masked_mse_against_hand():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(2, 5, 3, generator=g)
    target = torch.randn(2, 5, 3, generator=g)
    labels = torch.tensor([[IGNORE, IGNORE, 4, 2, 1], [IGNORE, 3, 3, IGNORE, IGNORE]])
    total, count = 0.0, 0
    for b in range(2):
        for t in range(5):
            if int(labels[b, t]) != IGNORE:
                total += sum((float(h[b, t, d]) - float(target[b, t, d])) ** 2 for d in range(3)) / 3
                count += 1
    assert float(losses.masked_mse(h, target, labels)) == pytest.approx(total / count, rel=1e-5)
    # RMU's forget target c·u: a broadcast control vector
    u = torch.rand(3, generator=g)
    u = u / u.norm()
    c = 2.0
    total = sum(sum((float(h[b, t, d]) - c * float(u[d])) ** 2 for d in range(3)) / 3
                for b in range(2) for t in range(5) if int(labels[b, t]) != IGNORE)
    assert float(losses.masked_mse(h, c * u.expand_as(h), labels)) == pytest.approx(total / count, rel=1e-5)
    # positions outside the answer do not count
    h2 = h.clone()
    h2[labels == IGNORE] = 100.0
    assert torch.allclose(losses.masked_mse(h2, target, labels), losses.masked_mse(h, target, labels))


# --- UNDIAL -----------------------------------------------------------------------------------
def test_undial_against_hand():
    logits, labels = _batch()
    ref = _batch(seed=7)[0]
    for beta in (0.0, 10.0, 3.0):
        pos = _answer_positions(labels)
        total = 0.0
        for b, t, y in pos:
            adjusted = [float(ref[b, t, j]) - (beta if j == y else 0.0) for j in range(V)]
            target = [math.exp(v) for v in _log_softmax(torch.tensor(adjusted))]
            lp = _log_softmax(logits[b, t])
            total += -sum(q * p for q, p in zip(target, lp))
        hand = total / len(pos)
        assert float(losses.undial_loss(logits, ref, labels, beta)) == pytest.approx(hand, rel=1e-5)


def test_undial_target_pushes_true_token_down():
    """At the target distribution the loss is minimal; it puts less mass on y than p_ref."""
    _, labels = _batch()
    ref = _batch(seed=7)[0]
    beta = 10.0
    target_logits = ref.clone()
    for b, t, y in _answer_positions(labels):
        target_logits[b, t, y] -= beta
    at_target = float(losses.undial_loss(target_logits, ref, labels, beta))
    at_ref = float(losses.undial_loss(ref, ref, labels, beta))
    assert at_target < at_ref
    # the minimum equals the target's entropy: perturbing away from it raises the loss
    bumped = target_logits.clone()
    b, t, y = _answer_positions(labels)[0]
    bumped[b, t, int(target_logits[b, t].argmax())] += 1.0  # (y itself has almost no target mass)
    assert float(losses.undial_loss(bumped, ref, labels, beta)) > at_target


# --- token-weighted ascent, CE-U, PDU (issue 15) ------------------------------------------------
def _hand_token_nll(logits, labels):
    """[(ℓ_t, p_t)] over every answer token of the batch."""
    out = []
    for b, t, y in _answer_positions(labels):
        lp = _log_softmax(logits[b, t])[y]
        out.append((-lp, math.exp(lp)))
    return out


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.5])
def test_wga_against_hand(beta):
    logits, labels = _batch()
    tokens = _hand_token_nll(logits, labels)
    hand = -sum(p ** beta * l for l, p in tokens) / len(tokens)  # pooled over the batch's tokens
    assert float(losses.wga_loss(logits, labels, beta)) == pytest.approx(hand, rel=1e-5)
    if beta == 0.0:  # no weights: plain gradient ascent on the mean token NLL
        assert float(losses.wga_loss(logits, labels, 0.0)) == pytest.approx(-float(losses.nll(logits, labels)), rel=1e-6)


def test_wga_weights_are_detached():
    """The gradient is that of -mean(w_t ℓ_t) with w_t constant: ∂/∂z = -w_t ∂ℓ_t/∂z."""
    logits, labels = _batch()
    z = logits.clone().requires_grad_(True)
    losses.wga_loss(z, labels, 1.0).backward()
    (b, t, y), n = _answer_positions(labels)[0], len(_answer_positions(labels))
    p = [math.exp(v) for v in _log_softmax(logits[b, t])]
    expected = [-(p[y]) * (p[j] - (1.0 if j == y else 0.0)) / n for j in range(V)]
    assert z.grad[b, t].tolist() == pytest.approx(expected, rel=1e-4, abs=1e-7)


def test_satimp_against_hand():
    logits, labels = _batch(seed=3)
    tokens = _hand_token_nll(logits, labels)
    hand = -sum(p ** 5 * (1 - p) ** 1 * l for l, p in tokens) / len(tokens)
    assert float(losses.satimp_loss(logits, labels, 5.0, 1.0)) == pytest.approx(hand, rel=1e-5)


def test_ceu_against_hand_and_skips_each_answers_first_token():
    logits, labels = _batch(seed=4)
    positions = _answer_positions(labels)
    first = {b: min(t for bb, t, _ in positions if bb == b) for b in (0, 1)}
    kept = [(b, t, y) for b, t, y in positions if t != first[b]]
    total = 0.0
    for b, t, y in kept:
        lp = _log_softmax(logits[b, t])
        others = [j for j in range(V) if j != y]
        norm = sum(math.exp(lp[j]) for j in others)
        total += -sum(math.exp(lp[j]) / norm * lp[j] for j in others)  # q = p without y, renormalised
    hand = total / len(kept)
    assert float(losses.ceu_loss(logits, labels)) == pytest.approx(hand, rel=1e-5)
    assert float(losses.ceu_loss(logits, labels, skip_first=0)) != pytest.approx(hand, rel=1e-5)


def test_pdu_forget_loss_against_hand():
    """Unshifted: the logits *at* the answer tokens' positions, as open-unlearning's pdu.py."""
    logits, labels = _batch(seed=5)
    vals = [(float(logits[b, t].max()) - float(logits[b, t].mean())) ** 2
            for b in range(2) for t in range(7) if int(labels[b, t]) != IGNORE]
    assert float(losses.pdu_forget_loss(logits, labels)) == pytest.approx(sum(vals) / len(vals), rel=1e-5)
    flat = torch.zeros_like(logits)
    assert float(losses.pdu_forget_loss(flat, labels)) == 0.0  # nothing preferred: minimal


def test_pdu_dual_variable_over_several_steps():
    """λ rises while the retain loss exceeds ε, falls back, and stays at 0 once it holds."""
    lam, seen = 1.0, []
    for retain in (0.9, 0.7, 0.2, 0.1, 0.1, 0.1, 0.25):
        lam = losses.dual_ascent(lam, retain, epsilon=0.3, step_size=2.0)
        seen.append(round(lam, 6))
    assert seen == [2.2, 3.0, 2.8, 2.4, 2.0, 1.6, 1.5]
    lam = 0.5
    for _ in range(5):
        lam = losses.dual_ascent(lam, 0.1, epsilon=0.3, step_size=2.0)
    assert lam == 0.0  # clipped at 0, never negative
