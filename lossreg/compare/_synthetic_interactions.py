"""Generated implicit-feedback data for ``lossreg compare``: ``synthetic:interactions(...)``.

Registered in :data:`lossreg.compare._synthetic.GENERATORS`. The frame has one row per
observed (user, item) interaction, a ``user`` column (the only feature) and the item id as
``target``, and asks for the ``recommendation`` task (see
:mod:`lossreg.compare._recommend`); like the other generators it is fully determined by its
parameters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["interactions"]


def interactions(
    n_samples: int = 3000,
    per_user: int = 15,
    n_items: int = 500,
    n_factors: int = 8,
    strength: float = 3.0,
    popularity: float = 1.0,
    random_state: int = 0,
) -> pd.DataFrame:
    """Users' interactions with items drawn from a latent-factor affinity and item popularity.

    ``n_samples`` interactions of ``ceil(n_samples / per_user)`` users (the last one may have
    fewer). Users and items get ``n_factors`` standard normal factors; user ``u`` picks
    ``per_user`` distinct items with probabilities proportional to
    ``exp(strength * <p_u, q_i> / sqrt(n_factors) - popularity * log(rank_i))``, where
    ``rank_i`` (1 .. n_items, random) is the item's popularity rank: ``popularity=0`` has no
    popularity skew, 1 gives Zipf-like item counts. Rows are sorted by user.
    """
    if n_samples < 2 or n_items < 2:
        raise ValueError(f"n_samples and n_items must be >= 2. Got {n_samples} and {n_items}.")
    if not 1 <= per_user < n_items:
        raise ValueError(
            f"per_user must be in [1, n_items) (distinct items per user). Got {per_user} with "
            f"n_items={n_items}."
        )
    if n_factors < 1 or strength < 0 or popularity < 0:
        raise ValueError(
            f"n_factors must be >= 1, strength and popularity >= 0. Got n_factors={n_factors}, "
            f"strength={strength}, popularity={popularity}."
        )
    n_users = -(-n_samples // per_user)
    rng = np.random.default_rng(random_state)
    users = rng.standard_normal((n_users, n_factors))
    items = rng.standard_normal((n_items, n_factors))
    rank = rng.permutation(n_items) + 1
    logits = strength * users @ items.T / np.sqrt(n_factors) - popularity * np.log(rank)
    # Gumbel top-k: per_user distinct items drawn with probabilities softmax(logits), in turn
    keys = logits + rng.gumbel(size=logits.shape)
    chosen = np.argsort(-keys, axis=1, kind="stable")[:, :per_user]
    frame = pd.DataFrame(
        {
            "user": np.repeat(np.arange(n_users), per_user)[:n_samples],
            "target": np.sort(chosen, axis=1).ravel()[:n_samples],
        }
    )
    frame.attrs["task"] = "recommendation"
    return frame
