"""Trading metrics of a return forecast: the P&L of trading its sign, and how often it trades.

For regression targets that are signed returns (both signs present in the test fold), a
forecast ``r_hat`` is read as the position ``sign(r_hat)`` held over the next period.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GREATER_IS_BETTER_TRADING", "TRADING_METRICS", "trading_metrics"]

#: metric -> greater is better
GREATER_IS_BETTER_TRADING: dict[str, bool] = {
    "sign_pnl": True,
    "weighted_direction_accuracy": True,
    "trade_rate": False,
}
TRADING_METRICS = tuple(GREATER_IS_BETTER_TRADING)


def trading_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """``sign_pnl``, ``weighted_direction_accuracy`` and ``trade_rate`` of a forecast.

    - ``sign_pnl``: mean of ``sign(r_hat) * r`` per row, the strategy's P&L per period
      (long when the forecast is positive, short when negative, flat at exactly 0).
    - ``weighted_direction_accuracy``: share of ``sum |r|`` on rows whose sign was
      forecast right: a right call on a large move counts more.
    - ``trade_rate``: share of consecutive rows (in the order given, which is time order
      for a series) where the position changes; fewer trades, lower costs.

    Empty (no metric) unless ``y_true`` holds both signs: on a positive target the sign of
    a forecast says nothing.
    """
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if len(y_true) < 2 or not ((y_true > 0).any() and (y_true < 0).any()):
        return {}
    position = np.sign(y_pred)
    size = np.abs(y_true)
    return {
        "sign_pnl": float(np.mean(position * y_true)),
        "weighted_direction_accuracy": float(
            np.sum(size * (position == np.sign(y_true))) / np.sum(size)
        ),
        "trade_rate": float(np.mean(position[1:] != position[:-1])),
    }
