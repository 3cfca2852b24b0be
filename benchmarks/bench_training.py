"""Training throughput: LossClassifier against a raw PyTorch loop, plain skorch and sklearn's MLP.

All four train the same network (MLP 128-64, ReLU), with the same batch size, optimizer
(AdamW / Adam for scikit-learn, lr 1e-3) and data, in this one process, in interleaved rounds;
the figure is the median seconds per epoch, and the ratios are against the raw loop.

Run: ``python benchmarks/bench_training.py [--rows 200000] [--features 50] [--epochs 2]``
(one size), or ``--sweep`` for how the cost grows with rows (10k → 200k at 50 features) and
features (10 → 200 at 50k rows), 1 epoch each; ``--full`` extends the sweep to 1M rows and
500 features; ``--quick`` is a smoke run at tiny sizes. ``--device cuda`` trains on the GPU
(scikit-learn's MLP, CPU only, is left out) and skips cleanly, saying why, without one.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import torch
from _common import append_results, markdown_table, median, timed
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from skorch import NeuralNetClassifier
from torch import nn

from lossreg import LossClassifier
from lossreg.estimators import MLP


def raw_loop(
    X: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int, device: str = "cpu"
) -> None:
    """The hand-written baseline: what one would write without any library."""
    torch.manual_seed(0)
    model = MLP(X.shape[1], 2).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    loss_fn = nn.CrossEntropyLoss()
    n = X.shape[0]
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, device=X.device)
        Xs, ys = X[order], y[order]
        for start in range(0, n, batch_size):
            optimizer.zero_grad()
            loss = loss_fn(model(Xs[start : start + batch_size]), ys[start : start + batch_size])
            loss.backward()
            optimizer.step()
    if X.device.type == "cuda":
        torch.cuda.synchronize()  # the step kernels are asynchronous: wait for the last one


def plain_skorch(
    X: np.ndarray, y: np.ndarray, epochs: int, batch_size: int, device: str = "cpu"
) -> None:
    net = NeuralNetClassifier(
        MLP,
        module__n_features=X.shape[1],
        module__n_outputs=2,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.AdamW,
        optimizer__weight_decay=0.0,
        lr=1e-3,
        batch_size=batch_size,
        max_epochs=epochs,
        train_split=None,
        iterator_train__shuffle=True,
        device=device,
        verbose=0,
    )
    net.fit(X, y)


def sklearn_mlp(
    X: np.ndarray, y: np.ndarray, epochs: int, batch_size: int, device: str = "cpu"
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier(
            hidden_layer_sizes=(128, 64),
            batch_size=batch_size,
            max_iter=epochs,
            learning_rate_init=1e-3,
            alpha=0.0,
            tol=0.0,
            n_iter_no_change=epochs + 1,
            shuffle=True,
            random_state=0,
        ).fit(X, y)


def lossreg_classifier(
    X: np.ndarray, y: np.ndarray, epochs: int, batch_size: int, device: str = "cpu"
) -> None:
    LossClassifier(
        loss="cross_entropy",
        max_iter=epochs,
        batch_size=batch_size,
        tol=0.0,
        n_iter_no_change=epochs + 1,
        random_state=0,
        device=device,
    ).fit(X, y)


RAW = "raw PyTorch loop"
OURS = "lossreg LossClassifier"
SKORCH = "plain skorch NeuralNetClassifier"
SKLEARN = "scikit-learn MLPClassifier"
TRAINERS = {RAW: raw_loop, OURS: lossreg_classifier, SKORCH: plain_skorch, SKLEARN: sklearn_mlp}

#: (rows, features) of the sweep: rows grow at 50 features, features grow at 50k rows
SWEEP = [(10_000, 50), (50_000, 50), (200_000, 50), (50_000, 10), (50_000, 200)]
SWEEP_FULL = [*SWEEP, (1_000_000, 50), (50_000, 500)]
SWEEP_QUICK = [(1_000, 10), (3_000, 10), (1_000, 40)]


def make_data(rows: int, features: int) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(
        n_samples=rows, n_features=features, n_informative=min(10, features - 2), random_state=0
    )
    return X.astype(np.float32), y.astype(np.int64)


def measure(
    sizes: list[tuple[int, int]],
    *,
    epochs: int,
    batch_size: int,
    rounds: int,
    device: str,
    trainers: list[str],
) -> dict[tuple[int, int], dict[str, float]]:
    """Median seconds per epoch of each trainer at each (rows, features) size.

    Every trainer runs once on the smallest size first (first-call costs out of the figures);
    then, size by size, ``rounds`` interleaved rounds of all trainers.
    """
    results: dict[tuple[int, int], dict[str, float]] = {}
    started = time.perf_counter()
    warmed = False
    for rows, features in sizes:
        X, y = make_data(rows, features)
        Xt, yt = torch.from_numpy(X).to(device), torch.from_numpy(y).to(device)
        runners = {}
        for name in trainers:
            data = (Xt, yt) if name == RAW else (X, y)
            runners[name] = lambda f=TRAINERS[name], d=data: f(*d, epochs, batch_size, device)
        if not warmed:
            for run in runners.values():
                run()
            warmed = True
        seconds: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(rounds):
            for name, run in runners.items():
                seconds[name].append(timed(run) / epochs)
        results[(rows, features)] = {name: median(v) for name, v in seconds.items()}
        print(
            f"bench_training: {rows:,} rows x {features} features done "
            f"({time.perf_counter() - started:.0f} s so far)",
            file=sys.stderr,
            flush=True,
        )
    return results


def single_table(
    per_epoch: dict[str, float], rows: int, features: int, args: argparse.Namespace
) -> str:
    raw = per_epoch[RAW]
    table = markdown_table(
        ["trainer", "s / epoch", "rows / s", "vs raw loop"],
        [[n, f"{s:.3f}", f"{rows / s:,.0f}", f"{s / raw:.2f}×"] for n, s in per_epoch.items()],
    )
    ours, skorch_time = per_epoch[OURS], per_epoch[SKORCH]
    return (
        f"{rows:,} rows × {features} features, batch {args.batch_size}, MLP 128-64, "
        f"AdamW lr 1e-3, device {args.device}, median of {args.rounds} rounds × {args.epochs} "
        f"epochs.\n\n{table}\n\nLossClassifier / raw loop = {ours / raw:.2f}× (target ≤ 1.10×); "
        f"plain skorch / LossClassifier = {skorch_time / ours:.2f}× (target ≥ 1.8×)."
    )


def sweep_table(results: dict[tuple[int, int], dict[str, float]], args: argparse.Namespace) -> str:
    names = list(next(iter(results.values())))
    header = ["rows", "features", *(f"{n} (rows/s)" for n in names)]
    header += ["LossClassifier / raw", "skorch / LossClassifier"]
    lines = []
    for (rows, features), per_epoch in results.items():
        line = [f"{rows:,}", str(features)]
        line += [f"{rows / per_epoch[n]:,.0f}" for n in names]
        line += [f"{per_epoch[OURS] / per_epoch[RAW]:.2f}×"]
        line += [f"{per_epoch[SKORCH] / per_epoch[OURS]:.2f}×"]
        lines.append(line)
    return (
        f"Rows/s per epoch (higher is better), batch {args.batch_size}, MLP 128-64, AdamW lr "
        f"1e-3, device {args.device}, median of {args.rounds} interleaved rounds × "
        f"{args.epochs} epoch(s) per size. Constant rows/s down a column means the cost grows "
        f"linearly with the rows.\n\n{markdown_table(header, lines)}"
    )


def cuda_missing(device: str) -> str | None:
    """Why ``device`` cannot be used here, or None when it can."""
    if not device.startswith("cuda"):
        return None
    if not torch.cuda.is_available():
        built = torch.version.cuda
        why = "this PyTorch build has no CUDA" if built is None else "no CUDA device is visible"
        return f"GPU throughput skipped: device={device!r} but {why} (torch {torch.__version__})."
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=None, help="2 for one size, 1 per size")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sweep", action="store_true", help="rows 10k→200k, features 10→200")
    parser.add_argument("--full", action="store_true", help="sweep up to 1M rows, 500 features")
    parser.add_argument("--quick", action="store_true", help="smoke run at tiny sizes")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--no-sklearn", action="store_true", help="skip scikit-learn's MLP")
    parser.add_argument("--no-record", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args(argv)
    sweep = args.sweep or args.full
    if args.epochs is None:
        args.epochs = 1 if sweep or args.quick else 2
    if args.quick:
        args.rounds = 1
        args.rows = min(args.rows, 2_000)
        args.features = min(args.features, 10)
    missing = cuda_missing(args.device)
    if missing:
        print(missing)
        return
    trainers = [RAW, OURS, SKORCH]
    # scikit-learn's MLP runs on the CPU only: no GPU figure to compare.
    if not args.no_sklearn and args.device == "cpu":
        trainers.append(SKLEARN)
    gpu = "" if args.device == "cpu" else f", {args.device}"
    if sweep:
        sizes = SWEEP_QUICK if args.quick else SWEEP_FULL if args.full else SWEEP
        results = measure(
            sizes,
            epochs=args.epochs,
            batch_size=args.batch_size,
            rounds=args.rounds,
            device=args.device,
            trainers=trainers,
        )
        body = sweep_table(results, args)
        title = f"Training throughput sweep (bench_training.py{gpu})"
    else:
        results = measure(
            [(args.rows, args.features)],
            epochs=args.epochs,
            batch_size=args.batch_size,
            rounds=args.rounds,
            device=args.device,
            trainers=trainers,
        )
        body = single_table(results[(args.rows, args.features)], args.rows, args.features, args)
        title = f"Training throughput (bench_training.py{gpu})"
    if args.no_record:
        print(f"## {title}\n\n{body}\n")
    else:
        append_results(title, body)


if __name__ == "__main__":
    main()
