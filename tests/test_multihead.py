"""Multi-head outputs: specs with outputs="logits+features", the estimators and the kit for them,
and the losses on the network's features next to its logits, against float64 loop references.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from torch import nn

import lossreg
from lossreg import LossClassifier, LossRegressor, LossSpec
from lossreg.estimators import MLP
from lossreg.spec import spec_problems
from lossreg.targets import compute_data_params
from lossreg.testing import FEATURE_DIM, LossCase, make_toy


@pytest.fixture(scope="module")
def xy():
    X, y = make_classification(
        n_samples=60,
        n_features=5,
        n_informative=3,
        n_redundant=0,
        n_classes=3,
        n_clusters_per_class=1,
        random_state=0,
    )
    return X.astype(np.float32), y


def _fast(**kwargs):
    return {"max_iter": 3, "batch_size": 20, "random_state": 0, **kwargs}


# ----------------------------------------------------------------------------- the mechanism
def test_outputs_field_is_validated():
    spec = lossreg.get_spec("bias_ce")
    assert spec.outputs == "logits+features"
    bad = LossSpec(**{**spec.__dict__, "outputs": "features"})
    assert [rule for rule, _ in spec_problems(bad)] == ["outputs"]
    assert lossreg.get_spec("cross_entropy").outputs == "logits"


def test_feature_dim_data_param_needs_a_two_part_output():
    ce = lossreg.get_spec("cross_entropy")

    class Takes(nn.Module):
        def __init__(self, *, feature_dim, reduction="mean"):
            super().__init__()

    spec = LossSpec(
        **{**ce.__dict__, "factory": Takes, "params": (), "data_params": ("feature_dim",)}
    )
    assert "outputs" in [rule for rule, _ in spec_problems(spec)]
    ok = LossSpec(**{**spec.__dict__, "outputs": "logits+features"})
    assert spec_problems(ok) == []
    y = np.array([0, 1, 1])
    assert compute_data_params(["feature_dim"], y, "binary", feature_width=7) == {"feature_dim": 7}
    with pytest.raises(ValueError, match="feature_width"):
        compute_data_params(["feature_dim"], y, "binary")


def test_mlp_returns_its_last_hidden_layer_as_features():
    torch.manual_seed(0)
    net = MLP(5, 3, hidden_units=(16, 8), return_features=True)
    x = torch.randn(4, 5)
    logits, features = net(x)
    assert logits.shape == (4, 3) and features.shape == (4, 8)
    torch.testing.assert_close(net.layers[-1](features), logits)
    torch.testing.assert_close(net.layers[:-1](x), features)
    linear = MLP(5, 3, hidden_units=(), return_features=True)
    torch.testing.assert_close(linear(x)[1], x)  # no hidden layer: the features are the inputs
    assert not isinstance(MLP(5, 3)(x), tuple)


def test_the_toy_gives_a_two_part_loss_logits_and_features():
    case = LossCase(lossreg.get_spec("bias_ce"))
    toy = case.toy()
    assert toy.features is not None and toy.features.shape == (toy.n, FEATURE_DIM)
    assert isinstance(toy.output, tuple) and toy.output[0] is toy.input
    assert toy.rows([2, 0]).features.shape == (2, FEATURE_DIM)
    torch.testing.assert_close(toy.rows([2, 0]).features, toy.features[[2, 0]])
    assert toy.to(torch.float64).features.dtype == torch.float64
    plain = make_toy(lossreg.get_spec("cross_entropy"))
    assert plain.features is None and plain.output is plain.input
    # The logits are drawn as for any loss: the features do not shift them.
    torch.testing.assert_close(plain.input, toy.input)


def test_classifier_fits_and_predicts_with_bias_ce(xy):
    X, y = xy
    clf = LossClassifier(loss="bias_ce", **_fast()).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (60, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-10)
    assert set(clf.predict(X)) <= set(clf.classes_)
    # Predictions are the softmax of the logits head, in float64.
    module = clf.module_
    with torch.no_grad():
        logits, _ = module.double()(torch.as_tensor(X, dtype=torch.float64))
    np.testing.assert_allclose(proba, logits.softmax(dim=1).numpy(), rtol=1e-6)


class LogitsOnly(nn.Module):
    def __init__(self, n_features=5, n_outputs=3):
        super().__init__()
        self.linear = nn.Linear(n_features, n_outputs)

    def forward(self, x):
        return self.linear(x)


class DictHead(nn.Module):
    def __init__(self, n_features=5, n_outputs=3, return_features=False):
        super().__init__()
        self.hidden = nn.Linear(n_features, 6)
        self.head = nn.Linear(6, n_outputs)
        self.return_features = return_features

    def forward(self, x):
        h = torch.relu(self.hidden(x))
        if not self.return_features:
            return self.head(h)
        return {"logits": self.head(h), "features": h}


def test_a_user_module_that_returns_logits_only_gets_an_error_naming_the_fix(xy):
    X, y = xy
    with pytest.raises(ValueError, match=r"bias_ce.*outputs='logits\+features'.*LogitsOnly"):
        LossClassifier(loss="bias_ce", module=LogitsOnly, **_fast()).fit(X, y)


def test_a_user_module_may_return_a_dict_and_gets_return_features(xy):
    X, y = xy
    clf = LossClassifier(loss="bias_ce", module=DictHead, **_fast()).fit(X, y)
    assert clf.module_.return_features is True
    assert clf.predict_proba(X).shape == (60, 3)
    seen = []

    class Spy(nn.Module):
        def forward(self, input, target, **kwargs):
            seen.append(input)
            return input[0].sum() * 0 + input[1].square().mean()

    spec = LossSpec(
        **{**lossreg.get_spec("bias_ce").__dict__, "factory": lambda **kw: Spy(), "params": ()}
    )
    LossClassifier(loss=spec, module=DictHead, **_fast(max_iter=1)).fit(X, y)
    assert all(isinstance(s, tuple) and len(s) == 2 for s in seen)
    assert seen[0][1].shape[1] == 6


def test_feature_dim_reaches_the_factory_from_the_module(xy):
    X, y = xy
    got = {}

    class Width(nn.Module):
        def __init__(self, *, feature_dim, reduction="mean"):
            super().__init__()
            got["feature_dim"] = feature_dim

        def forward(self, input, target, **kwargs):
            logits, features = input
            return nn.functional.cross_entropy(logits, target) + 0 * features.sum()

    ce = lossreg.get_spec("cross_entropy")
    spec = LossSpec(
        **{
            **ce.__dict__,
            "factory": Width,
            "params": (),
            "data_params": ("feature_dim",),
            "outputs": "logits+features",
        }
    )
    clf = LossClassifier(loss=spec, module__hidden_units=(7, 9), **_fast(max_iter=1)).fit(X, y)
    assert got["feature_dim"] == 9 and clf.data_params_ == {"feature_dim": 9}


def test_regressor_takes_a_two_part_loss_and_predicts_the_logits():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4)).astype(np.float32)
    y = X[:, 0] * 2.0

    class MSEPlusFeatures(nn.Module):
        def __init__(self, *, reduction="mean"):
            super().__init__()

        def forward(self, input, target, **kwargs):
            out, features = input
            return (out.reshape(-1) - target).square().mean() + 1e-3 * features.square().mean()

    spec = LossSpec(
        name="mse_plus_features",
        factory=MSEPlusFeatures,
        tasks={"regression"},
        link="identity",
        summary="test",
        reference="test",
        per_sample=False,
        outputs="logits+features",
    )
    reg = LossRegressor(loss=spec, **_fast(max_iter=2)).fit(X, y)
    assert reg.predict(X).shape == (40,)


# ----------------------------------------------------------------------------- deep_coral
def _ce_loop(logits, labels):
    out = []
    for row, y in zip(logits.tolist(), labels.tolist(), strict=True):
        top = max(row)
        out.append(top + math.log(sum(math.exp(v - top) for v in row)) - row[y])
    return out


def _coral_reference(logits, features, labels, group, weight, coral_weight):
    """WILDS deepCORAL.coral_penalty over pairs of groups, rows weighed as frequencies, loops."""
    ce = _ce_loop(logits, labels)
    w = weight.tolist()
    base = sum(c * v for c, v in zip(ce, w, strict=True)) / sum(w)
    h = features.tolist()
    d = len(h[0])
    stats = []
    for g in sorted(set(group.tolist())):
        rows = [i for i, k in enumerate(group.tolist()) if k == g]
        mass = sum(w[i] for i in rows)
        if mass <= 1:
            continue
        mean = [sum(w[i] * h[i][a] for i in rows) / mass for a in range(d)]
        cov = [
            [
                sum(w[i] * (h[i][a] - mean[a]) * (h[i][b] - mean[b]) for i in rows) / (mass - 1)
                for b in range(d)
            ]
            for a in range(d)
        ]
        stats.append((mean, cov))
    total, pairs = 0.0, 0
    for x in range(len(stats)):
        for y in range(x + 1, len(stats)):
            (ma, ca), (mb, cb) = stats[x], stats[y]
            mean_diff = sum((ma[a] - mb[a]) ** 2 for a in range(d)) / d
            cov_diff = sum((ca[a][b] - cb[a][b]) ** 2 for a in range(d) for b in range(d)) / d**2
            total += mean_diff + cov_diff
            pairs += 1
    return base + coral_weight * total / max(pairs, 1)


@pytest.fixture
def env_batch():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(18, 3, generator=gen, dtype=torch.float64) * 2
    features = torch.randn(18, 4, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 3, (18,), generator=gen)
    group = torch.tensor([0, 1, 2] * 6)
    group[0] = 3  # a group of one row: no covariance, left out
    weight = torch.rand(18, generator=gen, dtype=torch.float64) * 2
    return logits, features, labels, group, weight


@pytest.mark.reference("deep_coral")
@pytest.mark.parametrize("coral_weight", [0.0, 1.0, 10.0])
def test_deep_coral_matches_the_wilds_penalty_written_as_loops(env_batch, coral_weight):
    logits, features, labels, group, weight = env_batch
    loss = lossreg.create_loss("deep_coral", coral_weight=coral_weight)
    ones = torch.ones(18, dtype=torch.float64)
    got = loss((logits, features), labels, group=group)
    expected = _coral_reference(logits, features, labels, group, ones, coral_weight)
    assert got.item() == pytest.approx(expected, rel=1e-10)
    got = loss((logits, features), labels, group=group, sample_weight=weight)
    expected = _coral_reference(logits, features, labels, group, weight, coral_weight)
    assert got.item() == pytest.approx(expected, rel=1e-10)
    total = lossreg.create_loss("deep_coral", coral_weight=coral_weight, reduction="sum")
    summed = total((logits, features), labels, group=group, sample_weight=weight)
    assert summed.item() == pytest.approx(expected * weight.sum().item(), rel=1e-10)


def test_deep_coral_integer_weights_equal_repeated_rows(env_batch):
    logits, features, labels, group, _ = env_batch
    counts = torch.ones(18, dtype=torch.float64)
    counts[[1, 2, 5]] = torch.tensor([2.0, 0.0, 3.0], dtype=torch.float64)
    keep = [i for i in range(18) for _ in range(int(counts[i]))]
    loss = lossreg.create_loss("deep_coral")
    weighted = loss((logits, features), labels, group=group, sample_weight=counts)
    repeated = loss((logits[keep], features[keep]), labels[keep], group=group[keep])
    assert weighted.item() == pytest.approx(repeated.item(), rel=1e-10)


def test_deep_coral_identities(env_batch):
    logits, features, labels, group, _ = env_batch
    loss = lossreg.create_loss("deep_coral", coral_weight=5.0)
    ce = torch.nn.functional.cross_entropy(logits, labels)
    # One group, or the same feature distribution in every group: the base loss alone.
    alone = loss((logits, features), labels, group=torch.zeros(18, dtype=torch.long))
    torch.testing.assert_close(alone, ce)
    same = features[:6].repeat(3, 1)
    equal = loss((logits, same), labels, group=torch.arange(18) // 6)
    torch.testing.assert_close(equal, ce)
    # A base loss from the registry, with its own parameters.
    focal = lossreg.create_loss("deep_coral", base="focal", base_params={"gamma": 0.0})
    torch.testing.assert_close(
        focal((logits, features), labels, group=torch.zeros(18, dtype=torch.long)), ce
    )
    with pytest.raises(ValueError, match="features next to its logits"):
        loss(logits, labels, group=group)


# ----------------------------------------------------------------------------- fishr
def _fishr_reference(batches, weight_matrix, bias, penalty_weight, ema):
    """DomainBed Fishr with a linear head: per-row parameter gradients by autograd (one row at
    a time, instead of BackPACK), per-domain variances and MovingAverage in loops."""
    state = {}  # domain -> (stored ema data, updates)
    values = []
    for features, labels, group in batches:
        head = torch.nn.Linear(weight_matrix.shape[1], weight_matrix.shape[0]).double()
        with torch.no_grad():
            head.weight.copy_(weight_matrix)
            head.bias.copy_(bias)
        rows = []
        for i in range(len(labels)):
            ce = torch.nn.functional.cross_entropy(head(features[i : i + 1]), labels[i : i + 1])
            gw, gb = torch.autograd.grad(ce, [head.weight, head.bias])
            rows.append(torch.cat([gw.reshape(-1), gb]).tolist())
        smoothed = {}
        for g in sorted(set(group.tolist())):
            members = [rows[i] for i in range(len(rows)) if group[i] == g]
            k = len(members[0])
            mean = [sum(m[j] for m in members) / len(members) for j in range(k)]
            var = [sum((m[j] - mean[j]) ** 2 for m in members) / len(members) for j in range(k)]
            previous, updates = state.get(g, ([0.0] * k, 0))
            moving = [ema * p + (1 - ema) * v for p, v in zip(previous, var, strict=True)]
            state[g] = (moving, updates + 1)
            smoothed[g] = [m / (1 - ema) for m in moving]
        envs = list(smoothed)
        k = len(smoothed[envs[0]])
        centre = [sum(smoothed[e][j] for e in envs) / len(envs) for j in range(k)]
        penalty = sum(
            sum((smoothed[e][j] - centre[j]) ** 2 for j in range(k)) / k for e in envs
        ) / len(envs)
        logits = head(features).detach()
        nll = sum(_ce_loop(logits, labels)) / len(labels)
        values.append(nll + penalty_weight * penalty)
    return values


@pytest.mark.reference("fishr")
def test_fishr_matches_domainbed_with_autograd_head_gradients_over_two_steps():
    gen = torch.Generator().manual_seed(1)
    weight_matrix = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    bias = torch.randn(3, generator=gen, dtype=torch.float64)
    batches = []
    for _ in range(2):
        features = torch.randn(15, 4, generator=gen, dtype=torch.float64)
        labels = torch.randint(0, 3, (15,), generator=gen)
        batches.append((features, labels, torch.arange(15) % 3))
    batches[1] = (batches[1][0][:10], batches[1][1][:10], torch.arange(10) % 2)  # env 2 absent
    loss = lossreg.create_loss("fishr", penalty_weight=100.0, anneal_iters=0, ema=0.9)
    got = []
    for features, labels, group in batches:
        logits = features @ weight_matrix.T + bias
        got.append(loss((logits, features), labels, group=group).item())
    expected = _fishr_reference(batches, weight_matrix, bias, 100.0, 0.9)
    assert got == pytest.approx(expected, rel=1e-9)
    assert loss.updates_.tolist() == [2, 2, 1]


def test_fishr_warm_up_eval_mode_and_weights():
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(12, 3, generator=gen, dtype=torch.float64)
    features = torch.randn(12, 5, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 3, (12,), generator=gen)
    group = torch.arange(12) % 2
    ce = torch.nn.functional.cross_entropy(logits, labels)
    loss = lossreg.create_loss("fishr", anneal_iters=2)
    for _ in range(2):  # the warm-up: cross-entropy alone, while the averages move
        torch.testing.assert_close(loss((logits, features), labels, group=group), ce)
    assert loss.updates_.tolist() == [2, 2] and int(loss.step_) == 2
    assert loss((logits, features), labels, group=group) > ce
    loss.eval()
    before = loss.ema_.clone()
    loss((logits, features), labels, group=group)
    torch.testing.assert_close(loss.ema_, before)  # validation batches do not move them
    # Integer weights equal repeated rows (fresh averages on both sides).
    counts = torch.ones(12, dtype=torch.float64)
    counts[[0, 3]] = torch.tensor([3.0, 0.0], dtype=torch.float64)
    keep = [i for i in range(12) for _ in range(int(counts[i]))]
    a = lossreg.create_loss("fishr", anneal_iters=0)
    b = lossreg.create_loss("fishr", anneal_iters=0)
    weighted = a((logits, features), labels, group=group, sample_weight=counts)
    repeated = b((logits[keep], features[keep]), labels[keep], group=group[keep])
    torch.testing.assert_close(weighted, repeated)
    # One environment: nothing to align.
    one = lossreg.create_loss("fishr", anneal_iters=0)
    torch.testing.assert_close(
        one((logits, features), labels, group=torch.zeros(12, dtype=torch.long)), ce
    )


# ----------------------------------------------------------------------------- cad bottlenecks
def _cad_reference(logits, z, labels, domain, weight, lam, tau, flipped, conditional):
    """DomainBed AbstractCAD.bn_loss and update, one row at a time (plain Python)."""
    z, y, d, w = z.tolist(), labels.tolist(), domain.tolist(), weight.tolist()
    n = len(y)

    def sim(i, j):
        return 0.0 if i == j else sum(a * b for a, b in zip(z[i], z[j], strict=True)) / tau

    def log_sum_exp(values):
        top = max(values)
        return top + math.log(sum(math.exp(v - top) for v in values))

    terms = []
    for i in range(n):
        same_label = [j for j in range(n) if j != i and y[j] == y[i]]
        if conditional:
            pool = same_label
            if flipped:
                target = [j for j in same_label if d[j] != d[i]]
            else:
                target = [j for j in same_label if d[j] == d[i]]
        else:
            if not same_label:
                continue
            pool = [j for j in range(n) if j != i]
            if flipped:
                target = [j for j in range(n) if d[j] != d[i]]
            else:
                target = [j for j in range(n) if d[j] == d[i]]  # the row itself included
        if not target:
            continue  # +-inf in the reference, dropped by finite_mean
        denominator = log_sum_exp([sim(i, k) for k in pool])
        mass = log_sum_exp([sim(i, j) - denominator for j in target])
        b = -(tau / 0.07) * mass if flipped else (tau / 0.07) * mass
        terms.append((b, w[i]))
    ce = _ce_loop(logits, labels)
    value = sum(c * v for c, v in zip(ce, w, strict=True)) / sum(w)
    if terms:
        value += lam * sum(b * v for b, v in terms) / sum(v for _, v in terms)
    return value


@pytest.mark.reference("cad_bottleneck")
@pytest.mark.reference("cond_cad_bottleneck")
@pytest.mark.parametrize("name", ["cad_bottleneck", "cond_cad_bottleneck"])
@pytest.mark.parametrize("flipped", [True, False])
@pytest.mark.parametrize("normalized", [False, True])
def test_cad_bottlenecks_match_domainbed_bn_loss_written_as_loops(name, flipped, normalized):
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(14, 3, generator=gen, dtype=torch.float64)
    z = torch.randn(14, 5, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 3, (14,), generator=gen)
    labels[13] = 2
    labels[:13][labels[:13] == 2] = 0  # class 2 has one row: no partner of its label
    domain = torch.randint(0, 3, (14,), generator=gen)
    weight = torch.rand(14, generator=gen, dtype=torch.float64) + 0.5
    loss = lossreg.create_loss(
        name, bottleneck_weight=0.7, temperature=0.5, flipped=flipped, normalized=normalized
    )
    features = torch.nn.functional.normalize(z, dim=1) if normalized else z
    conditional = name.startswith("cond")
    for w in (torch.ones(14, dtype=torch.float64), weight):
        got = loss((logits, z), labels, group=domain, sample_weight=w).item()
        expected = _cad_reference(
            logits, features, labels, domain, w, 0.7, 0.5, flipped, conditional
        )
        assert got == pytest.approx(expected, rel=1e-10)


def test_cad_bottleneck_identities_and_gradients():
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(8, 2, generator=gen, dtype=torch.float64)
    z = torch.randn(8, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1] * 4)
    ce = torch.nn.functional.cross_entropy(logits, labels)
    for name in ("cad_bottleneck", "cond_cad_bottleneck"):
        loss = lossreg.create_loss(name)
        # One domain: no other-domain row, every b_i is infinite and dropped: CE alone.
        one = loss((logits, z), labels, group=torch.zeros(8, dtype=torch.long))
        torch.testing.assert_close(one, ce)
        value = loss((logits, z), labels, group=torch.arange(8) // 4)
        (grad,) = torch.autograd.grad(value, [z])
        assert torch.isfinite(grad).all() and (grad != 0).any()
    with pytest.raises(ValueError, match="temperature"):
        lossreg.create_loss("cad_bottleneck", temperature=0.0)


# ----------------------------------------------------------------------------- norm_direction
def _kdpp_reference(logits, s, teacher, f, labels, centers, nd_weight, kd_factor, t):
    """KD++ of WangYZ1608/Knowledge-Distillation-via-ND per row: CE + KDLoss + DirectNormLoss,
    the class centres given, in plain Python loops."""
    out = []
    ce = _ce_loop(logits, labels)
    for i, y in enumerate(labels.tolist()):
        zt = [v / t for v in teacher[i].tolist()]
        zs = [v / t for v in logits[i].tolist()]
        lt = [v - math.log(sum(math.exp(u) for u in zt)) for v in zt]
        ls = [v - math.log(sum(math.exp(u) for u in zs)) for v in zs]
        kl = sum(math.exp(a) * (a - b) for a, b in zip(lt, ls, strict=True)) * t * t
        c = centers[y]
        norm_c = math.sqrt(sum(v * v for v in c))
        si, fi = s[i].tolist(), f[i].tolist()
        max_norm = max(math.sqrt(sum(v * v for v in si)), math.sqrt(sum(v * v for v in fi)))
        nd = 1 - sum(a * b / norm_c for a, b in zip(si, c, strict=True)) / max_norm
        out.append(ce[i] + kd_factor * kl + nd_weight * nd)
    return out


@pytest.mark.reference("norm_direction")
def test_norm_direction_matches_kdpp_loops_with_running_teacher_centres():
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(10, 3, generator=gen, dtype=torch.float64)
    s = torch.randn(10, 4, generator=gen, dtype=torch.float64)
    teacher = torch.randn(10, 3, generator=gen, dtype=torch.float64)
    f = torch.randn(10, 4, generator=gen, dtype=torch.float64) + 1.0
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    loss = lossreg.create_loss(
        "norm_direction", n_classes=3, feature_dim=4, nd_weight=0.7, reduction="none"
    )
    loss.set_epoch(5, 100)  # warm-up: KD weight 5 / 20
    got = loss((logits, s), labels, teacher_logits=teacher, teacher_features=f)
    # First batch: the centres are its own class means of the teacher features.
    centers = {
        c: [
            sum(f[i, d].item() for i in range(10) if labels[i] == c) / int((labels == c).sum())
            for d in range(4)
        ]
        for c in range(3)
    }
    expected = _kdpp_reference(logits, s, teacher, f, labels, centers, 0.7, 0.25, 4.0)
    assert got.tolist() == pytest.approx(expected, rel=1e-10)
    # Second batch: the centres average the teacher features of both batches.
    f2 = torch.randn(10, 4, generator=gen, dtype=torch.float64)
    got = loss((logits, s), labels, teacher_logits=teacher, teacher_features=f2)
    both = torch.cat([f, f2])
    twice = torch.cat([labels, labels])
    centers = {c: both[twice == c].mean(dim=0).tolist() for c in range(3)}
    expected = _kdpp_reference(logits, s, teacher, f2, labels, centers, 0.7, 0.25, 4.0)
    assert got.tolist() == pytest.approx(expected, rel=1e-10)
    # Eval mode reads the centres without moving them.
    loss.eval()
    before = loss.center_sum_.clone()
    loss((logits, s), labels, teacher_logits=teacher, teacher_features=f2)
    torch.testing.assert_close(loss.center_sum_, before)


def test_norm_direction_identities_and_weights():
    gen = torch.Generator().manual_seed(6)
    logits = torch.randn(8, 2, generator=gen, dtype=torch.float64)
    teacher = torch.randn(8, 2, generator=gen, dtype=torch.float64)
    labels = torch.tensor([0, 1] * 4)
    f = torch.randn(8, 3, generator=gen, dtype=torch.float64)
    make = lambda **kw: lossreg.create_loss(  # noqa: E731
        "norm_direction", n_classes=2, feature_dim=3, kd_warmup_epochs=0, **kw
    )
    # Student features on the teacher centre's direction, norm >= the teacher's: ND = 0.
    centres = torch.stack([f[labels == c].mean(dim=0) for c in (0, 1)])
    unit = centres / centres.norm(dim=1, keepdim=True)
    s = unit[labels] * (f.norm(dim=1, keepdim=True) + 1.0)
    ce = torch.nn.functional.cross_entropy(logits, labels)
    got = make(kd_weight=0.0)((logits, s), labels, teacher_logits=teacher, teacher_features=f)
    torch.testing.assert_close(got, ce)
    # Integer sample weights equal repeated rows (centres weighted too).
    counts = torch.tensor([2.0, 1.0, 0.0, 1.0, 3.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    keep = [i for i in range(8) for _ in range(int(counts[i]))]
    s = torch.randn(8, 3, generator=gen, dtype=torch.float64)
    weighted = make()(
        (logits, s), labels, sample_weight=counts, teacher_logits=teacher, teacher_features=f
    )
    repeated = make()(
        (logits[keep], s[keep]),
        labels[keep],
        teacher_logits=teacher[keep],
        teacher_features=f[keep],
    )
    torch.testing.assert_close(weighted, repeated)
    with pytest.raises(ValueError, match="teacher_features"):
        make()((logits, s), labels, teacher_logits=teacher, teacher_features=f[:, :2])
    with pytest.raises(ValueError, match="teacher_features"):
        make()((logits, s), labels, teacher_logits=teacher)


def test_classifier_distils_with_norm_direction(xy):
    X, y = xy
    rng = np.random.default_rng(0)
    clf = LossClassifier(loss="norm_direction", module__hidden_units=(16, 6), **_fast())
    clf.fit(
        X, y, teacher_logits=rng.normal(size=(60, 3)), teacher_features=rng.normal(size=(60, 6))
    )
    assert clf.data_params_ == {"n_classes": 3, "feature_dim": 6}
    assert clf.predict_proba(X).shape == (60, 3)
    with pytest.raises(ValueError, match="teacher_features"):
        LossClassifier(loss="norm_direction", **_fast()).fit(
            X, y, teacher_logits=rng.normal(size=(60, 3)), teacher_features=rng.normal(size=(60, 6))
        )


# ----------------------------------------------------------------------------- hessian alignment
def _head_setup(seed, n=16, c=3, d=4, n_envs=2):
    gen = torch.Generator().manual_seed(seed)
    head = torch.nn.Linear(d, c).double()
    with torch.no_grad():
        head.weight.copy_(torch.randn(c, d, generator=gen, dtype=torch.float64))
        head.bias.copy_(torch.randn(c, generator=gen, dtype=torch.float64))
    features = torch.randn(n, d, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, c, (n,), generator=gen)
    group = torch.arange(n) % n_envs
    return head, features, labels, group


def _flat(grads):
    return torch.cat([g.reshape(-1) for g in grads])


def _env_risks(head, features, labels, group):
    logits = head(features)
    return [
        torch.nn.functional.cross_entropy(logits[group == e], labels[group == e])
        for e in sorted(set(group.tolist()))
    ]


def _hgp_reference(head, features, labels, group, penalty_weight):
    """cmnist_HGP.py's 'sad' penalty by autograd through a real linear head."""
    params = list(head.parameters())
    risks = _env_risks(head, features, labels, group)
    train_nll = torch.stack(risks).mean()
    mean_g = _flat(torch.autograd.grad(train_nll, params, create_graph=True))
    mean_norm = mean_g.pow(2).sum().sqrt()
    mean_hg = mean_norm * _flat(torch.autograd.grad(mean_norm, params, create_graph=True))
    penalty = 0.0
    for risk in risks:
        g = _flat(torch.autograd.grad(risk, params, create_graph=True))
        norm = g.pow(2).sum().sqrt()
        hg = norm * _flat(torch.autograd.grad(norm, params, create_graph=True))
        penalty = penalty + (hg - mean_hg).pow(2).sum() + (g - mean_g).pow(2).sum()
    return (train_nll + penalty_weight * penalty).item()


@pytest.mark.reference("hessian_alignment_hgp")
@pytest.mark.parametrize("n_envs", [2, 3])
def test_hgp_matches_double_backprop_through_a_linear_head(n_envs):
    head, features, labels, group = _head_setup(7, n_envs=n_envs)
    loss = lossreg.create_loss("hessian_alignment_hgp", penalty_weight=50.0, anneal_iters=0)
    with torch.no_grad():
        logits = head(features)
    got = loss((logits, features), labels, group=group).item()
    assert got == pytest.approx(_hgp_reference(head, features, labels, group, 50.0), rel=1e-9)


def _hutchinson_reference(head, features, labels, group, penalty_weight, n_probes):
    """cmnist_Hutchinson.py's penalty by autograd, probes drawn in the loss's order (the mean
    Hessian first, then each environment), each a (K, C, D+1) Rademacher tensor."""
    params = list(head.parameters())
    c, d = head.weight.shape

    def diagonal(grads):
        g = _flat(grads)
        z = torch.randint(0, 2, (n_probes, c, d + 1)).double() * 2 - 1
        out = []
        for v in z:
            flat_v = torch.cat([v[:, :d].reshape(-1), v[:, d]])
            hv = _flat(torch.autograd.grad(torch.dot(g, flat_v), params, retain_graph=True))
            out.append(flat_v * hv)
        return sum(out) / len(out)

    risks = _env_risks(head, features, labels, group)
    train_nll = torch.stack(risks).mean()
    mean_grads = torch.autograd.grad(train_nll, params, create_graph=True)
    mean_diag = diagonal(mean_grads)
    penalty = 0.0
    for risk in risks:
        grads = torch.autograd.grad(risk, params, create_graph=True)
        penalty = penalty + (_flat(grads) - _flat(mean_grads)).pow(2).sum()
        penalty = penalty + (diagonal(grads) - mean_diag).pow(2).sum()
    return (train_nll + penalty_weight * penalty).item()


@pytest.mark.reference("hessian_alignment_hutchinson")
def test_hutchinson_matches_autograd_probes_and_converges_to_the_exact_diagonal():
    head, features, labels, group = _head_setup(8)
    with torch.no_grad():
        logits = head(features)
    loss = lossreg.create_loss(
        "hessian_alignment_hutchinson", penalty_weight=30.0, anneal_iters=0, n_probes=20
    )
    torch.manual_seed(11)
    got = loss((logits, features), labels, group=group).item()
    torch.manual_seed(11)
    expected = _hutchinson_reference(head, features, labels, group, 30.0, 20)
    assert got == pytest.approx(expected, rel=1e-9)
    # Many probes: the estimate approaches the penalty with exact Hessian diagonals.
    params = list(head.parameters())
    risks = _env_risks(head, features, labels, group)

    def exact_diag(risk):
        g = _flat(torch.autograd.grad(risk, params, create_graph=True))
        rows = [_flat(torch.autograd.grad(g[k], params, retain_graph=True)) for k in range(len(g))]
        return torch.stack(rows).diagonal()

    mean_risk = torch.stack(risks).mean()
    mean_diag = exact_diag(mean_risk)
    mean_g = _flat(torch.autograd.grad(mean_risk, params, create_graph=True))
    exact = mean_risk.item()
    for risk in risks:
        g = _flat(torch.autograd.grad(risk, params, create_graph=True))
        exact += 30.0 * ((g - mean_g).pow(2).sum() + (exact_diag(risk) - mean_diag).pow(2).sum())
    many = lossreg.create_loss(
        "hessian_alignment_hutchinson", penalty_weight=30.0, anneal_iters=0, n_probes=20000
    )
    torch.manual_seed(0)
    estimate = many((logits, features), labels, group=group).item()
    assert estimate == pytest.approx(float(exact.detach()), rel=0.05)


def test_hessian_alignment_warm_up_and_one_environment():
    head, features, labels, _ = _head_setup(9)
    with torch.no_grad():
        logits = head(features)
    ce = torch.nn.functional.cross_entropy(logits, labels)
    for name in ("hessian_alignment_hgp", "hessian_alignment_hutchinson"):
        loss = lossreg.create_loss(name, anneal_iters=0)
        one = loss((logits, features), labels, group=torch.zeros(16, dtype=torch.long))
        if name.endswith("hgp"):
            torch.testing.assert_close(one, ce)  # one environment: nothing to align
        else:
            # Independent probes for the environment and the mean: the estimates differ by
            # their noise even for one environment, as in the reference.
            assert one > ce
        warm = lossreg.create_loss(name, penalty_weight=1e6, anneal_iters=1)
        group = torch.arange(16) % 2
        first = warm((logits, features), labels, group=group)  # weight 1 during the warm-up
        second = warm((logits, features), labels, group=group)  # then 1e6
        assert int(warm.step_) == 2 and second > 100 * first


# ----------------------------------------------------------------------------- the kit on two parts
class _WrongFeatureGrad(torch.autograd.Function):
    """Identity forward, a doubled gradient backward: a bug the kit must see in the features."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return 2 * grad


class _TwoPart(nn.Module):
    def __init__(self, *, broken: bool = False, reduction: str = "mean"):
        super().__init__()
        self.broken = broken
        self.reduction = reduction

    def forward(self, input, target, *, sample_weight=None, **extras):
        logits, features = input
        h = _WrongFeatureGrad.apply(features) if self.broken else features
        rows = nn.functional.cross_entropy(logits, target.long().reshape(-1), reduction="none")
        rows = rows + h.square().mean(dim=1)
        return lossreg.reduce(rows, self.reduction, sample_weight)


def _two_part_spec(broken: bool) -> LossSpec:
    return LossSpec(
        name="two_part",
        factory=lambda **kw: _TwoPart(broken=broken, **kw),
        tasks={"multiclass"},
        link="softmax",
        summary="test",
        reference="test",
        outputs="logits+features",
    )


def test_the_kit_checks_gradients_with_respect_to_the_features_too():
    from lossreg.testing import check_loss

    checks = ["check_gradcheck", "check_scalar_finite_output", "check_dtype_preserved"]
    good = check_loss(_two_part_spec(False), checks=checks, raise_on_failure=False)
    assert [r.status for r in good] == ["passed"] * 3
    bad = check_loss(_two_part_spec(True), checks=checks, raise_on_failure=False)
    assert [r.status for r in bad] == ["failed", "passed", "passed"]
