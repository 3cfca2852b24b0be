"""Generated multi-device sensor rows for ``lossreg compare``: ``synthetic:multidevice(...)``.

Several devices worn on the body record the same activity at the same time, each through its
own placement: the setting of multi-device self-supervised learning (ColloSSL). Registered in
:data:`lossreg.compare._synthetic.GENERATORS`; fully determined by its parameters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["multidevice"]


def multidevice(
    n_samples: int = 2000,
    n_devices: int = 4,
    n_activities: int = 5,
    n_features: int = 12,
    n_latent: int = 4,
    separation: float = 1.5,
    noise: float = 1.0,
    random_state: int = 0,
) -> pd.DataFrame:
    """Time-aligned windows of several devices: target = device, group = time, activity label.

    Rows come window by window, one per device: ``ceil(n_samples / n_devices)`` time windows
    (the last one short of its last devices when ``n_devices`` does not divide
    ``n_samples``). Each window has one activity (uniform over ``n_activities``) and a
    body motion shared by every device: a latent ``z_t`` in ``n_latent`` dimensions, the
    activity's centre (drawn ``N(0, separation^2 I)``) plus unit Gaussian variation of that
    window. Each of ``n_devices`` devices sees the motion through its own placement: row
    ``(t, d)`` is ``g_d W_d z_t + b_d + noise * e`` with a device mixing matrix ``W_d``
    (``n_features x n_latent``, entries ``N(0, 1 / n_latent)``), a device offset ``b_d``
    (``N(0, I)``: each placement has its own signature), a gain ``g_d`` falling evenly from
    1 to 0.5 (some placements see the activity better) and per-row noise ``e`` that no other
    device shares.

    Columns: ``x0 ..`` (the window's features), ``target`` (the device id: what a
    multi-device contrastive loss trains on), ``group`` (the time-window id: rows of one
    window are time-aligned; not a feature) and ``activity``, the label an embedding
    comparison probes (its ``probe_target`` unless another is named, so not a feature
    there).
    """
    problems = [
        f"{name} must be an integer >= {low}. Got {value!r}."
        for name, value, low in (
            ("n_samples", n_samples, 2),
            ("n_devices", n_devices, 2),
            ("n_activities", n_activities, 2),
            ("n_features", n_features, 1),
            ("n_latent", n_latent, 1),
        )
        if isinstance(value, bool) or not isinstance(value, int) or value < low
    ]
    problems += [
        f"{name} must be a number >= 0. Got {value!r}."
        for name, value in (("separation", separation), ("noise", noise))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
    ]
    if problems:
        raise ValueError("synthetic:multidevice: " + " ".join(problems))
    n_windows = -(-n_samples // n_devices)
    rng = np.random.default_rng(random_state)
    centres = separation * rng.standard_normal((n_activities, n_latent))
    activity = rng.integers(0, n_activities, size=n_windows)
    motion = centres[activity] + rng.standard_normal((n_windows, n_latent))
    mixing = rng.standard_normal((n_devices, n_features, n_latent)) / np.sqrt(n_latent)
    offsets = rng.standard_normal((n_devices, n_features))
    gains = np.linspace(1.0, 0.5, n_devices)
    # (window, device, feature): every device's view of the same window's motion
    seen = np.einsum("dfl,tl->tdf", mixing, motion) * gains[None, :, None]
    X = seen + offsets[None] + noise * rng.standard_normal((n_windows, n_devices, n_features))
    frame = pd.DataFrame(
        X.reshape(n_windows * n_devices, n_features)[:n_samples],
        columns=[f"x{j}" for j in range(n_features)],
    )
    frame["target"] = np.tile(np.arange(n_devices), n_windows)[:n_samples]
    frame["group"] = np.repeat(np.arange(n_windows), n_devices)[:n_samples]
    frame["activity"] = np.repeat(activity, n_devices)[:n_samples]
    # an embedding comparison probes the activity (and must not see it as a feature)
    frame.attrs["probe_target"] = "activity"
    return frame
