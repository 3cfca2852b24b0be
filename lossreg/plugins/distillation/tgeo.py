"""TGeo-KD: a per-row fusion ratio of label CE and KD, learned from the trilateral geometry."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from lossreg import LossModule, as_class_target

from ._private import check_logits, kl_rows, teacher_tensor

__all__ = ["TGeoKD"]

#: Knuth's multiplicative hash constant: spreads consecutive row indices over [0, 2^32)
_HASH = 2654435761
_ADAM_BETAS = (0.9, 0.999)
_ADAM_EPS = 1e-8
#: seed of g_phi's initial weights
_PHI_SEED = 0


class TGeoKD(LossModule):
    r"""Knowledge distillation with a per-row fusion ratio learned by a bilevel (meta) step.

    .. math::

        \ell_i = \alpha_i\,T^2\,\mathrm{KL}\big(\mathrm{softmax}(t_i/T)\,\Vert\,
                 \mathrm{softmax}(z_i/T)\big) + (1-\alpha_i)\,\mathrm{CE}(z_i, y_i),
        \qquad \alpha_i = g_\phi(r_i),

        r_i = \big[\,s_i - p_i,\; s_i - e_{y_i},\; p_i - e_{y_i},\;
              p_i - \bar p_{y_i}\,\big] \in \mathbb{R}^{4C}

    with :math:`s_i = \mathrm{softmax}(z_i)` the student's prediction, :math:`p_i =
    \mathrm{softmax}(t_i)` the teacher's, :math:`e_{y_i}` the one-hot label (the three edges of
    the student / teacher / ground-truth triangle: the intra-sample relations) and
    :math:`\bar p_{y_i}` the teacher's average prediction over the training rows of class
    :math:`y_i` (the inter-sample relation). :math:`g_\phi` is a small MLP (``4C -> hidden_units
    -> 1``, ReLU, sigmoid; its initial weights are drawn as torch's ``Linear`` layers draw
    theirs, from a fixed seed, so two instances of the loss agree). :math:`\alpha_i` weights
    the distillation term, as ``alpha`` does in ``knowledge_distillation``; inside the
    student's update it is a constant (no gradient flows from the loss into :math:`r_i` or
    :math:`\phi`).

    Student logits :math:`z` have shape (N, C); targets are class indices (N,); the teacher's
    logits :math:`t` arrive as the ``teacher_logits`` extra (N, C) (a one-logit binary teacher
    is expanded to ``[0, t]``); ``sample_index`` (N,) identifies each training row. Predict
    with the softmax of the student's logits.

    **Training** :math:`\phi` (bilevel, one-step look-ahead). A fixed share ``val_fraction`` of
    the training rows (chosen by a hash of ``sample_index``) is held out as the validation
    split: those rows give the student no loss (their per-row loss is 0) and serve only the
    outer problem. Before each training step the estimator calls :meth:`meta_step` with the
    network and the batch: a virtual SGD step :math:`\theta' = \theta - \eta\,\nabla_\theta
    \frac{1}{|B|}\sum_{i \in B}\ell_i(\theta, \phi)` on the batch's training rows, then one Adam
    step on :math:`\phi` down the gradient of the cross-entropy of the looked-ahead network
    :math:`f_{\theta'}` on the batch's held-out rows (second-order, through
    :math:`\theta'(\phi)`). The student's own step then uses the updated :math:`\phi`. The class
    means :math:`\bar p_c` accumulate over the training rows each meta step sees (the teacher's
    logits are fixed, so after one epoch they are the fold's class means); a class not seen yet
    uses :math:`\bar p_{y_i} = p_i`. Without ``sample_index`` no row is held out and
    :meth:`meta_step` does nothing: :math:`\phi` stays at its initialisation.

    Parameters
    ----------
    n_classes : int >= 2
        Number of classes C (a data param: the width of :math:`g_\phi`'s input is 4C).
    temperature : float in (0, inf), default=4.0
        Softening temperature :math:`T` of the distillation term.
    hidden_units : int >= 1, default=32
        Width of :math:`g_\phi`'s hidden layer.
    meta_lr : float in (0, inf), default=1e-3
        Adam learning rate of :math:`\phi`.
    lookahead_lr : float in (0, inf), default=0.1
        Step size :math:`\eta` of the virtual SGD step of the student.
    val_fraction : float in [0, 1), default=0.1
        Share of the training rows held out as the validation split of the outer problem.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against the paper's abstract and introduction (arXiv 2312.15112, the ICLR 2024
    page): a sample-wise fusion ratio from "the intra-sample trilateral geometric relations
    among the student prediction (S), teacher prediction (T), and ground truth (G)" and "the
    teacher's global average prediction T-bar for samples within the same class", mapped by "a
    simple neural network" trained "in a bilevel-optimization manner". The paper's method
    section (the exact composition of :math:`r_i`, the network's size, which term
    :math:`\alpha_i` multiplies, the outer objective and its optimiser) could not be read in the
    searchable sources and no official code was found; the catalogue's reconstruction (edges
    :math:`s-t, s-g, t-g` and :math:`t - \bar t_y`, bilevel on a validation split) is what is
    implemented, with these choices of ours: predictions as softmax probabilities at
    :math:`T = 1`; the outer loss is the validation cross-entropy; the bilevel problem is
    approximated by one virtual SGD step per batch (as in Meta-Weight-Net), with the validation
    split taken from the training fold and used by the outer problem only; :math:`\alpha_i`
    weights the KD term (the catalogue writes it on the CE term; the learned ratio makes the two
    conventions equivalent up to :math:`\alpha \leftrightarrow 1-\alpha`). :math:`\phi`, the
    class means and the Adam moments are buffers, not parameters: the estimator's optimiser
    must not train :math:`\phi` on the training loss (that would just pick the smaller term).
    The training loss is not comparable from epoch to epoch (the ratios move, and with them the
    loss's scale) and may rise every epoch: train with ``n_iter_no_change`` above ``max_iter``
    (or ``early_stopping=True``), not the default stall rule on ``train_loss``, which stops
    the fit after ``n_iter_no_change`` epochs of a rising loss whatever ``tol`` is.

    References
    ----------
    C. Hu, H. Wu, X. Li, C. Ma, X. Chen, J. Yan, B. Wang, X. Liu. "Less or More From Teacher:
    Exploiting Trilateral Geometry For Knowledge Distillation." ICLR 2024, arXiv:2312.15112.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> loss = TGeoKD(n_classes=2, reduction="none")
    >>> z = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    >>> t = torch.tensor([[3.0, 0.0], [0.0, 1.0], [4.0, 0.0], [-1.0, 2.0]])
    >>> out = loss(z, torch.tensor([0, 1, 0, 1]), teacher_logits=t)
    >>> out.shape, bool((out > 0).all())
    (torch.Size([4]), True)
    """

    def __init__(
        self,
        *,
        n_classes: int,
        temperature: float = 4.0,
        hidden_units: int = 32,
        meta_lr: float = 1e-3,
        lookahead_lr: float = 0.1,
        val_fraction: float = 0.1,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        problems = []
        if int(n_classes) < 2:
            problems.append(f"n_classes must be an int >= 2. Got {n_classes!r}.")
        if int(hidden_units) < 1:
            problems.append(f"hidden_units must be an int >= 1. Got {hidden_units!r}.")
        for name, value in (
            ("temperature", temperature),
            ("meta_lr", meta_lr),
            ("lookahead_lr", lookahead_lr),
        ):
            if not value > 0:
                problems.append(f"{name} must be a float in (0, inf). Got {value!r}.")
        if not 0 <= val_fraction < 1:
            problems.append(f"val_fraction must be a float in [0, 1). Got {val_fraction!r}.")
        if problems:
            raise ValueError(" ".join(problems))
        self.n_classes = int(n_classes)
        self.temperature = temperature
        self.hidden_units = int(hidden_units)
        self.meta_lr = meta_lr
        self.lookahead_lr = lookahead_lr
        self.val_fraction = val_fraction
        # g_phi's weights, initialised as torch's Linear layers are, from a fixed seed: the loss
        # is then a function of its hyperparameters (two instances agree, as the estimator's
        # clones and the reduction contract need) and the global generator is left untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_PHI_SEED)
            first = nn.Linear(4 * self.n_classes, self.hidden_units)
            last = nn.Linear(hidden_units, 1)
        nn.init.zeros_(last.bias)  # alpha starts near 1/2 for every row
        for name, value in _weights(first, last).items():
            self.register_buffer(name, value.detach().clone())
            self.register_buffer(f"{name}_m", torch.zeros_like(value))  # Adam moments
            self.register_buffer(f"{name}_v", torch.zeros_like(value))
        self.register_buffer("meta_steps", torch.zeros(()))
        self.register_buffer("teacher_class_sum", torch.zeros(self.n_classes, self.n_classes))
        self.register_buffer("teacher_class_count", torch.zeros(self.n_classes))

    # -- the fusion ratio ------------------------------------------------------------------
    def relations(
        self, student_logits: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """The (N, 4C) relation vectors :math:`r_i` (no gradient to the student's logits)."""
        if student_logits.shape[1] != self.n_classes:
            raise ValueError(
                f"tgeo_kd was built for n_classes={self.n_classes} but the logits have "
                f"{student_logits.shape[1]} columns; pass n_classes equal to the output width."
            )
        s = student_logits.detach().softmax(dim=-1)
        p = teacher.softmax(dim=-1)
        e = torch.nn.functional.one_hot(labels, self.n_classes).to(s.dtype)
        count = self.teacher_class_count.to(s.dtype)[labels]
        means = self.teacher_class_sum.to(s.dtype)[labels] / count.clamp_min(1).unsqueeze(1)
        # A class without rows seen yet has no mean: its rows get a zero inter-sample relation.
        p_bar = torch.where((count > 0).unsqueeze(1), means, p)
        return torch.cat([s - p, s - e, p - e, p - p_bar], dim=1)

    def fusion_ratio(
        self,
        student_logits: torch.Tensor,
        teacher: torch.Tensor,
        labels: torch.Tensor,
        weights: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """:math:`\\alpha_i = g_\\phi(r_i)`, (N,); ``weights`` replaces :math:`\\phi`."""
        r = self.relations(student_logits, teacher, labels)
        w1, b1, w2, b2 = [w.to(r.dtype) for w in (weights or self._phi())]
        hidden = torch.relu(r @ w1.T + b1)
        return torch.sigmoid(hidden @ w2 + b2)

    def held_out(self, sample_index: torch.Tensor) -> torch.Tensor:
        """Boolean (N,): the rows of the validation split (a fixed hash of the row index)."""
        index = torch.as_tensor(sample_index).reshape(-1).to(torch.int64)
        spread = (index * _HASH) % (2**32)
        return spread < int(self.val_fraction * 2**32)

    # -- the loss --------------------------------------------------------------------------
    def _rows(
        self,
        input: torch.Tensor,
        teacher: torch.Tensor,
        labels: torch.Tensor,
        alpha: torch.Tensor,
    ) -> torch.Tensor:
        ce = -input.log_softmax(dim=-1).gather(1, labels.unsqueeze(1)).squeeze(1)
        t = self.temperature
        kl = kl_rows((teacher / t).log_softmax(dim=-1), (input / t).log_softmax(dim=-1))
        return alpha * t * t * kl + (1.0 - alpha) * ce

    def per_sample_loss(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        teacher_logits: torch.Tensor | None = None,
        sample_index: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        check_logits(input)
        teacher = teacher_tensor(teacher_logits, input)
        labels = as_class_target(target)
        with torch.no_grad():
            alpha = self.fusion_ratio(input, teacher, labels)
        rows = self._rows(input, teacher, labels, alpha)
        if sample_index is None or self.val_fraction == 0:
            return rows
        # validation rows train phi only (meta_step), never the student
        return rows * (~self.held_out(sample_index).to(input.device)).to(rows.dtype)

    # -- the outer problem -----------------------------------------------------------------
    def meta_step(
        self,
        module: nn.Module,
        x: torch.Tensor,
        target: torch.Tensor,
        *,
        teacher_logits: torch.Tensor | None = None,
        sample_index: torch.Tensor | None = None,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> None:
        """One look-ahead step of the bilevel problem: update :math:`\\phi` on held-out rows.

        Called by the estimator before each training step with the network ``module`` (its
        parameters are read, not changed: no gradient accumulates in them) and the batch's
        inputs ``x`` (N, D), targets and fit extras. Does nothing without ``sample_index``,
        with ``val_fraction=0``, or when the batch has no training or no held-out row.
        """
        if sample_index is None or self.val_fraction == 0:
            return
        labels = as_class_target(target).to(x.device)
        held = self.held_out(sample_index).to(x.device)
        train, valid = ~held, held
        params = dict(module.named_parameters())
        # copies: the look-ahead passes must not move batch-norm running statistics
        state = {**params, **{n: b.clone() for n, b in module.named_buffers()}}
        if not bool(train.any()):
            return
        with torch.enable_grad():
            logits = functional_call(module, state, (x[train],))
            teacher = teacher_tensor(_rows_of(teacher_logits, train), logits)
            self._add_class_means(teacher.detach(), labels[train])
            if not bool(valid.any()):
                return
            phi = [w.detach().clone().requires_grad_(True) for w in self._phi()]
            alpha = self.fusion_ratio(logits, teacher, labels[train], weights=phi)
            rows = self._rows(logits, teacher, labels[train], alpha)
            inner = _weighted_mean(rows, _rows_of(sample_weight, train))
            names = [n for n, p in params.items() if p.requires_grad]
            grads = torch.autograd.grad(
                inner, [params[n] for n in names], create_graph=True, allow_unused=True
            )
            looked = dict(state)
            for name, grad in zip(names, grads, strict=True):
                if grad is not None:
                    looked[name] = params[name] - self.lookahead_lr * grad
            val_logits = functional_call(module, looked, (x[valid],))
            val_ce = torch.nn.functional.cross_entropy(val_logits, labels[valid], reduction="none")
            outer = _weighted_mean(val_ce, _rows_of(sample_weight, valid))
            phi_grads = torch.autograd.grad(outer, phi, allow_unused=True)
        self._adam(phi_grads)

    def _phi(self) -> list[torch.Tensor]:
        return [self.phi_w1, self.phi_b1, self.phi_w2, self.phi_b2]

    @torch.no_grad()
    def _add_class_means(self, teacher: torch.Tensor, labels: torch.Tensor) -> None:
        probs = teacher.softmax(dim=-1).to(self.teacher_class_sum.dtype)
        self.teacher_class_sum.index_add_(0, labels, probs)
        ones = torch.ones_like(labels, dtype=self.teacher_class_count.dtype)
        self.teacher_class_count.index_add_(0, labels, ones)

    @torch.no_grad()
    def _adam(self, grads: tuple[torch.Tensor | None, ...]) -> None:
        """One Adam step (Kingma & Ba, bias-corrected) on phi's buffers."""
        self.meta_steps += 1
        step = float(self.meta_steps)
        beta1, beta2 = _ADAM_BETAS
        for name, grad in zip(("phi_w1", "phi_b1", "phi_w2", "phi_b2"), grads, strict=True):
            if grad is None:
                continue
            weight, m, v = (getattr(self, name + s) for s in ("", "_m", "_v"))
            grad = grad.to(weight.dtype)
            m.mul_(beta1).add_(grad, alpha=1 - beta1)
            v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            m_hat = m / (1 - beta1**step)
            v_hat = v / (1 - beta2**step)
            weight.sub_(self.meta_lr * m_hat / (v_hat.sqrt() + _ADAM_EPS))

    def extra_repr(self) -> str:
        return (
            f"n_classes={self.n_classes}, temperature={self.temperature}, "
            f"hidden_units={self.hidden_units}, meta_lr={self.meta_lr}, "
            f"lookahead_lr={self.lookahead_lr}, val_fraction={self.val_fraction}, "
            f"reduction={self.reduction!r}"
        )


def _weights(first: nn.Linear, last: nn.Linear) -> dict[str, torch.Tensor]:
    return {
        "phi_w1": first.weight,
        "phi_b1": first.bias,
        "phi_w2": last.weight.reshape(-1),
        "phi_b2": last.bias.reshape(()),
    }


def _rows_of(values: Any, mask: torch.Tensor) -> Any:
    """``values[mask]`` for a per-row tensor (or array); None stays None."""
    if values is None:
        return None
    return torch.as_tensor(values, device=mask.device)[mask]


def _weighted_mean(values: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    if weight is None:
        return values.mean()
    weight = weight.to(values.dtype).reshape(-1)
    return (values * weight).sum() / weight.sum().clamp_min(math.ulp(1.0))
