"""Prefixed estimator parameters (``loss__*``, ``module__*``, ``optimizer__*``) for scikit-learn.

scikit-learn reads an estimator's parameters from its ``__init__`` signature. A loss's own
hyperparameters differ per loss, so they travel as keyword arguments with a prefix. They are
kept in one private dict (scikit-learn forbids other public attributes set in ``__init__``),
listed by ``get_params`` and accepted by ``set_params``, so ``clone``, ``GridSearchCV`` and
friends treat them like any other parameter.
"""

from __future__ import annotations

from typing import Any

from lossreg._suggest import did_you_mean

__all__ = [
    "PREFIXES",
    "PrefixedParams",
    "check_prefixed",
    "extra_params",
    "is_prefixed",
    "split_prefixed",
]

PREFIXES = ("loss__", "module__", "optimizer__")


def extra_params(obj: Any) -> dict[str, Any]:
    """The keyword arguments ``obj`` holds beyond its signature (a live dict)."""
    return obj.__dict__.setdefault("_extra_params", {})


def is_prefixed(name: str) -> bool:
    """Whether ``name`` is a ``loss__``/``module__``/``optimizer__`` parameter."""
    return name.startswith(PREFIXES) and name not in PREFIXES


def check_prefixed(owner: str, names: list[str], known: list[str]) -> None:
    """Raise TypeError for keyword arguments that are neither known nor prefixed."""
    bad = [k for k in names if not is_prefixed(k)]
    if bad:
        hints = " ".join(f"{k!r}:{did_you_mean(k, known)}" for k in bad)
        raise TypeError(
            f"{owner} got unexpected keyword arguments {bad!r}. {hints} Loss, network and "
            "optimizer parameters take the prefixes loss__, module__ and optimizer__ "
            "(e.g. loss__gamma=2.0)."
        )


def split_prefixed(obj: Any, prefix: str) -> dict[str, Any]:
    """Return ``obj``'s parameters of ``prefix`` with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in extra_params(obj).items() if k.startswith(prefix)}


class PrefixedParams:
    """Estimator mixin: prefixed parameters read, listed and set like signature ones.

    Put it before :class:`sklearn.base.BaseEstimator` in the bases; ``__init__`` stores the
    prefixed keyword arguments with ``self._extra_params = dict(kwargs)``.
    """

    def __getattr__(self, name: str) -> Any:
        # ``clf.loss__gamma`` reads a prefixed parameter like any other parameter.
        extra = self.__dict__.get("_extra_params", {})
        if name in extra:
            return extra[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep=deep)  # type: ignore[misc]
        params.update(extra_params(self))
        return params

    def set_params(self, **params: Any) -> Any:
        plain = {}
        for key, value in params.items():
            if is_prefixed(key):
                extra_params(self)[key] = value
            else:
                plain[key] = value
        if plain:
            super().set_params(**plain)  # type: ignore[misc]
        return self
