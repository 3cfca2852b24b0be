"""Multilabel losses against kornia, torch.nn.functional and float64 loops of the references."""

from __future__ import annotations

import math

import kornia.losses
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lossreg

COUNTS = [30, 8, 2]


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(2)
    z = torch.randn(20, 3, generator=gen, dtype=torch.float64) * 2
    y = torch.randint(0, 2, (20, 3), generator=gen).double()
    y[0] = 0.0  # a row without positives
    logits = torch.randn(20, 4, generator=gen, dtype=torch.float64) * 2
    labels = torch.randint(0, 4, (20,), generator=gen)
    weights = torch.rand(20, generator=gen, dtype=torch.float64)
    return z, y, logits, labels, weights


def _sig(v: float) -> float:
    return 1 / (1 + math.exp(-v))


# -- asymmetric family ------------------------------------------------------------------------


def _loop_asl(z, y, gamma_neg, gamma_pos, clip, eps=1e-8, weight=None, neg_extra=None):
    """The Alibaba-MIIL/ASL forward (and COMIC's variant via weight / neg_extra), per row."""
    rows = []
    for i in range(z.shape[0]):
        total = 0.0
        for c in range(z.shape[1]):
            p = _sig(z[i, c])
            x_neg = min(1 - p + clip, 1.0) if clip > 0 else 1 - p
            t = y[i, c]
            base = t * math.log(max(p, eps)) + (1 - t) * math.log(max(x_neg, eps))
            w_c = 1.0 if weight is None else weight[c]
            base *= w_c
            g_neg = gamma_neg + (0.0 if neg_extra is None else neg_extra[c])
            pt = p * t + x_neg * (1 - t)
            gamma = gamma_pos * t + g_neg * (1 - t)
            total += -base * (1 - pt) ** gamma
        rows.append(total)
    return np.array(rows)


@pytest.mark.reference("asymmetric")
@pytest.mark.parametrize(("gamma_neg", "gamma_pos", "clip"), [(4.0, 0.0, 0.05), (2.0, 1.0, 0.2)])
def test_asymmetric_matches_the_official_forward(data, gamma_neg, gamma_pos, clip):
    z, y, *_ = data
    loss = lossreg.create_loss(
        "asl", gamma_neg=gamma_neg, gamma_pos=gamma_pos, clip=clip, reduction="none"
    )
    ref = _loop_asl(z.numpy(), y.numpy(), gamma_neg, gamma_pos, clip)
    np.testing.assert_allclose(loss(z, y).numpy(), ref, rtol=1e-9)
    total = lossreg.create_loss(
        "asl", gamma_neg=gamma_neg, gamma_pos=gamma_pos, clip=clip, reduction="sum"
    )
    assert total(z, y).item() == pytest.approx(ref.sum(), rel=1e-9)


def test_asymmetric_without_focusing_is_summed_bce(data):
    z, y, *_ = data
    loss = lossreg.create_loss("asymmetric", gamma_neg=0.0, clip=0.0, reduction="none")
    ref = F.binary_cross_entropy_with_logits(z, y, reduction="none").sum(dim=1)
    torch.testing.assert_close(loss(z, y), ref)


def test_asymmetric_focusing_weights_can_be_detached(data):
    z, y, *_ = data
    grads = []
    for detach in (False, True):
        x = z.clone().requires_grad_()
        lossreg.create_loss("asl", gamma_pos=1.0, disable_grad_focal=detach)(x, y).backward()
        grads.append(x.grad)
    assert not torch.allclose(grads[0], grads[1])


@pytest.mark.reference("asymmetric_single_label")
def test_asymmetric_single_label_matches_the_official_forward(data):
    *_, logits, labels, _ = data
    for gamma_pos, gamma_neg, eps in [(0.0, 4.0, 0.1), (1.0, 2.0, 0.3)]:
        loss = lossreg.create_loss(
            "asl_single_label", gamma_pos=gamma_pos, gamma_neg=gamma_neg, eps=eps, reduction="none"
        )
        ref = []
        for i in range(len(labels)):
            z = logits[i].numpy()
            log_p = z - np.log(np.exp(z - z.max()).sum()) - z.max()
            row = 0.0
            for k in range(4):
                p = math.exp(log_p[k])
                is_target = k == labels[i].item()
                w = (1 - p) ** gamma_pos if is_target else p**gamma_neg
                q = (1 - eps) * is_target + eps / 4
                row -= q * w * log_p[k]
            ref.append(row)
        np.testing.assert_allclose(loss(logits, labels).numpy(), ref, rtol=1e-9)


def test_asymmetric_single_label_without_focusing_is_label_smoothed_ce(data):
    *_, logits, labels, _ = data
    loss = lossreg.create_loss(
        "asymmetric_single_label", gamma_pos=0.0, gamma_neg=0.0, eps=0.2, reduction="none"
    )
    ref = F.cross_entropy(logits, labels, label_smoothing=0.2, reduction="none")
    torch.testing.assert_close(loss(logits, labels), ref)


@pytest.mark.reference("multi_focal_modifier")
def test_multi_focal_modifier_matches_the_comic_forward(data):
    z, y, *_ = data
    loss = lossreg.create_loss("multi_focal_modifier", class_counts=COUNTS, reduction="none")
    prob = [n / sum(COUNTS) for n in COUNTS]
    weight = [(1 - math.log(p / max(prob))) ** (1 / 6) for p in prob]
    ref = _loop_asl(z.numpy(), y.numpy(), 4.0, 0.0, 0.05, weight=weight, neg_extra=weight)
    np.testing.assert_allclose(loss(z, y).numpy(), ref, rtol=1e-9)


# -- distribution_balanced --------------------------------------------------------------------


def _loop_db(z, y, counts, n, alpha=0.1, beta=10.0, mu=0.2, kappa=0.05, lam=2.0, gamma=2.0):
    rows = []
    for i in range(z.shape[0]):
        repeat = sum(y[i, k] / counts[k] for k in range(len(counts)))
        total = 0.0
        for c in range(len(counts)):
            r = (1 / counts[c]) / repeat if repeat > 0 else math.inf
            w = alpha + (1 / (1 + math.exp(-beta * (r - mu))) if r != math.inf else 1.0)
            zc = z[i, c] - kappa * math.log(n / counts[c] - 1)
            if y[i, c] == 1:
                bce = math.log1p(math.exp(-zc))
                pt = math.exp(-bce)
            else:
                zc, w = lam * zc, w / lam
                bce = math.log1p(math.exp(zc))
                pt = math.exp(-bce)
            total += 2.0 * w * (1 - pt) ** gamma * bce
        rows.append(total / len(counts))
    return np.array(rows)


@pytest.mark.reference("distribution_balanced")
def test_distribution_balanced_matches_a_loop_of_resample_loss(data):
    z, y, *_ = data
    loss = lossreg.create_loss(
        "distribution_balanced", class_counts=COUNTS, n_samples=50, reduction="none"
    )
    ref = _loop_db(z.numpy(), y.numpy(), COUNTS, 50)
    np.testing.assert_allclose(loss(z, y).numpy(), ref, rtol=1e-9)


def test_distribution_balanced_clamps_degenerate_counts(data):
    z, y, *_ = data
    loss = lossreg.create_loss("distribution_balanced", class_counts=[0, 50, 3], n_samples=50)
    x = (z * 500).requires_grad_()
    value = loss(x, y)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()


# -- pu_mlc -----------------------------------------------------------------------------------


def _loop_pu(z, y, gamma, alpha):
    n, labels = z.shape
    total = 0.0
    for c in range(labels):
        col = z[:, c]
        mean = sum(col) / n
        std = math.sqrt(sum((v - mean) ** 2 for v in col) / n)
        t = min(1.0, alpha * std)
        s = [_sig(v / t) for v in col]
        mean_s = sum(s) / n
        w = mean_s**gamma
        pos = [math.log(s[i]) for i in range(n) if y[i, c] == 1]
        total += w * math.log(mean_s) - (sum(pos) / len(pos) if pos else 0.0)
    return total


@pytest.mark.reference("pu_mlc")
@pytest.mark.parametrize(("gamma", "alpha"), [(0.0, 1.0), (1.0, 0.3)])
def test_pu_mlc_matches_a_loop_of_vpu_loss(data, gamma, alpha):
    z, y, *_ = data
    target = y.clone()
    target[target == 0] = -1.0  # -1 is unlabeled too
    target[1] = 0.0
    loss = lossreg.create_loss("pu_mlc", gamma=gamma, alpha=alpha)
    ref = _loop_pu(z.numpy(), target.numpy(), gamma, alpha)
    assert loss(z, target).item() == pytest.approx(ref, rel=1e-9)


def test_pu_mlc_sample_weights_equal_row_repetition(data):
    z, y, *_ = data
    loss = lossreg.create_loss("pu_mlc", gamma=1.0)
    repeats = torch.tensor([1, 2, 3, 1] * 5)
    weighted = loss(z, y, sample_weight=repeats.double())
    repeated = loss(z.repeat_interleave(repeats, 0), y.repeat_interleave(repeats, 0))
    torch.testing.assert_close(weighted, repeated)


# -- overlap losses ---------------------------------------------------------------------------


def _loop_counts(z, y, c):
    tp = fp = fn = sp = sy = sp2 = 0.0
    for i in range(z.shape[0]):
        p = _sig(z[i, c])
        tp += p * y[i, c]
        fp += p * (1 - y[i, c])
        fn += (1 - p) * y[i, c]
        sp += p
        sp2 += p * p
        sy += y[i, c]
    return tp, fp, fn, sp, sy, sp2


@pytest.mark.reference("dice")
@pytest.mark.parametrize("smooth", [1.0, 1e-6])
def test_dice_matches_a_loop_of_soft_counts(data, smooth):
    z, y, *_ = data
    zn, yn = z.numpy(), y.numpy()
    scores, squared, logs = [], [], []
    for c in range(3):
        tp, _, _, sp, sy, sp2 = _loop_counts(zn, yn, c)
        scores.append((2 * tp + smooth) / (sp + sy + smooth))
        squared.append((2 * tp + smooth) / (sp2 + sy + smooth))
        logs.append(-math.log(scores[-1]))
    dice = lossreg.create_loss("soft_f1", smooth=smooth)
    assert dice(z, y).item() == pytest.approx(1 - sum(scores) / 3, rel=1e-9)
    sq = lossreg.create_loss("dice", smooth=smooth, squared_denominator=True)
    assert sq(z, y).item() == pytest.approx(1 - sum(squared) / 3, rel=1e-9)
    lg = lossreg.create_loss("dice", smooth=smooth, log=True)
    assert lg(z, y).item() == pytest.approx(sum(logs) / 3, rel=1e-9)


@pytest.mark.reference("dice")
def test_dice_per_sample_aggregation_and_empty_labels(data):
    z, y, *_ = data
    zn, yn = z.numpy(), y.numpy()
    rows = []
    for i in range(zn.shape[0]):
        p = [_sig(v) for v in zn[i]]
        tp = sum(p[c] * yn[i, c] for c in range(3))
        rows.append(1 - (2 * tp + 1) / (sum(p) + yn[i].sum() + 1))
    loss = lossreg.create_loss("dice", aggregate="sample")
    assert loss(z, y).item() == pytest.approx(sum(rows) / len(rows), rel=1e-9)
    y_empty = y.clone()
    y_empty[:, 1] = 0
    plain = lossreg.create_loss("dice")(z, y_empty)
    skipped = lossreg.create_loss("dice", skip_empty=True)(z, y_empty)
    tp, _, _, sp, sy, _ = _loop_counts(zn, y_empty.numpy(), 1)
    empty_term = 1 - (2 * tp + 1) / (sp + sy + 1)
    assert plain.item() - skipped.item() == pytest.approx(empty_term / 3, rel=1e-9)


@pytest.mark.reference("jaccard")
def test_jaccard_matches_a_loop_and_tversky_at_one(data):
    z, y, *_ = data
    zn, yn = z.numpy(), y.numpy()
    scores = []
    for c in range(3):
        tp, _, _, sp, sy, _ = _loop_counts(zn, yn, c)
        scores.append((tp + 1) / (sp + sy - tp + 1))
    loss = lossreg.create_loss("soft_iou")
    assert loss(z, y).item() == pytest.approx(1 - sum(scores) / 3, rel=1e-9)
    tversky = lossreg.create_loss("tversky", alpha=1.0, beta=1.0)
    torch.testing.assert_close(tversky(z, y), loss(z, y))


@pytest.mark.reference("tversky")
def test_tversky_matches_a_loop_and_dice_at_one_half(data):
    z, y, *_ = data
    zn, yn = z.numpy(), y.numpy()
    scores = []
    for c in range(3):
        tp, fp, fn, *_ = _loop_counts(zn, yn, c)
        scores.append((tp + 1) / (tp + 0.3 * fp + 0.7 * fn + 1))
    assert lossreg.create_loss("tversky")(z, y).item() == pytest.approx(1 - sum(scores) / 3)
    half = lossreg.create_loss("tversky", alpha=0.5, beta=0.5, smooth=0.5)
    torch.testing.assert_close(half(z, y), lossreg.create_loss("dice", smooth=1.0)(z, y))


@pytest.mark.reference("focal_tversky")
def test_focal_tversky_matches_a_loop_and_tversky_at_gamma_one(data):
    z, y, *_ = data
    zn, yn = z.numpy(), y.numpy()
    terms = []
    for c in range(3):
        tp, fp, fn, *_ = _loop_counts(zn, yn, c)
        terms.append((1 - (tp + 1) / (tp + 0.3 * fp + 0.7 * fn + 1)) ** 0.75)
    loss = lossreg.create_loss("focal_tversky")
    assert loss(z, y).item() == pytest.approx(sum(terms) / 3, rel=1e-9)
    one = lossreg.create_loss("focal_tversky", gamma=1.0)
    torch.testing.assert_close(one(z, y), lossreg.create_loss("tversky")(z, y))


@pytest.mark.reference("generalized_dice")
def test_generalized_dice_matches_a_loop_of_monai_semantics(data):
    z, y, *_ = data
    y = y.clone()
    y[:, 2] = 0  # an empty label gets the largest finite weight
    zn, yn = z.numpy(), y.numpy()
    stats = [_loop_counts(zn, yn, c) for c in range(3)]
    finite = [1 / s[4] ** 2 for s in stats if s[4] > 0]
    w = [1 / s[4] ** 2 if s[4] > 0 else max(finite) for s in stats]
    num = 2 * sum(w[c] * stats[c][0] for c in range(3)) + 1e-5
    den = sum(w[c] * (stats[c][3] + stats[c][4]) for c in range(3)) + 1e-5
    loss = lossreg.create_loss("generalized_dice")
    assert loss(z, y).item() == pytest.approx(1 - num / den, rel=1e-9)


@pytest.mark.reference("lovasz_hinge")
def test_lovasz_hinge_matches_kornia(data):
    z, y, *_ = data
    loss = lossreg.create_loss("lovasz_hinge")
    refs = [
        kornia.losses.lovasz_hinge_loss(z[:, c].reshape(1, 1, 1, -1), y[:, c].reshape(1, 1, -1))
        for c in range(3)
    ]
    torch.testing.assert_close(loss(z, y), torch.stack(refs).mean())
    binary = loss(z[:, 0], y[:, 0])
    torch.testing.assert_close(binary, refs[0])
    with pytest.raises(ValueError, match="sample weights"):
        loss(z, y, sample_weight=torch.arange(20.0))


# -- shared behaviour -------------------------------------------------------------------------

BATCH_LEVEL = ["dice", "focal_tversky", "generalized_dice", "jaccard", "tversky", "pu_mlc"]


@pytest.mark.parametrize("name", BATCH_LEVEL)
def test_batch_level_losses_weight_soft_counts_like_repeated_rows(name, data):
    z, y, *_ = data
    loss = lossreg.create_loss(name)
    repeats = torch.tensor([1, 2, 3, 1] * 5)
    weighted = loss(z, y, sample_weight=repeats.double())
    repeated = loss(z.repeat_interleave(repeats, 0), y.repeat_interleave(repeats, 0))
    torch.testing.assert_close(weighted, repeated)
    with pytest.raises(ValueError, match="batch-level"):
        lossreg.create_loss(name, reduction="none")


ALL = {
    "asymmetric": {},
    "multi_focal_modifier": {"class_counts": COUNTS},
    "distribution_balanced": {"class_counts": COUNTS, "n_samples": 50},
    "dice": {},
    "generalized_dice": {},
    "tversky": {},
    "focal_tversky": {},
    "jaccard": {},
    "lovasz_hinge": {},
    "pu_mlc": {},
    "prior_focal_modifier": {
        "class_counts": COUNTS,
        "label_cooccurrence": [[30, 5, 1], [5, 8, 2], [1, 2, 2]],
    },
}


@pytest.mark.parametrize("name", sorted(ALL))
def test_multilabel_losses_keep_dtype_and_finite_gradients(name, data):
    z, y, *_ = data
    for dtype in (torch.float32, torch.float64):
        x = (z.to(dtype) * 500).requires_grad_()
        value = lossreg.create_loss(name, **ALL[name])(x, y.to(dtype))
        value.backward()
        assert value.dtype == dtype and torch.isfinite(value)
        assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize(
    "name", ["asymmetric", "multi_focal_modifier", "prior_focal_modifier", "distribution_balanced"]
)
def test_per_sample_multilabel_losses_honour_sample_weights(name, data):
    z, y, *_, weights = data
    loss = lossreg.create_loss(name, reduction="none", **ALL[name])
    torch.testing.assert_close(loss(z, y, sample_weight=weights), weights * loss(z, y))


# -- prior_focal_modifier and the label_cooccurrence data param -------------------------------


def _loop_pfm(z, y, counts, co, gamma_neg=3.0, gamma_pos=0.0, clip=0.05, g_ng=1.2, eps=1e-8):
    n_labels = len(counts)
    col = [sum(co[j][k] for j in range(n_labels)) for k in range(n_labels)]
    m = [[co[j][k] / col[k] for k in range(n_labels)] for j in range(n_labels)]
    prob = [c / sum(counts) for c in counts]
    weight = [(1 - math.log(p / max(prob))) ** (1 / 3) for p in prob]
    rows = []
    for i in range(z.shape[0]):
        pos = [j for j in range(n_labels) if y[i, j] == 1]
        if pos:
            att = [sum(m[j][k] for j in pos) / len(pos) for k in range(n_labels)]
            att = [v / sum(att) for v in att]
        else:
            att = [0.0] * n_labels
        total = 0.0
        for c in range(n_labels):
            p = _sig(z[i, c])
            xs_pos = p * (1 - att[c])
            xs_neg = min(1 - p + clip, 1.0)
            if att[c] != 0:
                xs_neg = min(xs_neg * g_ng, 1.0)
            t = y[i, c]
            base = t * math.log(max(xs_pos, eps)) + (1 - t) * math.log(max(xs_neg, eps))
            pt = xs_pos * t + xs_neg * (1 - t)
            gamma = gamma_pos * t + (gamma_neg + weight[c]) * (1 - t)
            total += -weight[c] * base * (1 - pt) ** gamma
        rows.append(total)
    return np.array(rows)


@pytest.mark.reference("prior_focal_modifier")
def test_prior_focal_modifier_matches_the_comic_forward(data):
    z, y, *_ = data
    from lossreg.targets import compute_data_params

    train = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 0]])
    fitted = compute_data_params(["class_counts", "label_cooccurrence"], train, "multilabel")
    assert fitted["class_counts"] == [4, 3, 2]
    assert fitted["label_cooccurrence"] == [[4, 2, 1], [2, 3, 1], [1, 1, 2]]
    loss = lossreg.create_loss("prior_focal_modifier", reduction="none", **fitted)
    ref = _loop_pfm(z.numpy(), y.numpy(), [4, 3, 2], fitted["label_cooccurrence"])
    np.testing.assert_allclose(loss(z, y).numpy(), ref, rtol=1e-9)


def test_label_cooccurrence_is_only_defined_for_multilabel_targets():
    from lossreg.targets import compute_data_params

    with pytest.raises(ValueError, match="not defined for multiclass"):
        compute_data_params(["label_cooccurrence"], np.array([0, 1, 2]), "multiclass")
