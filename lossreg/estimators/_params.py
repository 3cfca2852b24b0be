"""Prefixed estimator parameters (``loss__*``, ``module__*``, ``optimizer__*``) for scikit-learn.

scikit-learn reads an estimator's parameters from its ``__init__`` signature. A loss's own
hyperparameters differ per loss, so they travel as prefixed keyword arguments, which these
helpers store, list in ``get_params`` and accept in ``set_params`` — so ``clone``,
``GridSearchCV`` and friends see them like any other parameter.
"""

from __future__ import annotations

from typing import Any

from lossreg._suggest import did_you_mean

__all__ = ["PREFIXES", "check_prefixed", "extra_names", "prefixed", "split_prefixed"]

PREFIXES = ("loss__", "module__", "optimizer__")


def check_prefixed(owner: str, names: list[str], known: list[str]) -> None:
    """Raise TypeError for keyword arguments that are neither known nor prefixed."""
    bad = [k for k in names if not k.startswith(PREFIXES) or k in PREFIXES]
    if bad:
        hints = " ".join(f"{k!r}:{did_you_mean(k, known)}" for k in bad)
        raise TypeError(
            f"{owner} got unexpected keyword arguments {bad!r}. {hints} Loss, network and "
            "optimizer parameters take the prefixes loss__, module__ and optimizer__ "
            "(e.g. loss__gamma=2.0)."
        )


def prefixed(obj: Any, prefix: str | None = None) -> dict[str, Any]:
    """Return the prefixed parameters stored on ``obj`` (all, or those of one prefix)."""
    wanted = PREFIXES if prefix is None else (prefix,)
    return {k: v for k, v in vars(obj).items() if k.startswith(wanted) and k not in PREFIXES}


def extra_names(obj: Any) -> list[str]:
    """Names of the keyword arguments stored beyond the signature (prefixed or not)."""
    return [*prefixed(obj), *getattr(obj, "_unprefixed_kwargs", ())]


def split_prefixed(obj: Any, prefix: str) -> dict[str, Any]:
    """Return ``obj``'s parameters of ``prefix`` with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in prefixed(obj, prefix).items()}
