"""Simulated ad auctions: ads with features, bids and clicks drawn from a logistic CTR model.

Registered in :data:`lossreg.compare._synthetic.GENERATORS` as ``synthetic:auctions(...)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["auctions"]


def auctions(
    n_samples: int = 2500,
    ads_per_auction: int = 5,
    n_features: int = 8,
    n_context: int = 2,
    base_ctr: float = 0.1,
    ctr_scale: float = 1.5,
    bid_sigma: float = 1.0,
    random_state: int = 0,
) -> pd.DataFrame:
    """``n_samples`` ads (rows) in auctions of ``ads_per_auction`` ads (the last may hold fewer).

    Each row has ``n_features`` ad features ``x ~ N(0, I)`` and the ``n_context`` features
    ``c ~ N(0, I)`` of its auction (the user and query, shared by its ads: columns
    ``ctx0 ..``). The true click-through rate is logistic,
    ``p = sigmoid(logit(base_ctr) + w·x + u·c)``, with ``w`` and ``u`` random directions
    scaled so that the logit's spread ``w·x + u·c`` has standard deviation ``ctr_scale``;
    the ``target`` is a click drawn with probability ``p``. Each ad bids
    ``b ~ LogNormal(0, bid_sigma)`` per click, independently of its CTR (column ``bid``:
    not a feature; compare passes it to the losses that take bids and scores the welfare
    of the auctions with it), and ``group`` holds the auction id.
    """
    if n_samples < 2 * ads_per_auction or ads_per_auction < 2 or n_features < 1 or n_context < 0:
        raise ValueError(
            "auctions needs ads_per_auction >= 2, n_samples >= 2 * ads_per_auction (two "
            f"auctions), n_features >= 1 and n_context >= 0. Got n_samples={n_samples!r}, "
            f"ads_per_auction="
            f"{ads_per_auction!r}, n_features={n_features!r}, n_context={n_context!r}."
        )
    if not 0 < base_ctr < 1 or ctr_scale < 0 or bid_sigma < 0:
        raise ValueError(
            "auctions needs 0 < base_ctr < 1, ctr_scale >= 0 and bid_sigma >= 0. Got "
            f"base_ctr={base_ctr!r}, ctr_scale={ctr_scale!r}, bid_sigma={bid_sigma!r}."
        )
    rng = np.random.default_rng(random_state)
    n = n_samples
    n_auctions = -(-n // ads_per_auction)  # ceil: the last auction may be smaller
    auction = np.repeat(np.arange(n_auctions), ads_per_auction)[:n]
    ads = rng.normal(size=(n, n_features))
    context = rng.normal(size=(n_auctions, n_context))[auction]
    # one random direction over all features, unit norm: the logit's spread is ctr_scale
    direction = rng.normal(size=n_features + n_context)
    direction *= ctr_scale / np.linalg.norm(direction)
    logit = np.log(base_ctr / (1 - base_ctr)) + np.hstack([ads, context]) @ direction
    ctr = 1.0 / (1.0 + np.exp(-logit))
    frame = pd.DataFrame(ads, columns=[f"x{j}" for j in range(n_features)])
    for j in range(n_context):
        frame[f"ctx{j}"] = context[:, j]
    frame["bid"] = rng.lognormal(0.0, bid_sigma, size=n)
    frame["group"] = auction
    frame["target"] = (rng.random(n) < ctr).astype(np.int64)
    return frame
