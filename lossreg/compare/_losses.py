"""Loss choices for ``lossreg compare``: parse ``name(param=value, ...)`` lists; task defaults."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BASELINES", "TASK_DEFAULTS", "LossChoice", "parse_losses", "task_default_losses"]

#: the loss every other is compared with, per task
BASELINES = {
    "binary": "cross_entropy",
    "multiclass": "cross_entropy",
    "regression": "mse",
    "multilabel": "bce",
    "multioutput": "mse",
    "embedding": "triplet",
    "outlier": "mse",
    "ordinal": "cross_entropy",
    "ranking": "bpr",
    "recommendation": "bpr",
    "survival": "weibull_survival_nll",
    "mixed": "uncertainty_weighted_mixed(weights='equal')",
    "embedding_regression": "cwcl(kernel='laplace')",  # the loss that weighs pairs by y
}

#: a sensible first comparison per task; names not registered here are skipped
TASK_DEFAULTS = {
    "binary": (
        "cross_entropy",
        "focal",
        "generalized_cross_entropy",
        "symmetric_cross_entropy",
        "mae_prob",
        "nce_rce",
    ),
    "regression": ("mse", "mae", "huber", "log_cosh", "cauchy", "pinball", "gaussian_nll"),
    "multioutput": ("mse", "mae", "huber", "log_cosh", "uncertainty_weighted_multitask"),
    "multilabel": ("bce", "binary_focal", "asymmetric", "distribution_balanced", "dice"),
    "embedding": ("triplet", "contrastive", "multi_similarity", "supcon", "proxy_anchor"),
    "outlier": ("mse", "mae", "huber", "gaussian_nll", "apre"),
    "ordinal": ("cross_entropy", "distance_smoothed_ce", "ordinal_emd", "ntl_wasserstein"),
    "ranking": ("bpr", "thurstone_fidelity"),
    "survival": (
        "weibull_survival_nll",
        "loglogistic_survival_nll",
        "apgw_survival_nll",
        "logistic_hazard",
    ),
}
TASK_DEFAULTS["mixed"] = ("uncertainty_weighted_mixed",)
TASK_DEFAULTS["multiclass"] = TASK_DEFAULTS["binary"]
TASK_DEFAULTS["embedding_regression"] = ()
TASK_DEFAULTS["recommendation"] = (
    "bpr",
    "bce",
    "cosine_contrastive",
    "cross_entropy",
)  # label losses need bin_targets: none by default


@dataclass(frozen=True)
class LossChoice:
    """A registered loss name with fixed hyperparameters."""

    name: str
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)

    @property
    def label(self) -> str:
        if not self.params:
            return self.name
        inner = ", ".join(f"{k}={v!r}" for k, v in sorted(self.params.items()))
        return f"{self.name}({inner})"

    def params_json(self) -> str:
        return json.dumps(self.params, sort_keys=True, default=repr)


def parse_losses(text: str | list[Any] | tuple[Any, ...]) -> list[LossChoice]:
    """``"ce,focal(gamma=2.0),generalized_cross_entropy(q=0.7)"`` or a list of such strings,
    ``LossChoice``s or ``(name, params)`` pairs."""
    if isinstance(text, str):
        items: list[Any] = _split_top_level(text)
    else:
        items = list(text)
    out = []
    for item in items:
        if isinstance(item, LossChoice):
            out.append(item)
        elif isinstance(item, tuple):
            out.append(LossChoice(item[0], dict(item[1])))
        else:
            out.append(_parse_one(str(item)))
    if not out:
        raise ValueError("No losses given: pass --losses a,b,c or --task-default.")
    labels = [c.label for c in out]
    dupes = sorted({label for label in labels if labels.count(label) > 1})
    if dupes:
        raise ValueError(f"Losses listed twice: {', '.join(dupes)}.")
    return out


def task_default_losses(task: str, registered: list[str]) -> list[LossChoice]:
    """The :data:`TASK_DEFAULTS` of ``task`` that are registered."""
    return [LossChoice(name) for name in TASK_DEFAULTS[task] if name in registered]


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in text:
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += char == "("
        depth -= char == ")"
        current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _parse_one(text: str) -> LossChoice:
    match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?", text.strip(), re.S)
    if not match:
        raise ValueError(
            f"Cannot read loss {text!r}: write NAME or NAME(param=value, ...), "
            "e.g. focal(gamma=2.0)."
        )
    name, inner = match.group(1), match.group(2)
    params: dict[str, Any] = {}
    if inner and inner.strip():
        try:
            call = ast.parse(f"f({inner})", mode="eval").body
        except SyntaxError as exc:
            raise ValueError(f"Cannot read the parameters of {text!r}: {exc.msg}.") from None
        if not isinstance(call, ast.Call) or call.args:
            raise ValueError(f"Loss parameters must be keyword=value pairs. Got {text!r}.")
        for kw in call.keywords:
            try:
                params[str(kw.arg)] = ast.literal_eval(kw.value)
            except ValueError:
                # a bare word is a string option: reduction=mean
                params[str(kw.arg)] = ast.unparse(kw.value)
    return LossChoice(name, params)
