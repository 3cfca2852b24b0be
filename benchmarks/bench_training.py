"""Training throughput: LossClassifier against a raw PyTorch loop, plain skorch and sklearn's MLP.

All four train the same network (MLP 128-64, ReLU), with the same batch size, optimizer
(AdamW / Adam for scikit-learn, lr 1e-3) and data, in this one process, in interleaved rounds;
the figure is the median seconds per epoch, and the ratios are against the raw loop.

Run: ``python benchmarks/bench_training.py [--rows 200000] [--features 50] [--epochs 2]``.
"""

from __future__ import annotations

import argparse
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


def raw_loop(X: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int) -> None:
    """The hand-written baseline: what one would write without any library."""
    torch.manual_seed(0)
    model = MLP(X.shape[1], 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    loss_fn = nn.CrossEntropyLoss()
    n = X.shape[0]
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n)
        Xs, ys = X[order], y[order]
        for start in range(0, n, batch_size):
            optimizer.zero_grad()
            loss = loss_fn(model(Xs[start : start + batch_size]), ys[start : start + batch_size])
            loss.backward()
            optimizer.step()


def plain_skorch(X: np.ndarray, y: np.ndarray, epochs: int, batch_size: int) -> None:
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
        verbose=0,
    )
    net.fit(X, y)


def sklearn_mlp(X: np.ndarray, y: np.ndarray, epochs: int, batch_size: int) -> None:
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


def lossreg_classifier(X: np.ndarray, y: np.ndarray, epochs: int, batch_size: int) -> None:
    LossClassifier(
        loss="cross_entropy",
        max_iter=epochs,
        batch_size=batch_size,
        tol=0.0,
        n_iter_no_change=epochs + 1,
        random_state=0,
    ).fit(X, y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-sklearn", action="store_true", help="skip scikit-learn's MLP")
    parser.add_argument("--no-record", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args()

    X, y = make_classification(
        n_samples=args.rows, n_features=args.features, n_informative=10, random_state=0
    )
    X = X.astype(np.float32)
    y = y.astype(np.int64)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    runners = {
        "raw PyTorch loop": lambda: raw_loop(Xt, yt, args.epochs, args.batch_size),
        "lossreg LossClassifier": lambda: lossreg_classifier(X, y, args.epochs, args.batch_size),
        "plain skorch NeuralNetClassifier": lambda: plain_skorch(
            X, y, args.epochs, args.batch_size
        ),
    }
    if not args.no_sklearn:
        runners["scikit-learn MLPClassifier"] = lambda: sklearn_mlp(
            X, y, args.epochs, args.batch_size
        )
    for run in runners.values():  # warm-up: first-call costs out of the figures
        run()
    seconds: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, run in runners.items():
            seconds[name].append(timed(run) / args.epochs)
    raw = median(seconds["raw PyTorch loop"])
    rows = []
    for name, values in seconds.items():
        per_epoch = median(values)
        rows.append(
            [name, f"{per_epoch:.3f}", f"{args.rows / per_epoch:,.0f}", f"{per_epoch / raw:.2f}×"]
        )
    ours = median(seconds["lossreg LossClassifier"])
    skorch_time = median(seconds["plain skorch NeuralNetClassifier"])
    table = markdown_table(["trainer", "s / epoch", "rows / s", "vs raw loop"], rows)
    body = (
        f"{args.rows:,} rows × {args.features} features, batch {args.batch_size}, MLP 128-64, "
        f"AdamW lr 1e-3, median of {args.rounds} rounds × {args.epochs} epochs.\n\n{table}\n\n"
        f"LossClassifier / raw loop = {ours / raw:.2f}× (target ≤ 1.10×); plain skorch / "
        f"LossClassifier = {skorch_time / ours:.2f}× (target ≥ 1.8×)."
    )
    if args.no_record:
        print(body)
    else:
        append_results("Training throughput (bench_training.py)", body)


if __name__ == "__main__":
    main()
