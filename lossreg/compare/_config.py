"""Comparison settings from a TOML file: ``lossreg compare --config FILE``.

The file's ``[compare]`` table holds the same settings as the command's options; other tables
are left to whoever else reads the file (the claims experiments keep their verdict rules
beside it)::

    [compare]
    data = "digits"
    losses = ["cross_entropy", "symmetric_cross_entropy(alpha=0.1, beta=1.0)"]
    scenarios = ["clean", "symmetric_noise:0.4"]
    cv = 5
    repeats = 2

    [compare.estimator]
    max_iter = 60
    module__hidden_units = [64]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib

__all__ = ["CONFIG_KEYS", "load_config"]

#: key of the ``[compare]`` table -> its type(s); ``estimator`` is a table of estimator params
CONFIG_KEYS: dict[str, tuple[type, ...]] = {
    "data": (str,),
    "target": (str, list),
    "group": (str,),
    "target_domain": (str,),
    "votes": (str, list),
    "event": (str,),
    "bid": (str,),
    "teacher": (str, list),
    "calibrate": (str,),
    "pretrain": (str,),
    "pretrain_data": (str,),
    "curves": (bool,),
    "models": (str, list),
    "adapt": (str,),
    "adapt_params": (dict,),
    "probe_labels": (float,),
    "blocking_k": (int,),
    "aggregate": (str, list),
    "probe_target": (str,),
    "value": (str,),
    "losses": (str, list),
    "task": (str,),
    "baseline": (str,),
    "cv": (int,),
    "repeats": (int,),
    "split": (str,),
    "test_groups": (list, str, int),
    "scenarios": (str, list),
    "scoring": (str,),
    "seed": (int,),
    "estimator": (dict,),
}


def load_config(path: str | Path) -> dict[str, Any]:
    """Return the ``[compare]`` table of a TOML file, checked key by key.

    Raises ``ValueError`` naming the file and the key for anything it cannot use, so a typo
    in a long experiment file does not silently fall back to a default.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Config file {str(path)!r} does not exist.")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"Cannot read {str(path)!r} as TOML: {exc}.") from None
    table = document.get("compare")
    if not isinstance(table, dict):
        raise ValueError(
            f"{str(path)!r} has no [compare] table; put the comparison settings "
            f"({', '.join(CONFIG_KEYS)}) under [compare]."
        )
    unknown = sorted(set(table) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(
            f"{str(path)!r}: unknown key(s) {', '.join(map(repr, unknown))} in [compare]; "
            f"known keys: {', '.join(CONFIG_KEYS)}."
        )
    for key, value in table.items():
        types = CONFIG_KEYS[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            wanted = " or ".join(t.__name__ for t in types)
            raise ValueError(
                f"{str(path)!r}: [compare] {key} must be of type {wanted}. Got {value!r} instead."
            )
    out = dict(table)
    if isinstance(out.get("scenarios"), str):
        out["scenarios"] = [out["scenarios"]]
    return out
