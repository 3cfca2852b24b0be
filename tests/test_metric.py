"""Metric-learning losses against pytorch-metric-learning (PML) and float64 loops from the papers.

PML is the independent reference where it ships the same loss; reducers are pinned
(``DoNothingReducer`` for per-element losses, ``MeanReducer`` for triplets) so that its
averaging conventions do not hide differences. Other losses are checked against explicit
Python loops over rows written from the papers' formulas.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import distances, losses, miners, reducers

import lossreg
from lossreg.plugins.metric import NOT_REGISTERED

PER_SAMPLE = ["multi_similarity", "circle", "supcon", "info_nce", "cosface", "arcface",
              "sphereface", "normalized_softmax", "proxy_nca", "center", "soft_triple",
              "proto_triplet", "clip_info_nce", "sogclr", "isogclr",
              "triplet_alignment", "amcl_info_nce", "palm"]  # fmt: skip
BATCH = ["triplet", "contrastive", "proxy_anchor", "align_uniform", "barlow_twins", "npair",
         "lifted_structure", "angular", "tcm", "icnn"]  # fmt: skip
TWO_VIEW = {"info_nce", "nt_xent", "align_uniform", "barlow_twins", "clip_info_nce", "sogclr",
            "isogclr", "amcl_info_nce"}  # fmt: skip
STATEFUL = {"sogclr", "isogclr"}
LEARNED = {"cosface", "arcface", "sphereface", "normalized_softmax", "proxy_nca",
           "proxy_anchor", "center", "soft_triple"}  # fmt: skip
N_CLASSES, DIM = 4, 8


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread avoids thread overhead on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(24, DIM, generator=gen, dtype=torch.float64)
    y = torch.arange(24) % N_CLASSES
    w = torch.rand(24, generator=gen, dtype=torch.float64)
    return x, y, w


def make(name: str, **params):
    if name in LEARNED or name == "palm":
        params = {"n_classes": N_CLASSES, "embedding_dim": DIM, **params}
    if name in STATEFUL:
        params = {"n_samples": 40, **params}
    if name == "amcl_info_nce":
        params = {"embedding_dim": DIM, "num_heads": 2, **params}
    return lossreg.create_loss(name, **params)


def call(name, loss, x, y, **kw):
    if name in STATEFUL:
        kw = {"sample_index": torch.arange(x.shape[0] // 2) + 5, **kw}
    if name in TWO_VIEW:
        return loss(x, y[: x.shape[0] // 2], **kw)
    return loss(x, y, **kw)


def pml_elements(loss, x, y):
    """Per-element losses of a PML loss built with DoNothingReducer."""
    return loss(x, y)["loss"]["losses"].reshape(-1)


def copy_weight(ours, pml, attr="W", transpose=True):
    with torch.no_grad():
        w = ours.weight if hasattr(ours, "weight") else ours.proxies
        getattr(pml, attr).data = (w.T if transpose else w).detach().clone().double()


# --- triplet -------------------------------------------------------------------------------

_PML_DISTANCE = {
    "squared_euclidean": lambda: distances.LpDistance(power=2),
    "euclidean": lambda: distances.LpDistance(power=1),
    "cosine": lambda: distances.CosineSimilarity(),
}


@pytest.mark.reference("triplet")
@pytest.mark.parametrize("distance", ["squared_euclidean", "euclidean", "cosine"])
@pytest.mark.parametrize("miner", ["all", "semi_hard", "hard"])
def test_triplet_matches_pml(batch, distance, miner):
    x, y, _ = batch
    margin = 0.3
    dist = _PML_DISTANCE[distance]()
    pml_loss = losses.TripletMarginLoss(
        margin=margin, distance=dist, reducer=reducers.MeanReducer()
    )
    if miner == "all":
        indices = None
    elif miner == "semi_hard":
        indices = miners.TripletMarginMiner(margin, "semihard", distance=dist)(x, y)
        assert len(indices[0]) > 0
    else:
        indices = miners.BatchHardMiner(distance=dist)(x, y)
    ref = pml_loss(x, y, indices)
    ours = make("triplet", margin=margin, miner=miner, distance=distance)(x, y)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)


def test_triplet_sample_weight_weights_each_triplet_by_its_anchor(batch):
    x, y, w = batch
    loss = make("triplet", miner="hard", margin=1.0)
    dist = torch.cdist(F.normalize(x, dim=1), F.normalize(x, dim=1)).square()
    num = den = 0.0
    for a in range(len(y)):
        pos = [dist[a, j].item() for j in range(len(y)) if j != a and y[j] == y[a]]
        neg = [dist[a, j].item() for j in range(len(y)) if y[j] != y[a]]
        num += w[a].item() * max(max(pos) - min(neg) + 1.0, 0.0)
        den += w[a].item()
    assert loss(x, y, sample_weight=w).item() == pytest.approx(num / den, rel=1e-9)
    assert loss(x, y, sample_weight=torch.ones(24)).item() == pytest.approx(loss(x, y).item())


def test_triplet_without_triplets_is_a_connected_zero():
    x = torch.randn(3, 4, requires_grad=True)
    value = make("triplet")(x, torch.tensor([0, 1, 2]))
    value.backward()
    assert value.item() == 0.0 and torch.equal(x.grad, torch.zeros(3, 4))


# --- contrastive ---------------------------------------------------------------------------


@pytest.mark.reference("contrastive")
@pytest.mark.parametrize(("neg_margin", "pos_margin"), [(1.0, 0.0), (4.0, 0.5)])
def test_contrastive_matches_hadsell_loop(batch, neg_margin, pos_margin):
    x, y, _ = batch
    xs = x.numpy()
    terms = []
    for i in range(len(xs)):
        for j in range(len(xs)):
            if i == j:
                continue
            d = math.sqrt(sum((a - b) ** 2 for a, b in zip(xs[i], xs[j], strict=True)))
            if y[i] == y[j]:
                terms.append(0.5 * max(d - pos_margin, 0.0) ** 2)
            else:
                terms.append(0.5 * max(neg_margin - d, 0.0) ** 2)
    loss = make("contrastive", neg_margin=neg_margin, pos_margin=pos_margin)
    assert loss(x, y).item() == pytest.approx(np.mean(terms), rel=1e-10)
    assert make("contrastive", reduction="sum", neg_margin=neg_margin, pos_margin=pos_margin)(
        x, y
    ).item() == pytest.approx(np.sum(terms), rel=1e-10)


def test_contrastive_positive_term_is_half_squared_pml_lp2_distance(batch):
    # With one class only, every pair is positive: PML's positive hinge on the squared
    # distance (power=2) gives d^2, ours 1/2 d^2 (Hadsell's factor).
    x, _, _ = batch
    y = torch.zeros(24, dtype=torch.long)
    pml = losses.ContrastiveLoss(
        pos_margin=0,
        distance=distances.LpDistance(power=2, normalize_embeddings=False),
        reducer=reducers.MeanReducer(),
    )
    ours = make("contrastive")(x, y)
    torch.testing.assert_close(ours, 0.5 * pml(x, y), rtol=1e-10, atol=0)


# --- multi-similarity, circle --------------------------------------------------------------


def _ms_loop(x, y, alpha, beta, base, eps):
    s = F.normalize(x, dim=1) @ F.normalize(x, dim=1).T
    out = []
    for i in range(len(y)):
        pos = [s[i, j].item() for j in range(len(y)) if j != i and y[j] == y[i]]
        neg = [s[i, j].item() for j in range(len(y)) if y[j] != y[i]]
        kept_neg = [v for v in neg if v + eps > min(pos)]
        kept_pos = [v for v in pos if v - eps < max(neg)]
        if not kept_neg or not kept_pos:
            out.append(0.0)
            continue
        p = math.log(1 + sum(math.exp(-alpha * (v - base)) for v in kept_pos)) / alpha
        n = math.log(1 + sum(math.exp(beta * (v - base)) for v in kept_neg)) / beta
        out.append(p + n)
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.reference("multi_similarity")
def test_multi_similarity_matches_official_loop(batch):
    x, y, _ = batch
    x = x.clone()
    x[y == 0] = 0.05 * x[y == 0] + 5 * torch.eye(DIM, dtype=x.dtype)[0]  # a tight, far class
    ours = make("multi_similarity", reduction="none")(x, y)
    ref = _ms_loop(x, y, 2.0, 50.0, 1.0, 0.1)
    assert (ref == 0).any() and (ref > 0).any()  # both branches are exercised
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)


@pytest.mark.reference("multi_similarity")
@pytest.mark.parametrize("base", [0.5, 1.0])
def test_multi_similarity_matches_pml(batch, base):
    x, y, _ = batch
    pml = losses.MultiSimilarityLoss(
        alpha=2, beta=50, base=base, reducer=reducers.DoNothingReducer()
    )
    # Without mining, every anchor has positives and negatives: exact per-anchor equality.
    ours = make("multi_similarity", base=base, epsilon=None, reduction="none")(x, y)
    torch.testing.assert_close(ours, pml_elements(pml, x, y), rtol=1e-9, atol=1e-12)
    # With the miner, equal on every anchor that mined both a positive and a negative.
    a1, p, a2, n = miners.MultiSimilarityMiner(epsilon=0.1)(x, y)
    both = torch.zeros(24, dtype=torch.bool)
    both[np.intersect1d(a1.numpy(), a2.numpy())] = True
    ref = pml(x, y, (a1, p, a2, n))["loss"]["losses"].reshape(-1)
    ours = make("multi_similarity", base=base, reduction="none")(x, y)
    torch.testing.assert_close(ours[both], ref[both], rtol=1e-9, atol=1e-12)
    assert (ours[~both] == 0).all()


@pytest.mark.reference("circle")
@pytest.mark.parametrize(("m", "gamma"), [(0.25, 256.0), (0.4, 80.0)])
def test_circle_matches_pml(batch, m, gamma):
    x, y, _ = batch
    pml = losses.CircleLoss(m=m, gamma=gamma, reducer=reducers.DoNothingReducer())
    ours = make("circle", m=m, gamma=gamma, reduction="none")(x, y)
    torch.testing.assert_close(ours, pml_elements(pml, x, y), rtol=1e-9, atol=1e-10)


def test_circle_anchor_without_positive_is_zero(batch):
    x, y, _ = batch
    y = y.clone()
    y[0] = 9  # a singleton class
    assert make("circle", reduction="none")(x, y)[0].item() == 0.0


# --- supcon, info_nce ----------------------------------------------------------------------


@pytest.mark.reference("supcon")
@pytest.mark.parametrize("temperature", [0.07, 0.5])
def test_supcon_matches_pml(batch, temperature):
    x, y, _ = batch
    pml = losses.SupConLoss(temperature=temperature, reducer=reducers.DoNothingReducer())
    ours = make("supcon", temperature=temperature, reduction="none")(x, y)
    torch.testing.assert_close(ours, pml_elements(pml, x, y), rtol=1e-9, atol=1e-10)


@pytest.mark.reference("supcon")
def test_supcon_two_views_average_the_pml_anchors(batch):
    x, y, _ = batch
    y = y[:12]
    pml = losses.SupConLoss(temperature=0.1, reducer=reducers.DoNothingReducer())
    ref = pml_elements(pml, x, torch.cat([y, y])).reshape(2, 12).mean(dim=0)
    torch.testing.assert_close(make("supcon", reduction="none")(x, y), ref, rtol=1e-9, atol=0)


def test_supcon_anchor_without_positive_counts_as_zero(batch):
    x, y, _ = batch
    y = y.clone()
    y[3] = 7
    per_row = make("supcon", reduction="none")(x, y)
    assert per_row[3].item() == 0.0
    assert make("supcon")(x, y).item() == pytest.approx(per_row.sum().item() / 24)


@pytest.mark.reference("info_nce", "nt_xent")
@pytest.mark.parametrize("temperature", [0.07, 0.5])
def test_info_nce_matches_pml_ntxent(batch, temperature):
    x, _, _ = batch
    n = 12
    pml = losses.NTXentLoss(temperature=temperature, reducer=reducers.DoNothingReducer())
    out = pml(x, torch.cat([torch.arange(n), torch.arange(n)]))["loss"]
    anchors = out["indices"][0]
    per_anchor = torch.zeros(2 * n, dtype=x.dtype).index_add(0, anchors, out["losses"])
    ref = per_anchor.reshape(2, n).mean(dim=0)
    for name in ("info_nce", "nt_xent"):
        ours = make(name, temperature=temperature, reduction="none")(x, None)
        torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-10)


def test_info_nce_rejects_mismatched_targets(batch):
    x, y, _ = batch
    with pytest.raises(ValueError, match="two views"):
        make("info_nce")(x, y)


# --- margin softmax ------------------------------------------------------------------------


@pytest.mark.reference("cosface")
def test_cosface_matches_pml(batch):
    x, y, _ = batch
    ours = make("cosface", scale=16.0, margin=0.35, reduction="none")
    pml = losses.CosFaceLoss(
        N_CLASSES, DIM, margin=0.35, scale=16, reducer=reducers.DoNothingReducer()
    )
    copy_weight(ours, pml)
    torch.testing.assert_close(ours(x, y), pml_elements(pml, x, y), rtol=1e-9, atol=1e-10)


@pytest.mark.reference("arcface")
@pytest.mark.parametrize("margin", [0.5, 1.2])
def test_arcface_matches_pml_with_margin_in_degrees(batch, margin):
    x, y, _ = batch
    ours = make("arcface", scale=16.0, margin=margin, reduction="none")
    pml = losses.ArcFaceLoss(
        N_CLASSES, DIM, margin=math.degrees(margin), scale=16, reducer=reducers.DoNothingReducer()
    )
    copy_weight(ours, pml)
    torch.testing.assert_close(ours(x, y), pml_elements(pml, x, y), rtol=1e-7, atol=1e-7)


@pytest.mark.reference("sphereface")
@pytest.mark.parametrize("margin", [2, 4])
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inside PML
def test_sphereface_matches_pml(batch, margin):
    x, y, _ = batch
    ours = make("sphereface", margin=margin, reduction="none")
    pml = losses.SphereFaceLoss(N_CLASSES, DIM, margin=margin, reducer=reducers.DoNothingReducer())
    copy_weight(ours, pml)
    torch.testing.assert_close(ours(x, y), pml_elements(pml, x, y), rtol=1e-7, atol=1e-7)


@pytest.mark.reference("normalized_softmax")
def test_normalized_softmax_matches_pml(batch):
    x, y, _ = batch
    ours = make("normalized_softmax", reduction="none")
    pml = losses.NormalizedSoftmaxLoss(N_CLASSES, DIM, reducer=reducers.DoNothingReducer())
    copy_weight(ours, pml)
    torch.testing.assert_close(ours(x, y), pml_elements(pml, x, y), rtol=1e-9, atol=1e-10)


def test_margin_losses_reduce_to_normalized_softmax_without_margin(batch):
    x, y, _ = batch
    base = make("normalized_softmax", temperature=0.1, reduction="none")
    for name, params in [("cosface", {"margin": 0.0}), ("arcface", {"margin": 0.0})]:
        loss = make(name, scale=10.0, reduction="none", **params)
        loss.weight.data.copy_(base.weight.data)
        torch.testing.assert_close(loss(x, y), base(x, y), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(loss.logits(x), base.logits(x))


# --- proxies, centre -----------------------------------------------------------------------


@pytest.mark.reference("proxy_nca")
def test_proxy_nca_matches_paper_loop(batch):
    x, y, _ = batch
    loss = make("proxy_nca", softmax_scale=3.0, reduction="none")
    f = F.normalize(x, dim=1).numpy()
    p = F.normalize(loss.weight.detach().double(), dim=1).numpy()
    ref = []
    for i in range(len(y)):
        d = [sum((f[i, k] - p[c, k]) ** 2 for k in range(DIM)) for c in range(N_CLASSES)]
        others = sum(math.exp(-3.0 * d[c]) for c in range(N_CLASSES) if c != y[i])
        ref.append(-math.log(math.exp(-3.0 * d[y[i]]) / others))
    torch.testing.assert_close(loss(x, y), torch.tensor(ref, dtype=x.dtype), rtol=1e-9, atol=1e-10)


@pytest.mark.reference("proxy_anchor")
@pytest.mark.parametrize("missing_class", [False, True])
def test_proxy_anchor_matches_pml(batch, missing_class):
    x, y, _ = batch
    if missing_class:
        y = torch.where(y == 3, torch.zeros_like(y), y)  # proxy 3 has no positive in the batch
    ours = make("proxy_anchor", alpha=16.0)
    pml = losses.ProxyAnchorLoss(N_CLASSES, DIM, margin=0.1, alpha=16)
    copy_weight(ours, pml, attr="proxies", transpose=False)
    torch.testing.assert_close(ours(x, y), pml(x, y), rtol=1e-9, atol=1e-10)


def test_proxy_anchor_rejects_sample_weight_and_reduction_none(batch):
    x, y, w = batch
    with pytest.raises(ValueError, match="sample_weight"):
        make("proxy_anchor")(x, y, sample_weight=w)
    with pytest.raises(ValueError, match="batch-level"):
        make("proxy_anchor", reduction="none")


@pytest.mark.reference("center")
def test_center_matches_paper_loop(batch):
    x, y, _ = batch
    loss = make("center", center_weight=0.1, reduction="none")
    W, b = loss.weight.detach().double().numpy(), loss.bias.detach().double().numpy()
    c = loss.centers.detach().double().numpy()
    xs = x.numpy()
    ref = []
    for i in range(len(y)):
        z = [sum(W[k, j] * xs[i, j] for j in range(DIM)) + b[k] for k in range(N_CLASSES)]
        ce = math.log(sum(math.exp(v) for v in z)) - z[y[i]]
        ref.append(ce + 0.05 * sum((xs[i, j] - c[y[i], j]) ** 2 for j in range(DIM)))
    torch.testing.assert_close(loss(x, y), torch.tensor(ref, dtype=x.dtype), rtol=1e-9, atol=1e-10)


def test_center_rule_update_moves_centres_as_the_paper(batch):
    x, y, _ = batch
    loss = make("center", update="rule", alpha=0.5)
    assert not any(p is loss.centers for p in loss.parameters())
    before = loss.centers.clone().double()
    loss(x.float(), y)
    for j in range(N_CLASSES):
        rows = x[y == j]
        delta = (before[j] - rows).sum(dim=0) / (1 + len(rows))
        torch.testing.assert_close(
            loss.centers[j].double(), before[j] - 0.5 * delta, rtol=1e-5, atol=1e-6
        )
    with torch.no_grad():
        frozen = loss.centers.clone()
        loss(x.float(), y)
    assert torch.equal(loss.centers, frozen)


# --- self-supervised -----------------------------------------------------------------------


@pytest.mark.reference("align_uniform")
def test_align_uniform_matches_loop(batch):
    x, _, _ = batch
    a = F.normalize(x[:12], dim=1).numpy()
    b = F.normalize(x[12:], dim=1).numpy()

    def uniform(v):
        kernel = [
            math.exp(-2.0 * sum((v[i, k] - v[j, k]) ** 2 for k in range(DIM)))
            for i in range(len(v))
            for j in range(i + 1, len(v))
        ]
        return math.log(sum(kernel) / len(kernel))

    align = np.mean([sum((a[i, k] - b[i, k]) ** 2 for k in range(DIM)) for i in range(12)])
    ref = align + 0.5 * (uniform(a) + uniform(b)) / 2
    ours = make("align_uniform", uniform_weight=0.5)(x, None)
    assert ours.item() == pytest.approx(ref, rel=1e-10)


@pytest.mark.reference("barlow_twins")
def test_barlow_twins_matches_loop_and_batchnorm(batch):
    x, _, _ = batch
    a, b = x[:12].numpy(), x[12:].numpy()
    n, lam = 12, 0.01

    def standardise(z):
        out = np.empty_like(z)
        for k in range(z.shape[1]):
            col = z[:, k]
            mu = sum(col) / n
            var = sum((v - mu) ** 2 for v in col) / n
            out[:, k] = (col - mu) / math.sqrt(var + 1e-5)
        return out

    za, zb = standardise(a), standardise(b)
    ref = 0.0
    for k in range(DIM):
        for l in range(DIM):  # noqa: E741
            c = sum(za[i, k] * zb[i, l] for i in range(n)) / n
            ref += (1 - c) ** 2 if k == l else lam * c**2
    ours = make("barlow_twins", lambda_offdiag=lam)(x, None)
    assert ours.item() == pytest.approx(ref, rel=1e-10)
    bn = torch.nn.BatchNorm1d(DIM, affine=False).double()  # the official code's standardiser
    c = bn(x[:12]).T @ bn(x[12:]) / n
    official = (torch.diagonal(c) - 1).square().sum() + lam * (
        c.square().sum() - torch.diagonal(c).square().sum()
    )
    torch.testing.assert_close(ours, official, rtol=1e-10, atol=1e-12)


# --- properties shared by the family -------------------------------------------------------


@pytest.mark.parametrize("name", PER_SAMPLE)
def test_per_sample_reductions_and_weights(batch, name):
    x, y, w = batch
    torch.manual_seed(0)
    loss = make(name, reduction="none")
    loss.eval()  # stateful losses: no state update between the calls compared here
    n_rows = 12 if name in TWO_VIEW else 24
    per_row = call(name, loss, x, y)
    assert per_row.shape == (n_rows,)
    w = w[:n_rows]
    loss.reduction = "mean"
    weighted = call(name, loss, x, y, sample_weight=w)
    assert weighted.item() == pytest.approx((per_row * w).sum().item() / w.sum().item(), rel=1e-9)
    loss.reduction = "sum"
    assert call(name, loss, x, y).item() == pytest.approx(per_row.sum().item(), rel=1e-9)


@pytest.mark.parametrize("name", BATCH)
def test_batch_level_losses_refuse_reduction_none(name):
    with pytest.raises(lossreg.InvalidReductionError, match="batch-level"):
        lossreg.get_spec(name).factory(**_data_params(name), reduction="none")


def _data_params(name):
    values = {"n_classes": N_CLASSES, "embedding_dim": DIM, "n_samples": 40}
    return {k: values[k] for k in lossreg.get_spec(name).data_params}


def test_class_logits_link_needs_the_fitted_criterion(batch):
    x, _, _ = batch
    link = lossreg.get_spec("arcface").link
    assert link.kind == "proba"
    with pytest.raises(ValueError, match="fitted loss module"):
        link(x, None)


@pytest.mark.parametrize("name", PER_SAMPLE + BATCH)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_preserved_and_gradients_finite_at_extreme_inputs(batch, name, dtype):
    x, y, _ = batch
    torch.manual_seed(0)
    loss = make(name)
    for scale in (1.0, 1e3):
        inp = (x * scale).to(dtype).requires_grad_(True)
        value = call(name, loss, inp, y)
        assert value.dtype == dtype and value.ndim == 0 and torch.isfinite(value)
        value.backward()
        assert torch.isfinite(inp.grad).all()
        for p in loss.parameters():
            assert p.grad is None or torch.isfinite(p.grad).all()


@pytest.mark.parametrize("name", sorted(LEARNED))
def test_learned_class_vectors_get_gradients_and_give_logits(batch, name):
    x, y, _ = batch
    loss = make(name)
    call(name, loss, x, y).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in loss.parameters())
    assert lossreg.get_spec(name).learnable
    assert loss.logits(x).shape == (24, N_CLASSES)
    spec = lossreg.get_spec(name)
    assert spec.learnable and set(spec.data_params) == {"n_classes", "embedding_dim"}
    proba = spec.link(x, loss)
    torch.testing.assert_close(proba.sum(dim=1), torch.ones(24, dtype=x.dtype))


def test_wrong_embedding_width_is_a_clear_error(batch):
    x, y, _ = batch
    with pytest.raises(ValueError, match="embedding_dim=8"):
        make("arcface")(x[:, :5], y)


def test_specs_are_consistent_with_the_family():
    registry = lossreg.Registry(entry_points=False)
    for name in PER_SAMPLE + BATCH:
        spec = registry.get_spec(name)
        assert "embedding" in spec.tasks
        assert spec.per_sample == (name in PER_SAMPLE)
        assert (name in LEARNED or name in ("clip_info_nce", "amcl_info_nce")) == spec.learnable
        assert (name in STATEFUL) == ("sample_index" in spec.fit_extras)
    assert not set(NOT_REGISTERED) & set(registry.list_losses())


def test_permutation_of_rows_permutes_per_anchor_losses(batch):
    x, y, _ = batch
    perm = torch.randperm(24, generator=torch.Generator().manual_seed(1))
    for name in ("multi_similarity", "circle", "supcon"):
        loss = make(name, reduction="none")
        torch.testing.assert_close(loss(x[perm], y[perm]), loss(x, y)[perm])


# --- N-pair, lifted structure, angular -----------------------------------------------------


@pytest.mark.reference("npair", "n_pairs")
def test_npair_matches_pml_plus_tf_style_penalty(batch):
    x, y, _ = batch
    # PML normalises by default; the paper's N-pair loss uses raw dot products.
    unnormalised = distances.DotProductSimilarity(normalize_embeddings=False)
    pml = losses.NPairsLoss(distance=unnormalised, reducer=reducers.MeanReducer())
    anchors, positives = [], []
    for c in range(N_CLASSES):
        rows = [i for i in range(24) if y[i] == c]
        anchors.append(rows[0])
        positives.append(rows[1])
    a, p = x[anchors], x[positives]
    penalty = 0.25 * 0.01 * (a.square().sum(1).mean() + p.square().sum(1).mean())
    for name in ("npair", "n_pairs"):
        ours = make(name, l2_reg=0.01)(x, y)
        torch.testing.assert_close(ours, pml(x, y) + penalty, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(make("npair", l2_reg=0.0)(x, y), pml(x, y), rtol=1e-10, atol=0)


@pytest.mark.reference("lifted_structure")
@pytest.mark.parametrize("margin", [0.5, 1.0])
def test_lifted_structure_matches_pml(batch, margin):
    x, y, _ = batch
    pml = losses.LiftedStructureLoss(
        neg_margin=margin, pos_margin=0, reducer=reducers.MeanReducer()
    )
    ours = make("lifted_structure", margin=margin)(x, y)
    torch.testing.assert_close(ours, pml(x, y), rtol=1e-10, atol=1e-12)


@pytest.mark.reference("lifted_structure")
def test_lifted_structure_matches_paper_loop(batch):
    x, y, _ = batch
    f = F.normalize(x, dim=1).numpy()
    d = np.sqrt(((f[:, None, :] - f[None, :, :]) ** 2).sum(-1))
    total, n_pairs = 0.0, 0
    for i in range(24):
        for j in range(i + 1, 24):
            if y[i] != y[j]:
                continue
            neg = [math.exp(1.0 - d[i, k]) for k in range(24) if y[k] != y[i]]
            neg += [math.exp(1.0 - d[j, k]) for k in range(24) if y[k] != y[j]]
            total += max(math.log(sum(neg)) + d[i, j], 0.0) ** 2
            n_pairs += 1
    ref = total / (2 * n_pairs)
    assert make("lifted_structure")(x, y).item() == pytest.approx(ref, rel=1e-9)


@pytest.mark.reference("angular")
@pytest.mark.parametrize("alpha", [36.0, 45.0])
def test_angular_matches_pml(batch, alpha):
    x, y, _ = batch
    pml = losses.AngularLoss(alpha=alpha, reducer=reducers.MeanReducer())
    # PML normalises anchors and positives but not the negatives; the paper normalises all,
    # so PML gets unit embeddings.
    ref = pml(F.normalize(x, dim=1), y)
    torch.testing.assert_close(make("angular", alpha=alpha)(x, y), ref, rtol=1e-9, atol=0)


# --- SoftTriple, TCM, prototype triplet, CLIP ------------------------------------------------


@pytest.mark.reference("soft_triple")
def test_soft_triple_matches_pml_plus_official_regulariser(batch):
    x, y, _ = batch
    ours = make("soft_triple", centers_per_class=3, reduction="none")
    pml = losses.SoftTripleLoss(
        N_CLASSES, DIM, centers_per_class=3, reducer=reducers.DoNothingReducer()
    )
    pml.fc.data = ours.centers.detach().T.clone().double()
    w = F.normalize(ours.centers.detach().double(), dim=1).numpy()
    reg = 0.0
    for c in range(N_CLASSES):
        for t in range(3):
            for s in range(t + 1, 3):
                reg += math.sqrt(2.0 + 1e-5 - 2.0 * float(w[3 * c + t] @ w[3 * c + s]))
    reg /= N_CLASSES * 3 * 2
    torch.testing.assert_close(
        ours(x, y), pml_elements(pml, x, y) + 0.2 * reg, rtol=1e-9, atol=1e-10
    )


@pytest.mark.reference("tcm")
def test_tcm_matches_pml_and_adds_its_base(batch):
    x, y, _ = batch
    pml = losses.ThresholdConsistentMarginLoss()
    torch.testing.assert_close(make("tcm")(x, y), pml(x, y), rtol=1e-10, atol=1e-12)
    composite = make("tcm", base="multi_similarity")(x, y)
    base = make("multi_similarity")(x, y)
    torch.testing.assert_close(composite, base + pml(x, y), rtol=1e-10, atol=1e-12)


@pytest.mark.reference("proto_triplet")
def test_proto_triplet_matches_loop(batch):
    x, y, _ = batch
    xs = x.numpy()
    protos = {c: xs[[i for i in range(24) if y[i] == c]].mean(axis=0) for c in range(N_CLASSES)}

    def dist(u, v):
        return math.sqrt(sum((a - b) ** 2 for a, b in zip(u, v, strict=True)) + 1e-6)

    ref = []
    for i in range(24):
        own = dist(xs[i], protos[int(y[i])])
        other = min(dist(xs[i], protos[c]) for c in protos if c != y[i])
        ref.append(max(own - other + 0.5, 0.0))
    ours = make("proto_triplet", reduction="none")(x, y)
    torch.testing.assert_close(ours, torch.tensor(ref, dtype=x.dtype), rtol=1e-9, atol=1e-12)


@pytest.mark.reference("clip_info_nce")
def test_clip_info_nce_matches_openclip_form(batch):
    x, _, _ = batch
    loss = make("clip_info_nce", temperature=0.2)
    u, v = F.normalize(x[:12], dim=1), F.normalize(x[12:], dim=1)
    logits = u @ v.T / 0.2
    labels = torch.arange(12)
    ref = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    torch.testing.assert_close(loss(x, None), ref, rtol=1e-6, atol=1e-7)


def test_clip_info_nce_clamps_the_logit_scale_in_place(batch):
    x, _, _ = batch
    loss = make("clip_info_nce")
    with torch.no_grad():
        loss.logit_scale.fill_(10.0)
    loss(x, None)
    assert loss.logit_scale.item() == pytest.approx(math.log(100.0))
    fixed = make("clip_info_nce", learn_temperature=False)
    assert not list(fixed.parameters())


# --- SogCLR / iSogCLR ----------------------------------------------------------------------


class _GclLoop:
    """LibAUC GCLoss_v1's algorithm as float64 loops in linear space (u initialised per row)."""

    def __init__(self, n, tau, gamma, iso=False, rho=0.3, eta=0.01, beta=0.9, lo=0.05, hi=0.7):
        self.u, self.tau, self.m = [0.0] * n, [tau] * n, [0.0] * n
        self.gamma, self.iso, self.rho, self.eta, self.beta, self.lo, self.hi = (
            gamma, iso, rho, eta, beta, lo, hi
        )  # fmt: skip

    def step(self, h1, h2, index):
        b = len(index)
        out, us, gs = [0.0] * b, [[], []], [[], []]
        for d, (p, q) in enumerate([(h1, h2), (h2, h1)]):
            for i in range(b):
                t = self.tau[index[i]]
                negs = [float(p[i] @ q[j]) for j in range(b) if j != i]
                negs += [float(p[i] @ p[j]) for j in range(b) if j != i]
                mean = sum(math.exp(v / t) for v in negs) / (2 * (b - 1))
                old = self.u[index[i]]
                u = mean if old == 0 else (1 - self.gamma) * old + self.gamma * mean
                w = [math.exp(v / t) / u for v in negs]
                out[i] += -float(p[i] @ q[i]) + sum(wi * v for wi, v in zip(w, negs)) / (
                    2 * (b - 1)
                )
                us[d].append(u)
                gs[d].append(
                    math.log(u)
                    + self.rho
                    - sum(wi * v / t for wi, v in zip(w, negs)) / (2 * (b - 1))
                )
        for i, k in enumerate(index):
            self.u[k] = (us[0][i] + us[1][i]) / 2
            if self.iso:
                self.m[k] = (1 - self.beta) * self.m[k] + self.beta * (gs[0][i] + gs[1][i]) / 2
                self.tau[k] = min(max(self.tau[k] - self.eta * self.m[k], self.lo), self.hi)
        return out


@pytest.mark.reference("sogclr", "isogclr")
@pytest.mark.parametrize("name", ["sogclr", "isogclr"])
def test_global_contrastive_matches_libauc_algorithm_over_steps(batch, name):
    x, _, _ = batch
    loss = make(name, reduction="none", n_samples=20)
    ref = _GclLoop(20, 0.1, 0.9, iso=name == "isogclr")
    gen = torch.Generator().manual_seed(3)
    for step, index in enumerate([[0, 1, 2, 3, 4, 5], [3, 4, 5, 6, 7, 8], [0, 4, 8, 9, 10, 11]]):
        views = x[torch.randperm(24, generator=gen)[:12]]
        h1, h2 = F.normalize(views[:6], dim=1).numpy(), F.normalize(views[6:], dim=1).numpy()
        expected = ref.step(h1, h2, index)
        got = loss(views, None, sample_index=torch.tensor(index))
        # The state buffers are float32 (the default dtype): later steps agree to ~1e-8.
        torch.testing.assert_close(got, torch.tensor(expected, dtype=x.dtype), rtol=1e-6, atol=1e-7)
        assert np.allclose(loss.log_u_.exp().numpy(), ref.u, rtol=1e-5), step
        if name == "isogclr":
            assert np.allclose(loss.tau_.numpy(), ref.tau, rtol=1e-5), step


def test_global_contrastive_state_is_frozen_in_eval_and_needs_sample_index(batch):
    x, _, _ = batch
    loss = make("isogclr")
    loss.eval()
    loss(x, None, sample_index=torch.arange(12))
    assert torch.isinf(loss.log_u_).all() and (loss.tau_ == 0.1).all()
    with pytest.raises(ValueError, match="sample_index"):
        loss(x, None)


# --- triplet alignment ---------------------------------------------------------------------


def _tal_loop(scores, pid, tau, margin):
    """compute_TAL_per of the RDE reference, row by row."""
    n = len(pid)
    out = [0.0] * n
    for mat in (scores, scores.T):
        for i in range(n):
            pos = [j for j in range(n) if pid[j] == pid[i]]
            weights = [math.exp(mat[i, j] / tau) for j in pos]
            pos_term = sum(w * mat[i, j] for w, j in zip(weights, pos, strict=True)) / sum(weights)
            neg = sum(math.exp(mat[i, k] / tau) for k in range(n) if pid[k] != pid[i])
            out[i] += max(margin - pos_term + tau * math.log(neg), 0.0)
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.reference("triplet_alignment", "tal")
@pytest.mark.parametrize(("tau", "margin"), [(0.02, 0.1), (0.1, 0.5)])
def test_triplet_alignment_matches_rde_reference(batch, tau, margin):
    x, y, w = batch
    pid = y[:12] % 3  # several rows per identity
    t, i = F.normalize(x[:12], dim=1), F.normalize(x[12:], dim=1)
    ref = _tal_loop((t @ i.T).numpy(), pid.tolist(), tau, margin)
    assert (ref > 0).any()
    for name in ("triplet_alignment", "tal"):
        ours = make(name, tau=tau, margin=margin, reduction="none")(x, pid)
        torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-10)
    summed = make("tal", tau=tau, margin=margin, reduction="sum")(x, pid, sample_weight=w[:12])
    assert summed.item() == pytest.approx((ref * w[:12]).sum().item(), rel=1e-9)


# --- AMCL ----------------------------------------------------------------------------------


@pytest.mark.reference("amcl_info_nce")
@pytest.mark.parametrize("topk", [3, 100])
def test_amcl_matches_reference_loop(batch, topk):
    x, _, _ = batch
    torch.manual_seed(0)
    loss = make("amcl_info_nce", topk=topk, beta=0.05, tau_min=0.05, reduction="none")
    w1, b1 = (
        loss.phi[0].weight.detach().double().numpy(),
        loss.phi[0].bias.detach().double().numpy(),
    )
    w2, b2 = (
        loss.phi[2].weight.detach().double().numpy(),
        loss.phi[2].bias.detach().double().numpy(),
    )
    n, h, d = 12, 2, DIM // 2

    def phi(v):
        return w2 @ np.maximum(w1 @ v + b1, 0) + b2

    def tau(u, v):
        return 0.05 + (2.0 - 0.05) / (1 + math.exp(float(phi(u) @ phi(v))))

    z = x.numpy().reshape(2 * n, h, d)
    z = z / np.linalg.norm(z, axis=-1, keepdims=True)
    ref = np.zeros(n)
    for head in range(h):
        views = (z[:n, head], z[n:, head])
        for first in (0, 1):
            a_all, p_all = views[first], views[1 - first]
            for i in range(n):
                a, p = a_all[i], p_all[i]
                negs = [a_all[j] for j in range(n) if j != i] + [
                    p_all[j] for j in range(n) if j != i
                ]
                ranked = sorted(negs, key=lambda v: -float(a @ v))[: min(topk, len(negs))]
                tp = tau(a, p)
                term = -float(a @ p) / tp + np.mean([float(a @ v) / tau(a, v) for v in ranked])
                term += 0.05 * (0.5 * d * math.log(tp) + 1 / tp)
                term -= 0.05 * sum(math.log(tau(a, v)) + 1 / tau(a, v) for v in ranked)
                ref[i] += term / 2
    torch.testing.assert_close(loss(x, None), torch.tensor(ref), rtol=1e-9, atol=1e-9)


# --- PALM ----------------------------------------------------------------------------------


def _palm_loop(f, labels, protos, n_classes, m, temp, lam, eps, k):
    """jeff024/PALM's mle_loss + proto_contra (one view), with explicit loops."""
    n, n_protos = len(labels), len(protos)
    proto_label = [j % n_classes for j in range(n_protos)]

    def sinkhorn(p):
        q = [[math.exp(float(f[i] @ p[j]) / eps) for i in range(n)] for j in range(n_protos)]
        total = sum(map(sum, q))
        q = [[v / total for v in row] for row in q]
        for _ in range(3):
            q = [[v / sum(row) / n_protos for v in row] for row in q]
            cols = [sum(q[j][i] for j in range(n_protos)) for i in range(n)]
            q = [[q[j][i] / cols[i] / n for i in range(n)] for j in range(n_protos)]
        return [[q[j][i] * n for j in range(n_protos)] for i in range(n)]  # (n, K)

    def own(q):
        return [[q[i][j] if proto_label[j] == labels[i] else 0.0 for j in range(n_protos)]
                for i in range(n)]  # fmt: skip

    def topk(rows):
        out = []
        for row in rows:
            keep = sorted(range(n_protos), key=lambda j: -row[j])[:k]
            out.append([row[j] if j in keep else 0.0 for j in range(n_protos)])
        return out

    def rownorm(rows):
        return [[v / sum(r) if sum(r) > 0 else 0.0 for v in r] for r in rows]

    update = own(sinkhorn(protos))
    if k:
        update = topk(update)
    update = rownorm(update)
    colsum = [sum(update[i][j] for i in range(n)) for j in range(n_protos)]
    update = [[update[i][j] / colsum[j] if colsum[j] > 0 else 0.0 for j in range(n_protos)]
              for i in range(n)]  # fmt: skip
    moved = []
    for j in range(n_protos):
        v = m * protos[j] + (1 - m) * sum(update[i][j] * f[i] for i in range(n))
        moved.append(v / np.linalg.norm(v))
    q = own(sinkhorn(moved))
    weights = rownorm(topk([[a * (b > 0) for a, b in zip(qr, ur)] for qr, ur in zip(q, update)])
                      if k else q)  # fmt: skip
    out = []
    for i in range(n):
        logits = [float(f[i] @ moved[j]) / temp for j in range(n_protos)]
        lse = math.log(sum(math.exp(v) for v in logits))
        out.append(lse - sum(w * v for w, v in zip(weights[i], logits)))
    contrast = 0.0
    for a in range(n_protos):
        logits = [float(moved[a] @ moved[b]) / 0.5 for b in range(n_protos)]
        pos = [b for b in range(n_protos) if b != a and proto_label[b] == proto_label[a]]
        pos_term = sum(logits[b] for b in pos) / len(pos) if pos else 0.0
        neg = math.log(sum(math.exp(logits[b]) for b in range(n_protos) if b != a))
        contrast -= (pos_term - neg) / n_protos
    return np.array(out) + lam * contrast, np.array(moved)


@pytest.mark.reference("palm")
@pytest.mark.parametrize("k", [0, 2])
def test_palm_matches_official_procedure(batch, k):
    x, y, _ = batch
    torch.manual_seed(0)
    loss = make("palm", n_protos_per_class=3, proto_m=0.9, k=k, reduction="none")
    protos = loss.protos.double().numpy().copy()
    f = F.normalize(x, dim=1).numpy()
    ref, moved = _palm_loop(f, y.tolist(), protos, N_CLASSES, 0.9, 0.1, 1.0, 0.05, k)
    torch.testing.assert_close(loss(x, y), torch.tensor(ref), rtol=1e-6, atol=1e-7)
    assert np.allclose(loss.protos.numpy(), moved, atol=1e-6)


# --- gradients, including the stop-gradient terms, against PML -----------------------------


@pytest.mark.parametrize(
    ("name", "params", "pml_loss"),
    [
        ("circle", {"m": 0.4, "gamma": 80.0}, lambda: losses.CircleLoss(m=0.4, gamma=80)),
        ("supcon", {}, lambda: losses.SupConLoss(temperature=0.1)),
        (
            "multi_similarity",
            {"epsilon": None, "base": 0.5},
            lambda: losses.MultiSimilarityLoss(alpha=2, beta=50, base=0.5),
        ),
    ],
)
def test_gradients_match_pml_including_detached_weights(batch, name, params, pml_loss):
    x, y, _ = batch
    pml = pml_loss()
    pml.reducer = reducers.DoNothingReducer()
    a = x.clone().requires_grad_(True)
    b = x.clone().requires_grad_(True)
    make(name, reduction="sum", **params)(a, y).backward()
    pml_elements(pml, b, y).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-7, atol=1e-9)


# --- ICNN ----------------------------------------------------------------------------------


def _icnn_loop(x, y, k=4, ipc=None):
    """The authors' modified_score (default path), row by row; returns -log(score)."""
    n, eps = len(y), 1e-7
    k = n - 2 if k + 2 >= n else k
    ipc = k + 1 if ipc is None else ipc
    rows = []
    for i in range(n):
        d = sorted((math.sqrt(float(((x[i] - x[j]) ** 2).sum()) + 1e-6), j) for j in range(n))
        rows.append(d[1 : ipc + 1])  # the nearest is the row itself
    same = [[float(y[j] == y[i]) for _, j in rows[i]] for i in range(n)]
    nearest_diff = [
        min([v for (v, _), s in zip(rows[i], same[i]) if not s], default=math.inf) for i in range(n)
    ]
    same_means, same_rows = [], 0
    diff_vals, diff_counts = [], []
    for i in range(n):
        nd = [rows[i][c][0] / (nearest_diff[i] + eps) for c in range(k)]
        top = max(1.0, max(nd))
        nd = [v / top for v in nd]
        count = sum(same[i][:k])
        same_means.append(sum(v * s for v, s in zip(nd, same[i][:k])) / (count + eps))
        same_rows += count > 0
        diff_vals.append([rows[i][c][0] * (1 - same[i][c]) for c in range(k)])
        diff_counts.append(k - count)
    lambda_same = 1 - sum(same_means) / (same_rows + eps)
    top = max(max(r) for r in diff_vals)
    diff_means = [
        sum(v / (top + eps) for v in r) / (c + eps) for r, c in zip(diff_vals, diff_counts)
    ]
    offset = -1.0 if all(c == 0 for c in diff_counts) else 0.0
    lambda_diff = abs(sum(diff_means) / (sum(c > 0 for c in diff_counts) + eps) + offset)
    gamma = sum(sum(same[i][:k]) / k for i in range(n)) / n if k + 2 < n else 1.0
    return -math.log(((lambda_same + lambda_diff) / 2 + gamma) / 2)


@pytest.mark.reference("icnn")
@pytest.mark.parametrize(("k", "neighbors"), [(4, None), (3, 6), (30, None)])
def test_icnn_matches_authors_score(batch, k, neighbors):
    x, y, _ = batch
    ref = _icnn_loop(x.numpy(), y.tolist(), k, neighbors)
    ours = make("icnn", k=k, neighbors=neighbors)(x, y)
    assert ours.item() == pytest.approx(ref, rel=1e-9)


# --- a few optimisation steps lower each loss (gradients point the right way) ---------------


@pytest.mark.parametrize(
    "name",
    ["triplet", "multi_similarity", "supcon", "arcface", "proxy_anchor", "center", "info_nce",
     "barlow_twins"],
)  # fmt: skip
def test_short_training_lowers_the_loss(name):
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(32) % N_CLASSES
    x = torch.randn(N_CLASSES, 6, generator=gen)[y] + 0.5 * torch.randn(32, 6, generator=gen)
    noise = 0.1 * torch.randn(2, 32, 6, generator=gen)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, DIM))
    loss = make(name)
    optimizer = torch.optim.Adam([*net.parameters(), *loss.parameters()], lr=0.01)

    def value():
        if name in TWO_VIEW:
            out = torch.cat([net(x + noise[0]), net(x + noise[1])])
            return call(name, loss, out, torch.cat([y, y]))
        return loss(net(x), y)

    with torch.no_grad():
        before = value().item()
    for _ in range(15):
        optimizer.zero_grad()
        value().backward()
        optimizer.step()
    with torch.no_grad():
        after = value().item()
    assert after < before
