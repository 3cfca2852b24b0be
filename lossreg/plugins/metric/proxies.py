"""Proxy losses: Proxy-NCA, SoftTriple, centre (per row) and Proxy-Anchor (batch-level)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lossreg import LossModule, as_class_target

from ._classes import ClassVectors, check_width, replace_target_logit
from ._private import BatchLoss, neg_inf

__all__ = ["Center", "ProxyAnchor", "ProxyNCA", "SoftTriple"]


class ProxyNCA(ClassVectors):
    r"""Proxy-NCA: NCA against one learnable proxy per class, positive proxy left out below.

    .. math::

        \ell_i = -\log\frac{e^{-s\,d(\hat f_i,\hat p_{y_i})}}
                          {\sum_{j\ne y_i}e^{-s\,d(\hat f_i,\hat p_j)}}
               = s\,d_{i,y_i} + \operatorname{logsumexp}_{j\ne y_i}(-s\,d_{ij})

    with :math:`d` the squared Euclidean distance between L2-normalised embeddings and proxies
    (``weight``, shape (n_classes, embedding_dim)). The loss can be negative.

    Input: embeddings (N, ``embedding_dim``) float; target: int labels (N,).
    ``logits(embeddings)`` returns :math:`-s\,d` (the nearest proxy has the largest logit).

    Parameters
    ----------
    softmax_scale : float in (0, inf), default=1.0
        :math:`s`, as PML's ``softmax_scale``.
    n_classes, embedding_dim : int
        Data params; needs ``n_classes >= 2``.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The paper's NCA denominator excludes the positive proxy (followed here); PML's
    ``ProxyNCALoss`` includes it (a softmax over all proxies), so the reference test is a float64
    loop. Proxies usually want a larger learning rate than the network (optimizer groups).

    References
    ----------
    Y. Movshovitz-Attias, A. Toshev, T. K. Leung, S. Ioffe, S. Singh. "No Fuss Distance Metric
    Learning using Proxies." ICCV 2017, arXiv:1703.07464.

    Examples
    --------
    >>> import torch
    >>> loss = ProxyNCA(n_classes=2, embedding_dim=2, reduction="none")
    >>> _ = loss.weight.data.copy_(torch.eye(2))
    >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
    >>> [round(v, 4) for v in loss(x, torch.tensor([0, 0, 1, 1])).tolist()]
    [-2.0, -0.4, -2.0, -2.8]
    """

    def __init__(
        self,
        *,
        n_classes: int,
        embedding_dim: int,
        softmax_scale: float = 1.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(n_classes=n_classes, embedding_dim=embedding_dim, reduction=reduction)
        self.softmax_scale = softmax_scale

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Return :math:`-s\\,d`: (N, C), the squared distance to each proxy, negated and scaled."""
        # On the unit sphere, ||f - p||^2 = 2 - 2 cos.
        return -self.softmax_scale * (2 - 2 * self.cosine(embeddings))

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        labels = as_class_target(target)
        logits = self.logits(input)
        positive = F.one_hot(labels, logits.shape[1]).bool()
        others = torch.logsumexp(logits.masked_fill(positive, neg_inf(logits)), dim=1)
        return others - logits.gather(1, labels.unsqueeze(1)).squeeze(1)

    def extra_repr(self) -> str:
        return (
            f"n_classes={self.n_classes}, embedding_dim={self.embedding_dim}, "
            f"softmax_scale={self.softmax_scale}, reduction={self.reduction!r}"
        )


class ProxyAnchor(BatchLoss):
    r"""Proxy-Anchor loss: each proxy is an anchor against the batch (batch-level).

    .. math::

        L = \frac{1}{|P^+|}\sum_{p\in P^+}
              \log\Big(1+\sum_{x\in X_p^+}e^{-\alpha(s(x,p)-\delta)}\Big)
          + \frac{1}{|P|}\sum_{p\in P}\log\Big(1+\sum_{x\in X_p^-}e^{\alpha(s(x,p)+\delta)}\Big)

    with :math:`s` the cosine, :math:`P` all proxies (``proxies``, shape (n_classes,
    embedding_dim)), :math:`P^+` those whose class is in the batch, :math:`X_p^\pm` the batch rows
    of (not of) the proxy's class.

    Input: embeddings (N, ``embedding_dim``) float; target: int labels (N,). No per-row form:
    ``reduction`` is "mean" or "sum" (the formula above either way; the terms are per proxy), and
    ``sample_weight`` is not supported.

    Parameters
    ----------
    alpha : float in (0, inf), default=32.0
        Scale :math:`\alpha`.
    margin : float in [0, inf), default=0.1
        :math:`\delta`.
    n_classes, embedding_dim : int
        Data params.
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    Matches PML's ``ProxyAnchorLoss`` (same divisors). Proxies are initialised with Kaiming
    normal (fan-out) as in the official code; the paper trains them with a 100x learning rate.
    ``logits(embeddings)`` returns :math:`\alpha\cos` to the proxies.

    References
    ----------
    S. Kim, D. Kim, M. Cho, S. Kwak. "Proxy Anchor Loss for Deep Metric Learning." CVPR 2020,
    arXiv:2003.13911.

    Examples
    --------
    >>> import torch
    >>> loss = ProxyAnchor(n_classes=2, embedding_dim=2, alpha=4.0)
    >>> _ = loss.proxies.data.copy_(torch.eye(2))
    >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
    >>> round(loss(x, torch.tensor([0, 0, 1, 1])).item(), 4)
    2.038
    """

    def __init__(
        self,
        *,
        n_classes: int,
        embedding_dim: int,
        alpha: float = 32.0,
        margin: float = 0.1,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.n_classes = n_classes
        self.embedding_dim = embedding_dim
        self.alpha = alpha
        self.margin = margin
        self.proxies = nn.Parameter(torch.empty(int(n_classes), int(embedding_dim)))
        nn.init.kaiming_normal_(self.proxies, mode="fan_out")

    def cosine(self, input: torch.Tensor) -> torch.Tensor:
        """Return the (N, C) cosine between each embedding and each proxy."""
        x = F.normalize(check_width(input, self.embedding_dim), dim=1)
        return x @ F.normalize(self.proxies.to(input.dtype), dim=1).T

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Return :math:`\\alpha\\cos`, the (N, C) logits without margin."""
        return self.alpha * self.cosine(embeddings)

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        if sample_weight is not None:
            raise ValueError(
                "proxy_anchor is a batch-level loss over proxies and cannot honour "
                "sample_weight; drop it or use a per-row loss such as proxy_nca."
            )
        labels = as_class_target(target)
        cos = self.cosine(input)
        pos = F.one_hot(labels, self.n_classes).bool()  # (N, C): row of the proxy's class
        zero = cos.new_zeros(1, cos.shape[1])

        def log1p_sum(z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            z = torch.cat([z.masked_fill(~mask, neg_inf(z)), zero], dim=0)
            return torch.logsumexp(z, dim=0)  # per proxy; 0 where the mask is empty

        pos_terms = log1p_sum(-self.alpha * (cos - self.margin), pos)
        neg_terms = log1p_sum(self.alpha * (cos + self.margin), ~pos)
        n_with_pos = pos.any(dim=0).sum().clamp_min(1)
        loss = pos_terms.sum() / n_with_pos + neg_terms.sum() / self.n_classes
        return loss

    def extra_repr(self) -> str:
        return (
            f"n_classes={self.n_classes}, embedding_dim={self.embedding_dim}, "
            f"alpha={self.alpha}, margin={self.margin}, reduction={self.reduction!r}"
        )


class Center(ClassVectors):
    r"""Centre loss with its softmax classifier, on the network's deep features.

    .. math::

        \ell_i = -\log\mathrm{softmax}(W h_i + b)_{y_i}
                 + \frac{\lambda}{2}\lVert h_i - c_{y_i}\rVert^2

    The paper trains the softmax layer :math:`(W, b)` on the same deep features :math:`h` that the
    centres :math:`c_j` pull together; both belong to this module (``weight`` is :math:`W`,
    ``bias`` :math:`b`, ``centers`` :math:`c`), so the network outputs the features (N, D).
    ``logits(embeddings)`` returns :math:`Wh+b`, the classifier's logits.

    Centres are either learnable parameters (``update="learnable"``) or a buffer moved by the
    paper's rule during training (``update="rule"``): after the loss is computed,
    :math:`c_j \leftarrow c_j - \alpha\sum_{i:y_i=j}(c_j-h_i)/(1+n_j)` over the batch (only in
    ``train()`` mode with gradients enabled; the state lives in the ``centers`` buffer).

    Parameters
    ----------
    center_weight : float in [0, inf), default=0.003
        :math:`\lambda` (the paper's 0.003-0.01 for faces; up to 0.1 for small problems).
        0 gives plain cross-entropy on the module's classifier.
    update : {"learnable", "rule"}, default="learnable"
    alpha : float in (0, 1], default=0.5
        Centre learning rate of the rule update.
    n_classes, embedding_dim : int
        Data params.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The catalogue writes :math:`\tfrac12\lVert h-c\rVert^2` (as the paper); KaiyangZhou's
    popular implementation drops the :math:`\tfrac12`. ``update="learnable"`` is the default
    because it keeps the loss stateless; the paper uses the rule. With a shared optimizer the
    learnable centres move at the network's learning rate. The centre term alone collapses the
    features, which is why the classifier is part of the loss.

    References
    ----------
    Y. Wen, K. Zhang, Z. Li, Y. Qiao. "A Discriminative Feature Learning Approach for Deep
    Face Recognition." ECCV 2016, doi:10.1007/978-3-319-46478-7_31.

    Examples
    --------
    >>> import torch
    >>> loss = Center(n_classes=2, embedding_dim=2, center_weight=1.0, reduction="none")
    >>> _ = loss.weight.data.copy_(torch.eye(2)); _ = loss.bias.data.zero_()
    >>> _ = loss.centers.data.copy_(torch.eye(2))
    >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
    >>> [round(v, 4) for v in loss(x, torch.tensor([0, 0, 1, 1])).tolist()]
    [0.3133, 0.7981, 0.3133, 0.4204]
    """

    def __init__(
        self,
        *,
        n_classes: int,
        embedding_dim: int,
        center_weight: float = 0.003,
        update: str = "learnable",
        alpha: float = 0.5,
        reduction: str = "mean",
    ) -> None:
        super().__init__(n_classes=n_classes, embedding_dim=embedding_dim, reduction=reduction)
        if update not in ("learnable", "rule"):
            raise ValueError(f"update must be 'learnable' or 'rule'. Got {update!r}.")
        self.center_weight = center_weight
        self.update = update
        self.alpha = alpha
        self.bias = nn.Parameter(torch.zeros(int(n_classes)))
        centers = torch.randn(int(n_classes), int(embedding_dim))
        if update == "learnable":
            self.centers = nn.Parameter(centers)
        else:
            self.register_buffer("centers", centers)

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Return :math:`Wh+b`, the (N, C) logits of the loss's softmax classifier."""
        h = check_width(embeddings, self.embedding_dim)
        return h @ self.weight.to(h.dtype).T + self.bias.to(h.dtype)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        labels = as_class_target(target)
        logits = self.logits(input)
        ce = torch.logsumexp(logits, dim=1) - logits.gather(1, labels.unsqueeze(1)).squeeze(1)
        centers = self.centers.to(input.dtype)[labels]
        loss = ce + 0.5 * self.center_weight * (input - centers).square().sum(dim=1)
        if self.update == "rule" and self.training and torch.is_grad_enabled():
            self._rule_update(input.detach(), labels)
        return loss

    @torch.no_grad()
    def _rule_update(self, h: torch.Tensor, labels: torch.Tensor) -> None:
        centers = self.centers
        diff = torch.zeros_like(centers).index_add_(
            0, labels, (centers[labels] - h.to(centers.dtype))
        )
        counts = torch.bincount(labels, minlength=centers.shape[0]).to(centers.dtype)
        centers.sub_(self.alpha * diff / (1 + counts).unsqueeze(1))

    def extra_repr(self) -> str:
        return (
            f"n_classes={self.n_classes}, embedding_dim={self.embedding_dim}, "
            f"center_weight={self.center_weight}, update={self.update!r}, alpha={self.alpha}, "
            f"reduction={self.reduction!r}"
        )


class SoftTriple(LossModule):
    r"""SoftTriple loss: a softmax over classes, each represented by K learnable centres.

    .. math::

        S'_{i,c} = \sum_k \mathrm{softmax}_k\big(x_i^\top w_c^k/\gamma\big)\, x_i^\top w_c^k,
        \qquad
        \ell_i = -\log\frac{e^{\lambda(S'_{i,y_i}-\delta)}}
                 {e^{\lambda(S'_{i,y_i}-\delta)}+\sum_{j\ne y_i}e^{\lambda S'_{i,j}}}
                 + \tau\,R, \qquad
        R = \frac{\sum_c\sum_{t<s}\sqrt{2+10^{-5}-2\,w_c^{t\top}w_c^s}}{C K(K-1)}

    with L2-normalised embeddings :math:`x` and centres :math:`w` (``centers``, shape
    (n_classes * K, embedding_dim), class-major). The centre regulariser :math:`R` (which merges
    redundant centres) is the same for every row, so it is added to each row's loss: the mean
    equals the official ``lossClassify + tau * reg``.

    Input: embeddings (N, ``embedding_dim``) float; target: int labels (N,).
    ``logits(embeddings)`` returns :math:`\lambda S'` (no margin).

    Parameters
    ----------
    centers_per_class : int in [1, inf), default=10
        :math:`K`.
    la : float in (0, inf), default=20.0
        :math:`\lambda`, the logit scale.
    gamma : float in (0, inf), default=0.1
        :math:`\gamma`, the temperature of the soft assignment to centres.
    margin : float in [0, inf), default=0.01
        :math:`\delta`.
    tau : float in [0, inf), default=0.2
        Weight of the centre regulariser (0 switches it off).
    n_classes, embedding_dim : int
        Data params.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against the official code (idstcv/SoftTriple ``loss/SoftTriple.py``): same
    formula, defaults from the paper. The classification term matches PML's
    ``SoftTripleLoss`` (which leaves the regulariser to a separate ``SparseCentersRegularizer``).
    The sqrt's :math:`10^{-5}` keeps the gradient finite when two centres coincide.

    References
    ----------
    Q. Qian, L. Shang, B. Sun, J. Hu, H. Li, R. Jin. "SoftTriple Loss: Deep Metric Learning
    Without Triplet Sampling." ICCV 2019, arXiv:1909.05235.

    Examples
    --------
    >>> import torch
    >>> loss = SoftTriple(n_classes=2, embedding_dim=2, centers_per_class=1, reduction="none")
    >>> _ = loss.centers.data.copy_(torch.eye(2))
    >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
    >>> [round(v, 4) for v in loss(x, torch.tensor([0, 0, 1, 1])).tolist()]
    [0.0, 0.0221, 0.0, 0.0]
    """

    def __init__(
        self,
        *,
        n_classes: int,
        embedding_dim: int,
        centers_per_class: int = 10,
        la: float = 20.0,
        gamma: float = 0.1,
        margin: float = 0.01,
        tau: float = 0.2,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.n_classes = n_classes
        self.embedding_dim = embedding_dim
        self.centers_per_class = centers_per_class
        self.la = la
        self.gamma = gamma
        self.margin = margin
        self.tau = tau
        k, c = int(centers_per_class), int(n_classes)
        self.centers = nn.Parameter(torch.empty(c * k, int(embedding_dim)))
        nn.init.kaiming_uniform_(self.centers, a=5**0.5)
        pairs = torch.triu(torch.ones(k, k, dtype=torch.bool), diagonal=1)
        self.register_buffer("same_class_pairs_", torch.block_diag(*[pairs] * c), persistent=False)

    def similarity(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Return :math:`S'`, the (N, C) soft-max-pooled similarity to each class's centres."""
        x = F.normalize(check_width(embeddings, self.embedding_dim), dim=1)
        w = F.normalize(self.centers.to(x.dtype), dim=1)
        sim = (x @ w.T).reshape(x.shape[0], int(self.n_classes), int(self.centers_per_class))
        return (sim / self.gamma).softmax(dim=2).mul(sim).sum(dim=2)

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Return :math:`\\lambda S'`, the (N, C) logits without margin."""
        return self.la * self.similarity(embeddings)

    def regularizer(self, dtype: torch.dtype) -> torch.Tensor:
        """Return the centre regulariser :math:`R` (0 when K = 1)."""
        k, c = int(self.centers_per_class), int(self.n_classes)
        if k < 2:
            return self.centers.new_zeros((), dtype=dtype)
        w = F.normalize(self.centers.to(dtype), dim=1)
        gram = (w @ w.T)[self.same_class_pairs_]
        return (2.0 + 1e-5 - 2.0 * gram).sqrt().sum() / (c * k * (k - 1))

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        labels = as_class_target(target)
        logits = self.logits(input)
        target_logit = logits.gather(1, labels.unsqueeze(1)).squeeze(1) - self.la * self.margin
        loss = replace_target_logit(logits, labels, target_logit)
        if self.tau:
            loss = loss + self.tau * self.regularizer(input.dtype)
        return loss

    def extra_repr(self) -> str:
        return (
            f"n_classes={self.n_classes}, embedding_dim={self.embedding_dim}, "
            f"centers_per_class={self.centers_per_class}, la={self.la}, gamma={self.gamma}, "
            f"margin={self.margin}, tau={self.tau}, reduction={self.reduction!r}"
        )
