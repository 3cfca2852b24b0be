"""Built-in plugin: right-censored survival losses (parametric likelihoods, discrete hazards)."""

from __future__ import annotations

from lossreg import LossSpec, Param, hookimpl

from .discrete import LOGISTIC_HAZARD_MEDIAN_LINK, LogisticHazard
from .parametric import (
    APGW_MEDIAN_LINK,
    LOGLOGISTIC_MEDIAN_LINK,
    WEIBULL_MEDIAN_LINK,
    APGWSurvivalNLL,
    LogLogisticSurvivalNLL,
    WeibullSurvivalNLL,
)

__all__ = [
    "APGW_MEDIAN_LINK",
    "LOGISTIC_HAZARD_MEDIAN_LINK",
    "LOGLOGISTIC_MEDIAN_LINK",
    "NOT_REGISTERED",
    "WEIBULL_MEDIAN_LINK",
    "APGWSurvivalNLL",
    "LogLogisticSurvivalNLL",
    "LogisticHazard",
    "WeibullSurvivalNLL",
    "register_losses",
]

#: Catalogue entries that are deliberately not training criteria, with the reason.
NOT_REGISTERED: dict[str, str] = {}

_BURKE = (
    'Burke, Jones, Noufaily, "A Flexible Parametric Modelling Framework for Survival '
    'Analysis", JRSS-C 69(2) 2020, arXiv:1901.03212'
)


@hookimpl
def register_losses() -> list[LossSpec]:
    return [
        LossSpec(
            name="weibull_survival_nll",
            factory=WeibullSurvivalNLL,
            tasks={"survival"},
            link=WEIBULL_MEDIAN_LINK,
            fit_extras=("event",),
            output_size=lambda ctx: 2,
            summary="Right-censored Weibull NLL on (log rho, log gamma) outputs.",
            reference=_BURKE,
        ),
        LossSpec(
            name="loglogistic_survival_nll",
            factory=LogLogisticSurvivalNLL,
            tasks={"survival"},
            link=LOGLOGISTIC_MEDIAN_LINK,
            params=(
                Param(
                    "fix_lambda",
                    "bool",
                    False,
                    grid=(False, True),
                    doc="fix the PH scale at 1 (standard log-logistic, 2 outputs)",
                ),
            ),
            fit_extras=("event",),
            output_size=lambda ctx: 2 if ctx["fix_lambda"] else 3,
            summary="Right-censored PH-scaled log-logistic (Burr XII) NLL.",
            reference=_BURKE,
        ),
        LossSpec(
            name="apgw_survival_nll",
            factory=APGWSurvivalNLL,
            tasks={"survival"},
            link=APGW_MEDIAN_LINK,
            params=(
                Param(
                    "kappa",
                    "float",
                    0.5,
                    low=-1,
                    closed="neither",
                    grid=(0.0, 0.5, 1.0),
                    doc="APGW shape (initial value when learned); 1 Weibull, 0 log-logistic",
                ),
                Param("learn_kappa", "bool", True, doc="train kappa with the network"),
            ),
            fit_extras=("event",),
            learnable=True,
            output_size=lambda ctx: 3,
            summary="Right-censored adapted power generalised Weibull NLL (PH, AFT, shape).",
            reference=_BURKE,
        ),
        LossSpec(
            name="logistic_hazard",
            aliases=("nll_logistic_hazard",),
            factory=LogisticHazard,
            tasks={"survival"},
            link=LOGISTIC_HAZARD_MEDIAN_LINK,
            params=(
                Param(
                    "n_bins",
                    "int",
                    10,
                    low=1,
                    grid=(5, 10, 20),
                    doc="equal-width time bins on [0, target_max]",
                ),
                Param(
                    "cuts",
                    "vector",
                    None,
                    low=0,
                    closed="neither",
                    nullable=True,
                    doc="explicit increasing upper bin edges; overrides n_bins",
                ),
            ),
            data_params=("target_max",),
            fit_extras=("event",),
            output_size=lambda ctx: len(ctx["cuts"]) if ctx["cuts"] is not None else ctx["n_bins"],
            summary="Discrete-time survival NLL with sigmoid hazards per time bin (pycox).",
            reference=(
                'Kvamme & Borgan, "Continuous and Discrete-Time Survival Prediction with '
                'Neural Networks", Lifetime Data Analysis 27(4) 2021, arXiv:1910.06724'
            ),
        ),
    ]
