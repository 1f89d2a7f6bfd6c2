"""Similarity functions (AND module A) against plain per-neuron, per-concept loops."""

import math

import pytest
import torch

from dissect.description import similarity as S
from dissect.description.similarity import (
    SIMILARITIES,
    cos,
    cos_cubed,
    rank_reorder,
    soft_wpmi,
    top_concepts,
    wpmi,
)

# (N clips, n neurons, C concepts): includes N < wpmi's top_k (28) and soft_wpmi's (100).
SHAPES = [(7, 4, 3), (40, 3, 5), (150, 6, 8), (33, 1, 4)]


def _random(N, n, C, seed, kind="db"):
    g = torch.Generator().manual_seed(seed)
    U = torch.randn(N, n, generator=g, dtype=torch.float64)
    if kind == "db":
        P = torch.softmax(3 * torch.randn(N, C, generator=g, dtype=torch.float64), dim=1)
    else:  # cosine-like, can be negative
        P = torch.rand(N, C, generator=g, dtype=torch.float64) * 0.8 - 0.2
    return U, P


# --------------------------------------------------------------------------------------------
# brute-force references (lists and scalars, one neuron and one concept at a time)


def _col(M, j):
    return [float(M[i, j]) for i in range(M.shape[0])]


def _top(u, k):
    return sorted(range(len(u)), key=lambda i: (-u[i], i))[:k]


def _softmax_rows(P, a):
    rows = []
    for i in range(P.shape[0]):
        z = [a * float(x) for x in P[i]]
        m = max(z)
        e = [math.exp(v - m) for v in z]
        s = sum(e)
        rows.append([v / s for v in e])
    return rows


def bf_cos(U, P):
    out = torch.zeros(U.shape[1], P.shape[1], dtype=torch.float64)
    for j in range(U.shape[1]):
        u = _col(U, j)
        for c in range(P.shape[1]):
            v = _col(P, c)
            dot = sum(x * y for x, y in zip(u, v, strict=True))
            out[j, c] = dot / (math.sqrt(sum(x * x for x in u)) * math.sqrt(sum(y * y for y in v)))
    return out


def bf_cos_cubed(U, P, min_norm=1e-3):
    def prep(v):
        m = sum(v) / len(v)
        w = [(x - m) ** 3 for x in v]
        nrm = max(math.sqrt(sum(x * x for x in w)), min_norm)
        return [x / nrm for x in w]

    out = torch.zeros(U.shape[1], P.shape[1], dtype=torch.float64)
    for j in range(U.shape[1]):
        u = prep(_col(U, j))
        for c in range(P.shape[1]):
            out[j, c] = sum(x * y for x, y in zip(u, prep(_col(P, c)), strict=True))
    return out


def _logsumexp(xs):
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def _bf_pmi(U, P, top_k, a, lam, term, prior, normaliser):
    N, n, C = U.shape[0], U.shape[1], P.shape[1]
    k = min(top_k, N)
    Q = _softmax_rows(P, a)
    L = []
    for j in range(n):
        top = _top(_col(U, j), k)
        L.append([sum(term(r, k, Q[i][c]) for r, i in enumerate(top)) for c in range(C)])
    out = torch.zeros(n, C, dtype=torch.float64)
    for c in range(C):
        if normaliser == "prior":
            qm = sum(Q[i][c] for i in range(N)) / N
            log_pc = prior(k, qm)
        else:
            log_pc = _logsumexp([L[j][c] for j in range(n)]) - math.log(n)
        for j in range(n):
            out[j, c] = L[j][c] - lam * log_pc
    return out


def bf_wpmi(U, P, top_k=28, a=2.0, lam=0.6, normaliser="neurons"):
    def term(r, k, q):
        return math.log(q + 1e-7)

    def prior(k, qm):
        return k * math.log(qm + 1e-7)

    return _bf_pmi(U, P, top_k, a, lam, term, prior, normaliser)


def bf_soft_wpmi(U, P, top_k=100, a=10.0, lam=1.0, p0=0.998, p1=0.97, normaliser="neurons"):
    def pr(r, k):
        return p0 - (r / k) * (p0 - p1)

    def term(r, k, q):
        return math.log(1 + pr(r, k) * (q - 1) + 1e-7)

    def prior(k, qm):
        return sum(math.log(1 + pr(r, k) * (qm - 1) + 1e-7) for r in range(k))

    return _bf_pmi(U, P, top_k, a, lam, term, prior, normaliser)


def bf_rank_reorder(U, P, top_fraction=0.05, p=3, scale_p=0.5, n_shuffles=5, seed=0):
    N, n, C = U.shape[0], U.shape[1], P.shape[1]
    t = min(N, max(min(2, N), int(N * top_fraction)))
    g = torch.Generator().manual_seed(seed)
    perms = [torch.randperm(t, generator=g).tolist() for _ in range(n_shuffles)]
    out = torch.zeros(n, C, dtype=torch.float64)
    for j in range(n):
        u = _col(U, j)
        top = _top(u, t)
        desc = [u[i] for i in top]
        asc = desc[::-1]
        diffs = [abs(asc[i] - asc[pm[i]]) ** p for pm in perms for i in range(t)]
        base = sum(diffs) / len(diffs)
        for c in range(C):
            sims = [float(P[i, c]) for i in top]
            order = sorted(range(t), key=lambda r: (sims[r], r))  # ascending similarity
            rank = [0] * t
            for pos, r in enumerate(order):
                rank[r] = pos
            err = sum(abs(desc[r] - asc[rank[r]]) ** p for r in range(t)) / t
            err = err / max(base, 1e-30)
            avg = sum(sims) / t
            out[j, c] = -(err / avg**scale_p) if avg > 0 else -math.inf  # no candidate
    return out


# --------------------------------------------------------------------------------------------
# equality with the loops


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["db", "cosine"])
def test_cos_and_cos_cubed_match_loops(shape, kind):
    U, P = _random(*shape, seed=sum(shape), kind=kind)
    torch.testing.assert_close(cos(U, P), bf_cos(U, P), atol=1e-5, rtol=0)
    torch.testing.assert_close(cos_cubed(U, P), bf_cos_cubed(U, P), atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape", SHAPES)
def test_wpmi_matches_loop(shape):
    U, P = _random(*shape, seed=1 + sum(shape))
    got = wpmi(U, P)
    mode = "neurons" if shape[1] > 1 else "prior"
    torch.testing.assert_close(got, bf_wpmi(U, P, normaliser=mode), atol=1e-5, rtol=0)
    for top_k in (1, 5):
        torch.testing.assert_close(
            wpmi(U, P, top_k=top_k, a=3.0, lam=0.3, normaliser="prior"),
            bf_wpmi(U, P, top_k=top_k, a=3.0, lam=0.3, normaliser="prior"),
            atol=1e-5,
            rtol=0,
        )


@pytest.mark.parametrize("shape", SHAPES)
def test_soft_wpmi_matches_loop(shape):
    U, P = _random(*shape, seed=2 + sum(shape))
    mode = "neurons" if shape[1] > 1 else "prior"
    torch.testing.assert_close(
        soft_wpmi(U, P), bf_soft_wpmi(U, P, normaliser=mode), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        soft_wpmi(U, P, top_k=5, normaliser="prior"),
        bf_soft_wpmi(U, P, top_k=5, normaliser="prior"),
        atol=1e-5,
        rtol=0,
    )


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["db", "cosine"])
def test_rank_reorder_matches_loop(shape, kind):
    U, P = _random(*shape, seed=3 + sum(shape), kind=kind)
    torch.testing.assert_close(rank_reorder(U, P), bf_rank_reorder(U, P), atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(
        rank_reorder(U, P, top_fraction=0.3, p=2, seed=7),
        bf_rank_reorder(U, P, top_fraction=0.3, p=2, seed=7),
        atol=1e-5,
        rtol=1e-6,
    )


def test_tied_activations_pick_lower_clip_indices():
    U, P = _random(90, 5, 4, seed=12)
    U = torch.round(U * 1.5)  # many ties among the top clips
    U[:, 0] = 0.0  # a constant neuron: every clip ties
    torch.testing.assert_close(wpmi(U, P), bf_wpmi(U, P), atol=1e-5, rtol=0)
    torch.testing.assert_close(soft_wpmi(U, P), bf_soft_wpmi(U, P), atol=1e-5, rtol=0)
    rr = rank_reorder(U, P, top_fraction=0.2)
    torch.testing.assert_close(rr, bf_rank_reorder(U, P, top_fraction=0.2), atol=1e-5, rtol=1e-6)
    assert torch.count_nonzero(rr[0]) == 0  # constant neuron: no information, score 0


def test_float32_inputs_close_to_float64_loops():
    U, P = _random(60, 5, 6, seed=11)
    U32, P32 = U.float(), P.float()
    assert cos_cubed(U32, P32).dtype == torch.float32
    torch.testing.assert_close(cos_cubed(U32, P32).double(), bf_cos_cubed(U, P), atol=1e-5, rtol=0)
    torch.testing.assert_close(wpmi(U32, P32).double(), bf_wpmi(U, P), atol=1e-3, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(SIMILARITIES))
def test_chunking_does_not_change_results(monkeypatch, name):
    U, P = _random(80, 7, 5, seed=4)
    whole = SIMILARITIES[name](U, P)
    monkeypatch.setattr(S, "CHUNK_ELEMENTS", 1)  # one neuron per chunk
    torch.testing.assert_close(SIMILARITIES[name](U, P), whole, atol=1e-12, rtol=0)
    assert whole.shape == (7, 5)


def test_inputs_are_not_modified_and_numpy_is_accepted():
    U, P = _random(30, 3, 4, seed=5)
    U0, P0 = U.clone(), P.clone()
    for fn in SIMILARITIES.values():
        fn(U, P)
    assert torch.equal(U, U0) and torch.equal(P, P0)
    torch.testing.assert_close(cos(U.numpy(), P.numpy()), cos(U, P))
    assert cos(U[:, 0], P).shape == (1, 4)  # a 1-D activation vector is one neuron
    with pytest.raises(ValueError, match="clips"):
        cos(U[:-1], P)


def test_rank_reorder_is_seeded():
    U, P = _random(200, 4, 6, seed=6)
    torch.testing.assert_close(rank_reorder(U, P, seed=3), rank_reorder(U, P, seed=3), rtol=0,
                               atol=0)  # fmt: skip
    assert torch.isfinite(rank_reorder(U[:5], P[:5])).all()  # 5 clips: the official NaN case


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_same_results_on_cuda():
    U, P = _random(300, 9, 7, seed=8)
    for fn in SIMILARITIES.values():
        torch.testing.assert_close(fn(U.cuda(), P).cpu(), fn(U, P), atol=1e-6, rtol=1e-6)


# --------------------------------------------------------------------------------------------
# behaviour


def _concept_probe(n_concepts=5, per_concept=80, seed=0):
    """P for clips that each belong to one concept, and one neuron per concept firing on it."""
    g = torch.Generator().manual_seed(seed)
    N = n_concepts * per_concept
    y = torch.arange(N) % n_concepts
    logits = 4.0 * torch.nn.functional.one_hot(y, n_concepts).double()
    logits += 0.5 * torch.randn(N, n_concepts, generator=g, dtype=torch.float64)
    P = torch.softmax(logits, dim=1)
    U = torch.stack([(y == c).double() for c in range(n_concepts)], dim=1)
    U += 0.01 * torch.randn(N, n_concepts, generator=g, dtype=torch.float64)
    return U, P, y


@pytest.mark.parametrize("name", sorted(SIMILARITIES))
def test_neuron_firing_on_one_concept_ranks_it_first(name):
    U, P, _ = _concept_probe()
    fn = SIMILARITIES[name]
    idx, _ = top_concepts(fn(U, P), 1)
    assert idx[:, 0].tolist() == list(range(U.shape[1]))
    for c in range(U.shape[1]):  # also one neuron at a time
        idx, _ = top_concepts(fn(U[:, [c]], P), 1)
        assert int(idx[0, 0]) == c, (name, c)


def test_single_neuron_soft_wpmi_is_not_degenerate():
    U, P, _ = _concept_probe(n_concepts=4, per_concept=100)
    u = U[:, [2]]
    s = soft_wpmi(u, P)
    assert s.shape == (1, 4)
    assert float(s.std()) > 1.0  # not constant across concepts
    assert int(s.argmax()) == 2
    # The official per-neuron normaliser: identically 0 (the AND bug), available only on request.
    assert torch.count_nonzero(soft_wpmi(u, P, normaliser="neurons")) == 0
    # ... and wpmi collapses to (1 - lam) * L, which is why its ranking survived.
    w_official = wpmi(u, P, normaliser="neurons")
    w_prior = wpmi(u, P, normaliser="prior", lam=0.0)
    torch.testing.assert_close(w_official, 0.4 * w_prior)


def test_single_neuron_rows_equal_layer_rows_with_the_same_normaliser():
    U, P = _random(250, 6, 7, seed=9)
    for fn in (wpmi, soft_wpmi):
        layer = fn(U, P)
        layer_prior = fn(U, P, normaliser="prior")
        for j in range(U.shape[1]):
            torch.testing.assert_close(fn(U[:, [j]], P, reference=U)[0], layer[j])
            torch.testing.assert_close(fn(U[:, [j]], P)[0], layer_prior[j])  # auto -> prior
        # a subset with the layer as reference equals the layer's rows
        torch.testing.assert_close(fn(U[:, 1:4], P, reference=U), layer[1:4])
    with pytest.raises(ValueError, match="normaliser"):
        wpmi(U, P, normaliser="bogus")


def test_top_concepts_ties_go_to_lower_index():
    sim = torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    idx, scores = top_concepts(sim, 3)
    assert idx.tolist() == [[1, 2, 4], [0, 1, 2]]
    assert scores.tolist() == [[3.0, 3.0, 3.0], [0.0, 0.0, 0.0]]
    idx, _ = top_concepts(torch.tensor([[float("nan"), 1.0, -5.0]]), 3)
    assert idx.tolist() == [[1, 2, 0]]  # NaN last
    idx, scores = top_concepts(sim, 99)  # k clamped to C
    assert idx.shape == (2, 5) and scores.shape == (2, 5)


def test_rank_reorder_non_positive_mean_concept_is_no_candidate():
    import math

    import torch

    from dissect.description.concepts import label_neurons
    from dissect.description.similarity import rank_reorder

    u = torch.arange(40, dtype=torch.float64)[:, None]  # one neuron; its top 2 clips: 39, 38
    P = torch.stack([u[:, 0] - 100.0,  # ranked like the activations but negative on the top
                     ((u[:, 0] + 1) % 2) * 0.5 + 0.1,  # positive, reversed on the top 2
                     u[:, 0] / 40.0], dim=1)  # positive, perfect reordering
    s = rank_reorder(u, P)[0]
    assert s[0] == -math.inf  # before: 0, the best value, although its mean P is negative
    assert math.isfinite(s[1]) and math.isfinite(s[2]) and s[2] >= s[1]
    labels = label_neurons(u, P, ["neg", "odd", "ramp"], "rank_reorder", k=3)[0]
    assert [c for c, _ in labels] == ["ramp", "odd"]  # the -inf concept is left out


def test_db_with_wpmi_is_two_softmaxes_as_documented():
    import torch

    from dissect.description import concepts
    from dissect.description.concepts import db_matrix
    from dissect.description.similarity import wpmi

    g = torch.Generator().manual_seed(0)
    cap, con = torch.randn(30, 8, generator=g), torch.randn(4, 8, generator=g)
    U = torch.randn(30, 3, generator=g, dtype=torch.float64)
    cos = torch.nn.functional.normalize(cap, dim=1) @ torch.nn.functional.normalize(con, dim=1).T
    P = torch.softmax(100 * cos, dim=1)  # the first softmax
    torch.testing.assert_close(db_matrix(cap, con), P)
    Q = torch.softmax(2 * P.double(), dim=1)  # the second one, inside wpmi (a = 2)
    k = 28
    top = torch.topk(U, k, dim=0).indices  # [k, n]
    L = torch.stack([torch.log(Q[top[:, i]] + 1e-7).sum(0) for i in range(3)])  # [n, C]
    ref = L - 0.6 * (torch.logsumexp(L, dim=0, keepdim=True) - torch.log(torch.tensor(3.0)))
    torch.testing.assert_close(wpmi(U, db_matrix(cap, con)), ref.to(torch.float64),
                               rtol=1e-5, atol=1e-5)
    assert "two softmaxes" in concepts.__doc__ and "softmax_c(a * P)" in concepts.__doc__
