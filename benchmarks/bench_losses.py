"""Loss kernels: forward + backward time of every built-in loss against an independent reference.

Each registered loss is built with ``lossreg.create_loss`` (defaults, ``reduction="mean"``, the
data params a training fold would give it) and run forward + backward on random outputs at
batch sizes 256 and 8192 and class counts 2, 10 and 100. Where another library ships the same
loss (torch.nn.functional, kornia, pytorch-metric-learning), that implementation runs on the
same tensors in interleaved repetitions; the figure is the median time per call and the ratio
lossreg / reference (> 1.2× is flagged). Losses with no independent implementation get their
own time only, in a second table.

How the class count maps to a loss's task: 2 classes is the binary task when the loss takes
it (one logit for sigmoid losses), else multiclass; 10 and 100 are multiclass, or that many
labels for multilabel losses; binary-only losses run at 2 only; regression losses run once per
batch size, on one target column.

Time budget. By default every function is timed in 7 interleaved repetitions of ~10 ms blocks,
and a loss whose first two calls (forward + backward; the first runs while building the case)
both take longer than ``--max-call-ms`` (250 ms) is not repeated: its row shows the faster of
the two, marked †, and the larger sizes of that loss (at least as many rows and classes) are
skipped and listed under "Not run". (A second call keeps a warm-up or a stall of a busy machine
from passing for a slow loss.)
A few pairwise or per-class-iterative losses (seconds to a minute per call at 8192 rows) would
otherwise take most of the run. ``--full`` times everything, in ~20 ms blocks.

Run: ``python benchmarks/bench_losses.py [--quick | --full] [--no-record] [--only NAME ...]``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import kornia.losses
import numpy as np
import torch
import torch.nn.functional as F
from _common import append_results, markdown_table, median
from pytorch_metric_learning import distances as pml_distances
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners
from pytorch_metric_learning import reducers as pml_reducers

import lossreg
from lossreg.targets import compute_data_params, output_size

FLAG = 1.2  # lossreg / reference above this is flagged


@dataclass
class Case:
    """One loss at one (batch size, class count): its inputs, in lossreg's formats."""

    task: str
    n_rows: int
    n_classes: int
    y: np.ndarray  # encoded targets, as an estimator would hold them
    x: torch.Tensor  # module output, requires grad
    target: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    data_params: dict[str, Any] = field(default_factory=dict)
    features: torch.Tensor | None = None  # hidden features, for losses that take them
    first_call_s: float = math.nan  # the forward + backward of build_case's check

    def input(self, x: torch.Tensor) -> Any:
        """What the loss receives as its input: ``x``, or ``(x, features)``."""
        return x if self.features is None else (x, self.features)

    @property
    def labels(self) -> torch.Tensor:
        return torch.as_tensor(self.y, dtype=torch.int64)

    @property
    def indicator(self) -> torch.Tensor:
        return torch.as_tensor(self.y, dtype=torch.float32)


# -- independent references ------------------------------------------------------------------
# Each takes the case and returns a closure computing the same scalar as the lossreg loss with
# its defaults and reduction="mean", from the same module output ``x``. Whatever depends only on
# the targets (class weights from counts, ±1 signs) is prepared outside the timed closure, as a
# training loop would prepare it once.
Reference = Callable[[Case], Callable[[torch.Tensor], torch.Tensor]]


def _cross_entropy(case: Case) -> Callable[[torch.Tensor], torch.Tensor]:
    labels = case.labels
    return lambda x: F.cross_entropy(x, labels)


def _weighted_cross_entropy(case: Case) -> Callable[[torch.Tensor], torch.Tensor]:
    # lossreg's default class_weight is "balanced" from the fold's counts (sklearn's formula).
    counts = torch.tensor(case.data_params["class_counts"], dtype=torch.float32)
    weight = counts.sum() / (len(counts) * counts.clamp_min(1))
    labels = case.labels
    return lambda x: F.cross_entropy(x, labels, weight=weight)


def _focal(case: Case) -> Callable[[torch.Tensor], torch.Tensor]:
    labels, n = case.labels, case.n_rows
    # kornia keeps the class axis (zero off the target class): sum / rows = mean of row losses
    return lambda x: kornia.losses.focal_loss(x, labels, alpha=None, gamma=2.0, reduction="sum") / n


def _bce(case: Case) -> Callable[[torch.Tensor], torch.Tensor]:
    y = case.target.reshape(case.x.shape)
    return lambda x: F.binary_cross_entropy_with_logits(x, y)


def _binary_focal(case: Case) -> Callable[[torch.Tensor], torch.Tensor]:
    y = case.target.reshape(case.x.shape)
    return lambda x: kornia.losses.binary_focal_loss_with_logits(
        x, y, alpha=0.25, gamma=2.0, reduction="mean"
    )


def _lovasz_hinge(case: Case) -> Callable[[torch.Tensor], torch.Tensor]:
    # kornia averages over a batch of images: one "image" of n_rows pixels per label column.
    # Its (B, 1, H, W) layout needs the (rows, labels) output transposed into a contiguous
    # copy: part of the reference's time, as it would be in a caller's code.
    n, columns = case.n_rows, case.x.shape[1] if case.x.ndim == 2 else 1
    y = case.target.reshape(n, columns).T.contiguous().reshape(columns, 1, n)
    return lambda x: kornia.losses.lovasz_hinge_loss(
        x.reshape(n, columns).T.contiguous().reshape(columns, 1, 1, n), y
    )


def _hinge(case: Case) -> Callable[[torch.Tensor], torch.Tensor]:
    # max(0, 1 - s·f) with s = ±1 is margin_ranking_loss(f, 0, s, margin=1): torch's own
    # kernel for the binary hinge. (multi_margin_loss would need a second, built column.)
    sign = (2 * case.target - 1).reshape(-1)
    zero = torch.zeros_like(sign)
    return lambda x: F.margin_ranking_loss(x.reshape(-1), zero, sign, margin=1.0)


def _weston_watkins(case: Case) -> Callable[[torch.Tensor], torch.Tensor]:
    labels = case.labels
    return lambda x: F.multi_margin_loss(x, labels, margin=1.0)


def _one_hot_mse(case: Case) -> Callable[[torch.Tensor], torch.Tensor]:
    labels, c, n = case.labels, case.n_classes, case.n_rows
    return lambda x: 0.5 * F.mse_loss(x, F.one_hot(labels, c).to(x.dtype), reduction="sum") / n


def _kl_div(case: Case) -> Callable[[torch.Tensor], torch.Tensor]:
    soft = case.target
    return lambda x: F.kl_div(F.log_softmax(x, dim=1), soft, reduction="batchmean")


def _regression(fn: Callable[..., torch.Tensor], **kwargs: Any) -> Reference:
    def build(case: Case) -> Callable[[torch.Tensor], torch.Tensor]:
        y = case.target.reshape(case.x.shape)
        return lambda x: fn(x, y, **kwargs)

    return build


def _gaussian_nll(case: Case) -> Callable[[torch.Tensor], torch.Tensor]:
    k = case.x.shape[1] // 2
    y = case.target.reshape(case.n_rows, k)
    return lambda x: F.gaussian_nll_loss(x[:, :k], y, x[:, k:].exp(), eps=1e-6)


def _pml_triplet(case: Case) -> Callable[[torch.Tensor], torch.Tensor]:
    # lossreg's triplet mines semi-hard triplets inside the loss, so the miner is timed too.
    distance = pml_distances.LpDistance(power=2)
    miner = pml_miners.TripletMarginMiner(0.2, "semihard", distance=distance)
    loss = pml_losses.TripletMarginLoss(
        margin=0.2, distance=distance, reducer=pml_reducers.MeanReducer()
    )
    labels = case.labels
    return lambda x: loss(x, labels, miner(x, labels))


def _pml_multi_similarity(case: Case) -> Callable[[torch.Tensor], torch.Tensor]:
    # the mean over anchors of the per-anchor losses (PML's own reducer averages non-zero ones)
    miner = pml_miners.MultiSimilarityMiner(epsilon=0.1)
    loss = pml_losses.MultiSimilarityLoss(
        alpha=2, beta=50, base=1.0, reducer=pml_reducers.DoNothingReducer()
    )
    labels, n = case.labels, case.n_rows

    def run(x: torch.Tensor) -> torch.Tensor:
        values = loss(x, labels, miner(x, labels))["loss"]["losses"]
        return values.sum() / n

    return run


def _pml_per_anchor(make: Callable[[], Any]) -> Reference:
    def build(case: Case) -> Callable[[torch.Tensor], torch.Tensor]:
        loss, labels = make(), case.labels
        return lambda x: loss(x, labels)["loss"]["losses"].mean()

    return build


#: lossreg loss name -> (reference label, reference builder). Only exact equivalents at the
#: defaults: a loss whose nearest library function computes something else is not listed.
REFERENCES: dict[str, tuple[str, Reference]] = {
    "cross_entropy": ("F.cross_entropy", _cross_entropy),
    "weighted_cross_entropy": ("F.cross_entropy(weight=)", _weighted_cross_entropy),
    "focal": ("kornia focal_loss", _focal),
    "bce": ("F.binary_cross_entropy_with_logits", _bce),
    "binary_focal": ("kornia binary_focal_loss_with_logits", _binary_focal),
    "lovasz_hinge": ("kornia lovasz_hinge_loss", _lovasz_hinge),
    "hinge": ("F.margin_ranking_loss", _hinge),
    "weston_watkins": ("F.multi_margin_loss", _weston_watkins),
    "one_hot_mse": ("F.mse_loss(one_hot)", _one_hot_mse),
    "kl_div": ("F.kl_div(log_softmax)", _kl_div),
    "mse": ("F.mse_loss", _regression(F.mse_loss)),
    "mae": ("F.l1_loss", _regression(F.l1_loss)),
    "huber": ("F.huber_loss", _regression(F.huber_loss, delta=1.0)),
    "poisson_nll": ("F.poisson_nll_loss", _regression(F.poisson_nll_loss, log_input=True)),
    "gaussian_nll": ("F.gaussian_nll_loss", _gaussian_nll),
    # pytorch-metric-learning, for the embedding losses it ships with the same defaults
    "triplet": ("PML TripletMarginLoss + semi-hard miner", _pml_triplet),
    "multi_similarity": ("PML MultiSimilarityLoss + miner", _pml_multi_similarity),
    "circle": (
        "PML CircleLoss",
        _pml_per_anchor(
            lambda: pml_losses.CircleLoss(
                m=0.25, gamma=256, reducer=pml_reducers.DoNothingReducer()
            )
        ),
    ),
    "supcon": (
        "PML SupConLoss",
        _pml_per_anchor(
            lambda: pml_losses.SupConLoss(temperature=0.1, reducer=pml_reducers.DoNothingReducer())
        ),
    ),
}
#: embedding width of the embedding-only losses timed against pytorch-metric-learning
EMBEDDING_WIDTH = 32


# -- building the inputs -----------------------------------------------------------------------
#: Width of the hidden features a ``outputs="logits+features"`` loss receives next to the logits:
#: the last hidden layer of the estimators' default MLP.
FEATURE_WIDTH = 64


def _task(
    tasks: frozenset[str], n_classes: int, first_class_count: bool, name: str = ""
) -> str | None:
    if tasks == frozenset({"embedding"}):
        # only the embedding losses with a library twin: the others' pairwise (some cubic)
        # batch statistics are what they are, and at 8192 rows they need many GB
        return "embedding" if name in REFERENCES and n_classes > 2 else None
    if n_classes == 2 and "binary" in tasks:
        return "binary"
    if "multiclass" in tasks:
        return "multiclass"
    if "multilabel" in tasks:
        return "multilabel"
    if "regression" in tasks and first_class_count:
        return "regression"
    return None


def _targets(task: str, n_rows: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    if task in ("binary", "multiclass", "embedding"):
        return rng.permutation(np.arange(n_rows) % n_classes)  # every class present
    if task == "multilabel":
        y = (rng.random((n_rows, n_classes)) < 0.3).astype(np.int64)
        y[np.arange(n_classes) % n_rows, np.arange(n_classes)] = 1  # every label seen
        return y
    return np.abs(rng.normal(size=n_rows)) + 0.1  # positive: counts, logs and ratios are valid


def build_case(
    name: str, n_rows: int, n_classes: int, first_class_count: bool, seed: int = 0
) -> tuple[Case, torch.nn.Module] | str | None:
    """The loss and its inputs, a reason string when it cannot run here, None when N/A.

    The case's ``first_call_s`` is the time of the forward + backward that checks it runs.
    """
    spec = lossreg.get_spec(name)
    task = _task(spec.tasks, n_classes, first_class_count, name)
    if task is None:
        return None
    rng = np.random.default_rng(seed)
    y = _targets(task, n_rows, n_classes, rng)
    class_task = task in ("binary", "multiclass")
    n_outputs = y.shape[1] if y.ndim == 2 else 1
    try:
        width = (
            EMBEDDING_WIDTH
            if task == "embedding"
            else output_size(spec, task, n_classes=n_classes, n_outputs=n_outputs)
        )
    except KeyError as exc:  # a head sized by the inputs (n_features): an estimator's job
        return f"output size needs {exc}"
    takes_features = spec.outputs == "logits+features"
    data_params = compute_data_params(
        spec.data_params,
        y,
        task,
        n_classes if class_task else None,
        width=width,
        feature_width=FEATURE_WIDTH if takes_features else None,
    )
    try:
        loss = lossreg.create_loss(name, **data_params)
    except Exception as exc:  # e.g. a composite whose members need parameters
        return f"create_loss failed: {type(exc).__name__}: {exc}"
    gen = torch.Generator().manual_seed(seed)
    x = (2 * torch.randn(n_rows, width, generator=gen)).requires_grad_(True)
    extras = {}
    for extra in getattr(loss, "fit_extras_", spec.fit_extras):
        if extra != "sample_index":
            return f"needs fit extra {extra!r}"
        extras[extra] = torch.arange(n_rows)
    sigmoid = getattr(spec.link, "name", spec.link) == "sigmoid"
    dtype = torch.int64 if (class_task or task == "embedding") and not sigmoid else torch.float32
    candidates = [torch.as_tensor(y, dtype=dtype)]
    if class_task:  # losses that take probability targets (kl_div)
        candidates.append(torch.softmax(torch.randn(n_rows, n_classes, generator=gen), dim=1))
    problem = ""
    # A logits+features loss (bias_ce, deep_coral ...) reads the network's hidden features
    # next to the logits, as wide as the last hidden layer of the default MLP.
    features = torch.randn(n_rows, FEATURE_WIDTH, generator=gen) if takes_features else None
    for target in candidates:
        case = Case(task, n_rows, n_classes, y, x, target, extras, data_params, features)
        try:
            start = time.perf_counter()
            loss(case.input(x), target, **extras).backward()
            case.first_call_s = time.perf_counter() - start
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
            continue
        x.grad = None
        return case, loss
    return f"forward failed: {problem}"


# -- timing ----------------------------------------------------------------------------------
def _bound(loss: torch.nn.Module, case: Case) -> Callable[[torch.Tensor], torch.Tensor]:
    """The lossreg loss as a function of the module output alone."""
    return lambda x: loss(case.input(x), case.target, **case.extras)


def _step(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> None:
    x.grad = None
    fn(x).backward()


def compare(
    fns: list[Callable[[torch.Tensor], torch.Tensor]],
    x: torch.Tensor,
    *,
    block_s: float,
    reps: int,
) -> list[float]:
    """Median seconds per forward + backward of each function, in interleaved repetitions.

    A repetition times a block of ``k`` calls (``k`` sized so the first function's block takes
    about ``block_s``), the functions in turn, the order reversed every other repetition.
    """
    for fn in fns:  # warm-up: first-call allocations and dispatch caches
        _step(fn, x)
    start = time.perf_counter()
    _step(fns[0], x)
    single = max(time.perf_counter() - start, 1e-6)
    k = max(1, math.ceil(block_s / single))
    times: list[list[float]] = [[] for _ in fns]
    for rep in range(reps):
        order = range(len(fns)) if rep % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            start = time.perf_counter()
            for _ in range(k):
                _step(fns[i], x)
            times[i].append((time.perf_counter() - start) / k)
    return [median(t) for t in times]


def single_call(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> float:
    """Seconds of one forward + backward (for losses too slow to repeat)."""
    start = time.perf_counter()
    _step(fn, x)
    return time.perf_counter() - start


def slow_call(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, first_s: float, limit_s: float
) -> float | None:
    """The faster of 2 calls if both take over ``limit_s`` (the first timed already), else None."""
    if limit_s <= 0 or first_s <= limit_s:
        return None
    second = single_call(fn, x)
    return min(first_s, second) if second > limit_s else None


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f}"


SINGLE = " †"  # one call, not a median: the loss is over the per-call budget


def _too_big(batch: int, n_classes: int, slow: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The slow size that ``(batch, n_classes)`` is at least as large as, if any."""
    for size in slow:
        if batch >= size[0] and n_classes >= size[1]:
            return size
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 8192])
    parser.add_argument("--classes", type=int, nargs="+", default=[2, 10, 100])
    parser.add_argument("--reps", type=int, default=None, help="interleaved repetitions (7)")
    parser.add_argument("--block-ms", type=float, default=None, help="timed block length (10)")
    parser.add_argument(
        "--max-call-ms",
        type=float,
        default=None,
        help="a loss whose first 2 calls take longer: not repeated, larger sizes skipped (250)",
    )
    parser.add_argument("--only", nargs="+", help="these losses only")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smoke run at tiny sizes")
    size.add_argument("--full", action="store_true", help="no per-call budget, 7 x 20 ms")
    parser.add_argument("--no-record", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args(argv)
    # Defaults per mode: (reps, block ms, max call ms); 0 = no budget.
    reps, block_ms, max_call_ms = (7, 20.0, 0.0) if args.full else (7, 10.0, 250.0)
    if args.quick:
        args.batch_sizes, args.classes = [64], [2, 5]
        reps, block_ms = 1, 1.0
    args.reps = reps if args.reps is None else args.reps
    args.block_ms = block_ms if args.block_ms is None else args.block_ms
    args.max_call_ms = max_call_ms if args.max_call_ms is None else args.max_call_ms
    names = args.only or lossreg.list_losses()
    block_s, max_call_s = args.block_ms / 1000, args.max_call_ms / 1000
    compared, own, skipped = [], [], []
    started = time.perf_counter()
    for name in names:
        slow: list[tuple[int, int]] = []  # sizes of this loss whose first call was too slow
        t_loss = time.perf_counter()
        tasks = lossreg.get_spec(name).tasks
        for batch in sorted(args.batch_sizes):
            for c_index, n_classes in enumerate(args.classes):
                if _task(tasks, n_classes, c_index == 0, name) is None:
                    continue  # not a size this loss has (e.g. a regression loss's classes)
                bigger_than = _too_big(batch, n_classes, slow)
                if bigger_than is not None:
                    skipped.append(
                        [
                            name,
                            str(batch),
                            str(n_classes),
                            f"over the per-call budget: one call at {bigger_than[0]} rows, "
                            f"{bigger_than[1]} classes took > {args.max_call_ms:g} ms (--full "
                            "times it)",
                        ]
                    )
                    continue
                built = build_case(name, batch, n_classes, first_class_count=c_index == 0)
                if built is None:
                    continue
                if isinstance(built, str):
                    skipped.append([name, str(batch), str(n_classes), built[:120]])
                    continue
                case, loss = built
                classes = "1 target" if case.task == "regression" else str(n_classes)
                ours = _bound(loss, case)
                call_s = slow_call(ours, case.x, case.first_call_s, max_call_s)
                once = call_s is not None
                if once:
                    slow.append((batch, n_classes))
                mark = SINGLE if once else ""
                if name in REFERENCES:
                    label, build_ref = REFERENCES[name]
                    ref = build_ref(case)
                    with torch.no_grad():
                        gap = float((ours(case.x) - ref(case.x)).abs())
                    if once:
                        t_ref = min(single_call(ref, case.x), single_call(ref, case.x))
                        t_ours = call_s
                    else:
                        t_ours, t_ref = compare(
                            [ours, ref], case.x, block_s=block_s, reps=args.reps
                        )
                    ratio = t_ours / t_ref
                    compared.append(
                        [
                            name,
                            label,
                            case.task,
                            str(batch),
                            classes,
                            _us(t_ours) + mark,
                            _us(t_ref) + mark,
                            f"{ratio:.2f}×" + (" ⚠" if ratio > FLAG else ""),
                            f"{gap:.1e}",
                        ]
                    )
                else:
                    if once:
                        t_ours = call_s
                    else:
                        (t_ours,) = compare([ours], case.x, block_s=block_s, reps=args.reps)
                    own.append([name, case.task, str(batch), classes, _us(t_ours) + mark])
        took = time.perf_counter() - t_loss
        if took > 5:  # progress on the slow ones: where a long run spends its time
            print(f"bench_losses: {name} took {took:.1f} s", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    flagged = sorted({row[0] for row in compared if row[7].endswith("⚠")})
    budget = (
        f" A loss whose first two calls both took over {args.max_call_ms:g} ms is not repeated "
        "(†: the faster of the two calls, the first one a warm-up) and its larger sizes are "
        "skipped."
        if max_call_s > 0
        else ""
    )
    body = (
        f"Forward + backward per call, float32 on the CPU, torch {torch.get_num_threads()} "
        f"threads, reduction mean, default hyperparameters; median of {args.reps} interleaved "
        f"repetitions of ~{args.block_ms:g} ms blocks.{budget} Ratio = lossreg / reference; ⚠ "
        f"marks > {FLAG}×. |Δ| is the absolute difference of the two loss values (same "
        f"inputs). The whole table took {elapsed:.0f} s.\n\n"
        + markdown_table(
            [
                "loss",
                "reference",
                "task",
                "batch",
                "classes",
                "lossreg µs",
                "reference µs",
                "ratio",
                "|Δ|",
            ],
            compared,
        )
        + f"\n\nFlagged (> {FLAG}× in at least one row): {', '.join(flagged) or 'none'}.\n\n"
        "Losses with no independent implementation: lossreg's own time.\n\n"
        + markdown_table(["loss", "task", "batch", "classes", "lossreg µs"], own)
    )
    if skipped:
        body += "\n\nNot run:\n\n" + markdown_table(["loss", "batch", "classes", "why"], skipped)
    title = "Loss kernels (bench_losses.py)"
    if args.no_record:
        print(f"## {title}\n\n{body}\n")
    else:
        append_results(title, body)


if __name__ == "__main__":
    main()
