"""The conformance kit itself: each check fails on a loss built to break it, passes on good ones."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

import lossreg
from lossreg import Link, LossModule, LossSpec, Param, as_class_target, as_float_target, reduce
from lossreg.targets import compute_data_params, output_size, task_of_target
from lossreg.testing import (
    LOSS_CHECKS,
    CheckResult,
    LossCase,
    LossCheckError,
    applicable_checks,
    check_loss,
    invalid_values,
    not_applicable_reason,
    parametrize_with_loss_checks,
)

REGISTRY = lossreg.Registry(entry_points=False, load="", block=())


# -- good toy losses -------------------------------------------------------------------------
class CE(LossModule):
    """Plain softmax cross-entropy."""

    def per_sample_loss(self, input, target, **extras):
        labels = as_class_target(target)
        return -input.log_softmax(dim=-1).gather(1, labels.unsqueeze(1)).squeeze(1)


class Squared(LossModule):
    """Squared error, mean over outputs."""

    def __init__(self, *, scale: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.scale = scale

    def per_sample_loss(self, input, target, **extras):
        error = (input - as_float_target(target, input)).square() * self.scale
        return error if error.ndim == 1 else error.mean(dim=1)


def ce_spec(factory: Any = CE, **changes: Any) -> LossSpec:
    fields: dict[str, Any] = {
        "name": "toy_ce",
        "factory": factory,
        "tasks": {"multiclass", "binary"},
        "link": "softmax",
        "summary": "A toy cross-entropy.",
        "reference": "A test fixture.",
    }
    fields.update(changes)
    return LossSpec(**fields)


def sq_spec(factory: Any = Squared, **changes: Any) -> LossSpec:
    fields: dict[str, Any] = {
        "name": "toy_sq",
        "factory": factory,
        "tasks": {"regression"},
        "link": "identity",
        "params": (Param("scale", "float", 1.0, low=0, grid=(1.0, 2.0)),),
        "summary": "A toy squared error.",
        "reference": "A test fixture.",
    }
    fields.update(changes)
    return LossSpec(**fields)


# -- good losses of every kind the kit must handle without false failures -------------------
class LearnedTemperature(CE):
    """Cross-entropy of logits / t with a learned t, initialised at random."""

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.log_t = torch.nn.Parameter(0.1 * torch.randn(()))

    def per_sample_loss(self, input, target, **extras):
        return super().per_sample_loss(input / self.log_t.exp().to(input.dtype), target)


class RunningScale(Squared):
    """Stateful: divides by a running mean of past losses, kept in a buffer."""

    def __init__(self, *, scale: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(scale=scale, reduction=reduction)
        self.register_buffer("running", torch.ones(()))

    def per_sample_loss(self, input, target, **extras):
        per = super().per_sample_loss(input, target) / self.running.clone().to(input.dtype)
        if self.training:
            self.running.mul_(0.9).add_(0.1 * per.detach().mean().to(self.running.dtype))
        return per


class Noisy(Squared):
    """Stochastic: adds noise drawn from torch's generator."""

    def per_sample_loss(self, input, target, **extras):
        per = super().per_sample_loss(input, target)
        return per + 0.01 * torch.rand(per.shape, dtype=per.dtype)


class Annealed(Squared):
    """Epoch-dependent weight, set by set_epoch."""

    def __init__(self, *, scale: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(scale=scale, reduction=reduction)
        self.register_buffer("weight", torch.ones(()))

    def set_epoch(self, epoch: int, max_epochs: int) -> None:
        self.weight.fill_(0.5 + epoch / max(max_epochs - 1, 1))

    def per_sample_loss(self, input, target, **extras):
        return super().per_sample_loss(input, target) * self.weight.to(input.dtype)


class Distillation(CE):
    """Cross-entropy plus KL to a teacher's softmax (fit extra teacher_logits)."""

    def per_sample_loss(self, input, target, *, teacher_logits, **extras):
        log_p = input.log_softmax(dim=-1)
        teacher = teacher_logits.to(input.dtype).log_softmax(dim=-1)
        kl = (teacher.exp() * (teacher - log_p)).sum(dim=-1)
        return super().per_sample_loss(input, target) + kl


class GroupBalanced(CE):
    """Each row weighted by 1 / (rows of its group in the batch) (fit extra group)."""

    def per_sample_loss(self, input, target, *, group, **extras):
        same = (group.unsqueeze(0) == group.unsqueeze(1)).to(input.dtype)
        return super().per_sample_loss(input, target) / same.sum(dim=1)


class ClassCentre(LossModule):
    """Embedding loss: squared distance of each row to its class mean in the batch."""

    def per_sample_loss(self, input, target, **extras):
        labels = as_class_target(target)
        same = (labels.unsqueeze(0) == labels.unsqueeze(1)).to(input.dtype)
        centres = same @ input / same.sum(dim=1, keepdim=True)
        return (input - centres).square().sum(dim=1)


class BatchLevel(torch.nn.Module):
    """per_sample=False: the squared error of the batch-mean residual."""

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = lossreg.reduction.check_reduction(reduction)

    def forward(self, input, target, *, sample_weight=None):
        residual = input - as_float_target(target, input)
        if sample_weight is not None:
            weight = torch.as_tensor(sample_weight, dtype=input.dtype).reshape(-1)
            value = (weight * residual).sum() / weight.sum()
        else:
            value = residual.mean()
        return value.square() * (residual.shape[0] if self.reduction == "sum" else 1)


class LogitAdjusted(CE):
    """Logit-adjusted cross-entropy: a data param (class priors) kept in a buffer."""

    def __init__(self, *, class_priors, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.register_buffer("log_prior", torch.tensor(class_priors).log())

    def per_sample_loss(self, input, target, **extras):
        return super().per_sample_loss(input + self.log_prior.to(input.dtype), target)


GOOD = {
    "cross_entropy": ce_spec(),
    "squared": sq_spec(),
    "learnable": ce_spec(LearnedTemperature, learnable=True),
    "stateful": sq_spec(RunningScale),
    "stochastic": sq_spec(Noisy, stochastic=True),
    "set_epoch": sq_spec(Annealed),
    "teacher_logits": ce_spec(Distillation, fit_extras=("teacher_logits",)),
    "group": ce_spec(GroupBalanced, fit_extras=("group",)),
    "embedding": ce_spec(ClassCentre, tasks={"embedding"}, link="identity"),
    "batch_level": sq_spec(BatchLevel, params=(), per_sample=False),
    "data_params": ce_spec(LogitAdjusted, data_params=("class_priors",)),
}


@pytest.mark.parametrize("kind", list(GOOD))
def test_good_losses_of_every_kind_pass_every_check(kind):
    results = check_loss(
        GOOD[kind],
        checks=[c for c in LOSS_CHECKS if c != "check_estimator_smoke_fit"],
        raise_on_failure=False,
    )
    failed = {r.check: r.message for r in results if r.status == "failed"}
    assert not failed


# -- broken losses, one (or more) per check --------------------------------------------------
class DefaultSum(CE):
    def __init__(self, *, reduction: str = "sum") -> None:
        super().__init__(reduction=reduction)


class IgnoresScale(Squared):
    def __init__(self, *, scale: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(scale=scale, reduction=reduction)
        self.scale = 1.0  # forgets the value it was given


class HiddenParameter(Squared):
    def __init__(self, *, scale: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(scale=scale, reduction=reduction)
        self.temperature = torch.nn.Parameter(torch.ones(()))


class Detached(CE):
    def per_sample_loss(self, input, target, **extras):
        return super().per_sample_loss(input.detach(), target)


class SumIsMean(CE):
    def forward(self, input, target, *, sample_weight=None, **extras):
        reduction = "mean" if self.reduction == "sum" else self.reduction
        return reduce(self.per_sample_loss(input, target), reduction, sample_weight)


class AcceptsAnyReduction(torch.nn.Module):
    """A loss that does not validate its reduction."""

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target, *, sample_weight=None):
        per = -input.log_softmax(-1).gather(1, target.long().reshape(-1, 1)).squeeze(1)
        return (
            per.sum()
            if self.reduction == "sum"
            else (per if self.reduction == "none" else per.mean())
        )


class MeanOverRows(CE):
    def forward(self, input, target, *, sample_weight=None, **extras):
        per = self.per_sample_loss(input, target)
        if sample_weight is None or self.reduction != "mean":
            return reduce(per, self.reduction, sample_weight)
        return (per * sample_weight).sum() / per.shape[0]  # divides by N, not by sum(w)


class NaiveSigmoid(LossModule):
    def per_sample_loss(self, input, target, **extras):
        y = as_float_target(target, input)
        p = torch.sigmoid(input)
        return -(y * torch.log(p) + (1 - y) * torch.log(1 - p))


class WrongGradient(Squared):
    def per_sample_loss(self, input, target, **extras):
        e = input - as_float_target(target, input)
        return e.detach() * e  # value e^2, gradient e instead of 2e


class CastsToFloat32(Squared):
    def per_sample_loss(self, input, target, **extras):
        return super().per_sample_loss(input.float(), target)


class NoRowMean(Squared):
    def per_sample_loss(self, input, target, **extras):
        return (input - as_float_target(target, input)).square()  # (N, K) for K outputs


class PositionWeighted(Squared):
    def per_sample_loss(self, input, target, **extras):
        per = super().per_sample_loss(input, target)
        return per * torch.arange(1, per.shape[0] + 1, dtype=per.dtype)


class SecretlyRandom(Squared):
    def per_sample_loss(self, input, target, **extras):
        return super().per_sample_loss(input, target) + torch.rand(input.shape[0])


class NumpyRandom(Squared):
    def per_sample_loss(self, input, target, **extras):
        noise = torch.as_tensor(np.random.default_rng().random(input.shape[0]), dtype=input.dtype)
        return super().per_sample_loss(input, target) + noise


class Int64Only(CE):
    def per_sample_loss(self, input, target, **extras):
        # (N, 1) labels from an estimator break this gather
        return -input.log_softmax(dim=-1).gather(1, target.unsqueeze(1)).squeeze(1)


class SilentAlpha(CE):
    def __init__(self, *, alpha=None, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.alpha = alpha

    def per_sample_loss(self, input, target, **extras):
        per = super().per_sample_loss(input, target)
        if self.alpha is None:
            return per
        weight = torch.as_tensor(self.alpha, dtype=input.dtype)  # any length >= C "works"
        return weight[as_class_target(target)] * per


class LogScale(Squared):
    def per_sample_loss(self, input, target, **extras):
        return super().per_sample_loss(input, target) * math.log(self.scale)  # -inf at 0


class CountsCalls(Squared):
    def __init__(self, *, scale: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(scale=scale, reduction=reduction)
        self.calls = 0  # state outside the state_dict

    def per_sample_loss(self, input, target, **extras):
        self.calls += 1
        return super().per_sample_loss(input, target) * self.calls


class Unpicklable(Squared):
    def __init__(self, *, scale: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(scale=scale, reduction=reduction)
        self.transform = lambda e: e


class BadSchedule(Squared):
    def __init__(self, *, scale: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(scale=scale, reduction=reduction)
        self.weight = 1.0

    def set_epoch(self, epoch: int, max_epochs: int) -> None:
        self.weight = 1.0 / (max_epochs - 1 - epoch) if epoch < max_epochs - 1 else math.inf

    def per_sample_loss(self, input, target, **extras):
        return super().per_sample_loss(input, target) * self.weight


class BadValidationHook(Squared):
    """Divides by a validation statistic that is 0 for confident (large) outputs."""

    def __init__(self, *, scale: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(scale=scale, reduction=reduction)
        self.register_buffer("factor_", torch.ones(()))

    def on_validation_end(self, input, target, **fields):
        self.factor_.copy_(1.0 / (input.abs().max() < 50).to(self.factor_.dtype))

    def per_sample_loss(self, input, target, **extras):
        return super().per_sample_loss(input, target) * self.factor_.to(input.dtype)


RAW_PROBA = Link("raw", lambda output, criterion=None: output, "proba", "not probabilities")

_ALPHA = Param("alpha", "vector", None, low=0, nullable=True)
_SCALE_FROM_ZERO = (Param("scale", "float", 1.0, low=0, grid=(1.0, 2.0)),)

#: (check, spec, params, part of the expected failure message)
BROKEN: list[tuple[str, LossSpec, dict[str, Any], str]] = [
    ("check_spec_valid", ce_spec(reference=""), {}, "reference"),
    ("check_spec_valid", sq_spec(), {"scale": -1.0}, "'scale'"),
    ("check_constructs_with_defaults", ce_spec(DefaultSum), {}, "default reduction"),
    ("check_hyperparameters_stored", sq_spec(IgnoresScale), {}, "'scale' is 1.0"),
    ("check_learnable_flag", sq_spec(HiddenParameter), {}, "learnable=False"),
    ("check_learnable_flag", sq_spec(learnable=True), {}, "no parameters"),
    ("check_scalar_finite_output", ce_spec(Detached), {}, "does not depend on the input"),
    ("check_reduction_consistency", ce_spec(SumIsMean), {}, "reduction='sum'"),
    ("check_reduction_consistency", ce_spec(AcceptsAnyReduction), {}, "was accepted"),
    ("check_sample_weight_equivalence", ce_spec(MeanOverRows), {}, "weights 2, 0 and 3"),
    (
        "check_finite_gradients_at_extremes",
        ce_spec(NaiveSigmoid, tasks={"binary"}, link="sigmoid"),
        {},
        "not finite",
    ),
    ("check_gradcheck", sq_spec(WrongGradient), {}, "gradcheck failed"),
    ("check_dtype_preserved", sq_spec(CastsToFloat32), {}, "torch.float64 input gave"),
    ("check_permutation_invariance", sq_spec(PositionWeighted), {}, "shuffled"),
    ("check_deterministic", sq_spec(SecretlyRandom), {}, "stochastic=True"),
    ("check_deterministic", sq_spec(NumpyRandom, stochastic=True), {}, "same torch seed"),
    ("check_target_formats", ce_spec(Int64Only), {}, "(N, 1) labels"),
    ("check_multioutput_regression", sq_spec(NoRowMean), {}, "(N, 2) regression targets"),
    ("check_invalid_params_raise", ce_spec(SilentAlpha, params=(_ALPHA,)), {}, "alpha with 4"),
    ("check_param_grid_values_work", sq_spec(LogScale, params=_SCALE_FROM_ZERO), {}, "scale=0"),
    ("check_round_trip", sq_spec(CountsCalls), {}, "state_dict copy"),
    ("check_round_trip", sq_spec(Unpicklable), {}, "does not pickle"),
    ("check_set_epoch", sq_spec(BadSchedule), {}, "set_epoch(9, 10)"),
    ("check_on_validation_end", sq_spec(BadValidationHook), {}, "outputs x100"),
    ("check_link_valid", ce_spec(link=RAW_PROBA), {}, "outside [0, 1]"),
    ("check_estimator_smoke_fit", ce_spec(), {}, "needs lossreg.LossClassifier"),
]


@pytest.mark.parametrize(
    ("check", "spec", "params", "message"),
    BROKEN,
    ids=[f"{c}-{s.factory.__name__}" for c, s, _, _ in BROKEN],
)
def test_a_broken_loss_fails_its_check(check, spec, params, message, monkeypatch):
    _without_estimators(monkeypatch)
    case = LossCase(spec, params)
    assert check in applicable_checks(spec), f"{check} would not even run on this loss"
    with pytest.raises(AssertionError) as info:
        LOSS_CHECKS[check](case)
    assert message in str(info.value)


def test_every_check_has_a_broken_loss():
    assert set(LOSS_CHECKS) == {check for check, *_ in BROKEN}


# -- the estimator smoke fit, against a stand-in estimator -----------------------------------
def _without_estimators(monkeypatch):
    """Make ``lossreg.LossClassifier`` & co. unavailable, as on a branch without estimators."""

    def missing(name):
        raise AttributeError(f"module 'lossreg' has no attribute {name!r}")

    for name in ("LossClassifier", "LossRegressor", "LossEmbedder"):
        monkeypatch.delattr(lossreg, name, raising=False)
    monkeypatch.setattr(lossreg, "__getattr__", missing)


class StandInEstimator:
    """The estimator API the smoke fit relies on: loss by name or spec, history_, criterion_,
    and skorch-style callbacks told when training begins and ends (with the net as a stand-in
    offering module_, criterion_, get_iterator and validation_step).
    """

    def __init__(self, loss, max_iter=5, batch_size=32, random_state=0, callbacks=None, **kwargs):
        self.loss, self.max_iter, self.batch_size = loss, max_iter, batch_size
        self.random_state, self.callbacks = random_state, callbacks or []
        self.loss_params = {k[len("loss__") :]: v for k, v in kwargs.items()}

    def get_iterator(self, data, training=False):
        X_t, y_t = data
        return [
            (X_t[start : start + self.batch_size], y_t[start : start + self.batch_size])
            for start in range(0, len(X_t), self.batch_size)
        ]

    def validation_step(self, batch):
        with torch.no_grad():
            return {"loss": self.criterion_(self.module_(batch[0]), batch[1])}

    def fit(self, X, y, **extras):
        from skorch.history import History

        spec = self.loss if isinstance(self.loss, LossSpec) else lossreg.get_spec(self.loss)
        task = task_of_target(y)
        classes, encoded = np.unique(y, return_inverse=True)
        target = encoded if task in ("binary", "multiclass") else y
        data = compute_data_params(spec.data_params, target, task)
        width = output_size(spec, task, n_classes=len(classes))
        torch.manual_seed(self.random_state)
        net = self.module_ = torch.nn.Linear(X.shape[1], width)
        self.criterion_ = spec.factory(**self.loss_params, **data)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        X_t = torch.as_tensor(X)
        y_t = torch.as_tensor(target)
        self.history_ = History()
        for callback in self.callbacks:
            callback.on_train_begin(self, X=(X_t, y_t))
        for _ in range(self.max_iter):
            self.history_.new_epoch()
            losses = []
            for start in range(0, len(X_t), self.batch_size):
                out = net(X_t[start : start + self.batch_size])
                loss = self.criterion_(out, y_t[start : start + self.batch_size])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
            self.history_.record("train_loss", float(np.mean(losses)))
        for callback in self.callbacks:
            callback.on_train_end(self, X=(X_t, y_t))
        return self


class Flat(CE):
    def per_sample_loss(self, input, target, **extras):
        return (input * 0).sum(dim=-1) + 1.0  # no learning signal


def test_smoke_fit_passes_with_an_estimator_and_a_good_loss(monkeypatch):
    monkeypatch.setattr(lossreg, "LossClassifier", StandInEstimator, raising=False)
    LOSS_CHECKS["check_estimator_smoke_fit"](LossCase(ce_spec()))


def test_smoke_fit_fails_when_the_loss_does_not_train(monkeypatch):
    monkeypatch.setattr(lossreg, "LossClassifier", StandInEstimator, raising=False)
    with pytest.raises(AssertionError, match="did not decrease"):
        LOSS_CHECKS["check_estimator_smoke_fit"](LossCase(ce_spec(Flat)))


# -- applicability, the runner and the pytest decorator --------------------------------------
def test_spec_flags_decide_which_checks_apply():
    spec = sq_spec(per_sample=False, stochastic=True, params=())
    skipped = set(LOSS_CHECKS) - set(applicable_checks(spec))
    assert {
        "check_sample_weight_equivalence",
        "check_permutation_invariance",
        "check_invalid_params_raise",
        "check_set_epoch",
    } <= skipped
    assert "check_set_epoch" in applicable_checks(sq_spec(BadSchedule))
    assert "check_on_validation_end" not in applicable_checks(sq_spec())
    assert "check_on_validation_end" in applicable_checks(sq_spec(BadValidationHook))
    # Ranking and survival losses are fitted by LossRanker / LossSurvivalRegressor; no
    # estimator fits bag targets alone.
    for task in ("ranking", "survival"):
        assert "check_estimator_smoke_fit" in applicable_checks(sq_spec(tasks={task}))
    bag_only = sq_spec(tasks={"bag"})
    assert "check_estimator_smoke_fit" not in applicable_checks(bag_only)
    assert "no estimator fits tasks ['bag']" in not_applicable_reason(
        "check_estimator_smoke_fit", bag_only
    )


def test_check_loss_reports_every_check_and_raises_on_failure():
    with pytest.raises(LossCheckError, match="check_gradcheck") as info:
        check_loss(sq_spec(WrongGradient), checks=["check_gradcheck", "check_deterministic"])
    statuses = {r.check: r.status for r in info.value.results}
    assert statuses == {"check_gradcheck": "failed", "check_deterministic": "passed"}


def test_check_loss_without_raising_and_verbose(capsys):
    results = check_loss(
        "focal",
        {"gamma": 0.0},
        checks=["check_spec_valid", "check_sample_weight_equivalence", "check_set_epoch"],
        registry=REGISTRY,
        raise_on_failure=False,
        verbose=True,
    )
    assert all(isinstance(r, CheckResult) and r.ok for r in results)
    assert [r.status for r in results] == ["passed", "passed", "skipped"]
    out = capsys.readouterr().out
    assert "focal(gamma=0.0) check_spec_valid PASSED" in out


def test_unknown_check_names_are_rejected_with_a_suggestion():
    with pytest.raises(ValueError, match="Did you mean 'check_gradcheck'"):
        check_loss("mse", checks=["check_gradchek"], registry=REGISTRY)


def test_parametrize_ids_marks_and_filters():
    mark = parametrize_with_loss_checks(
        ["mse", ("focal", {"gamma": 0.0}), sq_spec()],
        checks=["check_gradcheck", "check_invalid_params_raise"],
        expected_failed_checks=lambda case: (
            {"check_gradcheck": "known"} if case.spec.name == "toy_sq" else {}
        ),
        registry=REGISTRY,
    )
    argnames, params = mark.args
    assert argnames == ("loss", "check")
    ids = [p.id for p in params]
    assert ids == [
        "mse-check_gradcheck",  # mse has no hyperparameters: no check_invalid_params_raise
        "focal(gamma=0.0)-check_gradcheck",
        "focal(gamma=0.0)-check_invalid_params_raise",
        "toy_sq-check_gradcheck",
        "toy_sq-check_invalid_params_raise",
    ]
    xfails = [p.id for p in params if p.marks]
    assert xfails == ["toy_sq-check_gradcheck"]
    assert params[3].marks[0].kwargs == {"strict": True, "reason": "known"}


@parametrize_with_loss_checks([sq_spec(BadSchedule)], checks=["check_set_epoch"])
@pytest.mark.xfail(strict=True, reason="a broken set_epoch, run through the decorator")
def test_the_decorator_runs_checks(loss, check):
    check(loss)


@pytest.mark.parametrize(
    "param",
    [
        Param("p", k, d, **kw)
        for k, d, kw in [
            ("float", 1.0, {"low": 0, "high": 1}),
            ("float", 0.5, {"low": 0, "high": 1, "closed": "neither"}),
            ("int", 2, {"low": 1}),
            ("bool", True, {}),
            ("choice", "a", {"options": ("a", "b")}),
            ("str", "x", {}),
            ("vector", None, {"low": 0, "nullable": True}),
        ]
    ],
    ids=lambda p: f"{p.kind}-{p.closed}",
)
def test_invalid_values_are_invalid_by_the_schema(param):
    values = invalid_values(param)
    assert values
    assert not any(param.is_valid(v) for v in values)
