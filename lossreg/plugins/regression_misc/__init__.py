"""Built-in plugin: further regression losses (directional, horizon-weighted, multi-hypothesis,
imbalanced-target and distribution-matching losses)."""

from __future__ import annotations

from typing import Any

from lossreg import Link, LossSpec, Param, hookimpl

from .acr import ACR
from .cs_divergence import CSIB, CSDivergenceRegression
from .dist_regression import DistRegression
from .dm_count import NONNEGATIVE, DMCount
from .frequency_weighted_mae import FrequencyWeightedMAE
from .madl import GMADL, SoftMADL, madl_score, make_madl_scorer
from .multi_hypothesis import BEST_HEAD, MultiHypothesisMinMSE
from .phi_s import PHI_S_INVERSE, PhiSMSE, hadamard_width
from .pixel_focus import PixelFocus
from .s3im import S3IM
from .signal_decay import SignalDecayMAE
from .srl_geometric import LAST_COLUMN, SRLGeometric

__all__ = [
    "ACR",
    "CSIB",
    "GMADL",
    "NOT_REGISTERED",
    "S3IM",
    "CSDivergenceRegression",
    "DMCount",
    "DistRegression",
    "FrequencyWeightedMAE",
    "MultiHypothesisMinMSE",
    "PhiSMSE",
    "PixelFocus",
    "SRLGeometric",
    "SignalDecayMAE",
    "SoftMADL",
    "madl_score",
    "make_madl_scorer",
    "register_losses",
]

#: Catalogue entries of this family that cannot be a training criterion for an MLP.
NOT_REGISTERED: dict[str, str] = {
    "madl": (
        "metric only: -sign(R * R_hat) * |R| has a zero gradient almost everywhere, so the "
        "paper uses it for model selection; use madl_score / make_madl_scorer() in searches "
        "and train with gmadl or soft_madl."
    ),
}

_MADL_PAPER = (
    'Michańków et al., "Mean Absolute Directional Loss as a New Loss Function for Machine '
    'Learning Problems in Algorithmic Investment Strategies", arXiv:2309.10546'
)


def _predictions(output: Any, criterion: Any = None) -> Any:
    latent = int(getattr(criterion, "latent_dim", output.shape[1] - 1))
    pred = output[:, : output.shape[1] - latent]
    return pred[:, 0] if pred.shape[1] == 1 else pred


#: Prediction = the columns before the bottleneck t (criterion.latent_dim columns at the end).
_FIRST = Link(
    "before_latent", _predictions, "value", "the columns before the latent t are the prediction"
)


def _phi_s_width(context: Any) -> int:
    return hadamard_width(int(context["n_outputs"]))


@hookimpl
def register_losses() -> list[LossSpec]:
    return [
        LossSpec(
            name="pixel_focus",
            factory=PixelFocus,
            tasks={"regression"},
            link="identity",
            params=(
                Param(
                    "gamma",
                    "float",
                    1.0,
                    low=0,
                    grid=(1.0, 2.0),
                    doc="focusing exponent of the relative-error weights (0: MAE)",
                ),
            ),
            per_sample=False,
            summary="L1 with detached weights (|e| / batch mean |e|)^gamma on each output.",
            reference=(
                'Lu et al., "Event Camera Demosaicing via Swin Transformer and Pixel-focus '
                'Loss", CVPR Workshops 2024'
            ),
        ),
        LossSpec(
            name="phi_s_mse",
            factory=PhiSMSE,
            tasks={"regression"},
            link=PHI_S_INVERSE,
            data_params=("target_values",),
            output_size=_phi_s_width,
            summary="MSE after PHI-S: PCA + Hadamard rotation, one isotropic target scale.",
            reference=(
                'Ranzinger et al., "PHI-S: Distribution Balancing for Label-Free Multi-Teacher '
                'Distillation", arXiv:2410.01680'
            ),
        ),
        LossSpec(
            name="soft_madl",
            factory=SoftMADL,
            tasks={"regression"},
            link="identity",
            params=(
                Param(
                    "k",
                    "float",
                    5.0,
                    low=0,
                    closed="neither",
                    grid=(1.0, 5.0, 20.0),
                    doc="tanh sharpness",
                ),
            ),
            summary="Smooth directional loss -tanh(k R R_hat) |R| for signed targets.",
            reference=_MADL_PAPER + " (smooth surrogate, not in the paper)",
        ),
        LossSpec(
            name="gmadl",
            factory=GMADL,
            tasks={"regression"},
            link="identity",
            params=(
                Param(
                    "a",
                    "float",
                    10.0,
                    low=0,
                    closed="neither",
                    grid=(1.0, 10.0, 100.0),
                    doc="sigmoid slope (target-scale dependent)",
                ),
                Param("b", "float", 1.0, low=0, grid=(1.0, 2.0, 4.0), doc="exponent of |R|"),
            ),
            summary="Generalized MADL: -(sigmoid(a R R_hat) - 1/2) |R|^b for signed targets.",
            reference=(
                'Michańków et al., "Generalized Mean Absolute Directional Loss as a Solution to '
                "Overfitting and High Transaction Costs in Machine Learning Models Used in "
                'High-Frequency Algorithmic Investment Strategies", arXiv:2412.18405'
            ),
        ),
        LossSpec(
            name="signal_decay_mae",
            factory=SignalDecayMAE,
            tasks={"regression"},
            link="identity",
            params=(
                Param("power", "float", 0.5, low=0, grid=(0.0, 0.5, 1.0), doc="decay exponent"),
            ),
            summary="MAE over ordered outputs (horizons) weighted by (l + 1)^(-power).",
            reference=(
                'Wang et al., "CARD: Channel Aligned Robust Blend Transformer for Time Series '
                'Forecasting", ICLR 2024, arXiv:2305.12095'
            ),
        ),
        LossSpec(
            name="multi_hypothesis_min_mse",
            aliases=("winner_takes_all",),
            factory=MultiHypothesisMinMSE,
            tasks={"regression"},
            link=BEST_HEAD,
            params=(
                Param("n_heads", "int", 4, low=1, grid=(2, 4, 8), doc="number of hypotheses"),
                Param(
                    "epsilon",
                    "float",
                    0.0,
                    low=0,
                    high=1,
                    closed="left",
                    grid=(0.0, 0.05),
                    doc="relaxed-WTA weight of the losing heads",
                ),
                Param("log", "bool", False, doc="the paper's PSNR (log-MSE) form"),
                Param(
                    "log_weight",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    doc="weight of the PSNR form",
                ),
            ),
            data_params=("n_outputs",),
            output_size=lambda context: int(context["n_heads"]) * int(context["n_outputs"]),
            summary="Winner-takes-all MSE over several output heads (multimodal targets).",
            reference=('Liu et al., "Multi-Outputs Is All You Need For Deblur", arXiv:2208.13029'),
        ),
        LossSpec(
            name="frequency_weighted_mae",
            aliases=("fmae",),
            factory=FrequencyWeightedMAE,
            tasks={"regression"},
            link="identity",
            params=(
                Param("n_bins", "int", 10, low=1, grid=(5, 10, 20), doc="histogram bins"),
                Param(
                    "weighting",
                    "choice",
                    "log",
                    options=("log", "effective_number"),
                    grid=("log", "effective_number"),
                    doc="1/log(count) (paper) or effective-number weights (code)",
                ),
                Param(
                    "beta",
                    "float",
                    0.8,
                    low=0,
                    high=1,
                    closed="left",
                    doc="beta of the effective-number weights",
                ),
                Param(
                    "bin_by",
                    "choice",
                    "target",
                    options=("target", "prediction"),
                    doc="bin of the target, or of the detached prediction (reference code)",
                ),
                Param(
                    "fmae_weight",
                    "float",
                    0.25,
                    low=0,
                    high=1,
                    grid=(0.25, 1.0),
                    doc="share of the weighted term; the rest is plain MAE",
                ),
            ),
            data_params=("target_values",),
            summary="MAE with rare target bins up-weighted (mixed with plain MAE, 0.75/0.25).",
            reference=(
                'Nedungadi et al., "AirCast: Improving Air Pollution Forecasting Through '
                'Multi-Variable Data Alignment", arXiv:2502.17919'
            ),
        ),
        LossSpec(
            name="dist_regression",
            factory=DistRegression,
            tasks={"regression"},
            link="identity",
            params=(
                Param("lam", "float", 1.0, low=0, grid=(0.1, 1.0), doc="distribution-term weight"),
                Param("base", "choice", "l1", options=("l1", "l2"), doc="pointwise loss"),
                Param(
                    "expected",
                    "choice",
                    "quantiles",
                    options=("quantiles", "kde"),
                    doc="expected batch labels: training quantiles or the paper's KDE counts",
                ),
                Param(
                    "bandwidth",
                    "float",
                    0.5,
                    low=0,
                    closed="neither",
                    doc="KDE bandwidth factor (kde only)",
                ),
                Param(
                    "grid_step",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    doc="KDE grid step in target units (kde only)",
                ),
            ),
            data_params=("target_values",),
            per_sample=False,
            summary="Pointwise L1 plus L1 between sorted batch predictions and expected labels.",
            reference=(
                'Nie et al., "Dist Loss: Enhancing Regression in Few-Shot Region through '
                'Distribution Distance Constraint", arXiv:2411.15216'
            ),
        ),
        LossSpec(
            name="cs_divergence_regression",
            factory=CSDivergenceRegression,
            tasks={"regression"},
            link="identity",
            params=(
                Param(
                    "sigma",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(0.5, 1.0, 2.0),
                    doc="Gaussian kernel width",
                ),
            ),
            fit_extras=("features",),
            per_sample=False,
            summary="Conditional Cauchy-Schwarz divergence of predictions from targets given X.",
            reference=(
                'Yu et al., "Cauchy-Schwarz Divergence Information Bottleneck for Regression", '
                "ICLR 2024, arXiv:2404.17951"
            ),
        ),
        LossSpec(
            name="srl_geometric",
            factory=SRLGeometric,
            tasks={"regression"},
            link=LAST_COLUMN,
            params=(
                Param("feature_dim", "int", 10, low=2, doc="embedding size D (output columns)"),
                Param("n_levels", "int", 20, low=3, grid=(10, 20), doc="target levels"),
                Param("temperature", "float", 0.1, low=0, closed="neither", doc="contrast tau"),
                Param("momentum", "float", 0.9, low=0, high=1, closed="left", doc="bank momentum"),
                Param("alpha", "float", 1.0, low=0, doc="weight of the trace length"),
                Param("beta", "float", 0.1, low=0, doc="weight of the step-length variance"),
                Param("w_con", "float", 0.1, low=0, grid=(0.0, 0.1), doc="contrastive weight"),
                Param("w_env", "float", 0.5, low=0, grid=(0.0, 0.5), doc="enveloping weight"),
                Param("w_hom", "float", 0.5, low=0, grid=(0.0, 0.5), doc="homogeneity weight"),
                Param("n_points", "int", 100, low=1, doc="envelope points"),
                Param("warmup_epochs", "int", 0, low=0, doc="epochs of plain L1 first"),
            ),
            data_params=("target_min", "target_max"),
            learnable=True,
            output_size=lambda context: int(context["feature_dim"]) + 1,
            summary="L1 plus surrogate-based enveloping/homogeneity constraints on embeddings.",
            reference=(
                'Dong et al., "Improve Representation for Imbalanced Regression through '
                'Geometric Constraints", CVPR 2025, arXiv:2503.00876'
            ),
        ),
        LossSpec(
            name="cs_ib",
            factory=CSIB,
            tasks={"regression"},
            link=_FIRST,
            params=(
                Param("beta", "float", 0.01, low=0, grid=(0.0, 0.001, 0.01, 0.1), doc="QMI weight"),
                Param("latent_dim", "int", 16, low=1, doc="width K of the bottleneck columns"),
                Param(
                    "sigma", "float", 1.0, low=0, closed="neither", doc="divergence kernel width"
                ),
                Param(
                    "qmi_sigma",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    nullable=True,
                    doc="QMI kernel width; None: median heuristic",
                ),
            ),
            fit_extras=("features",),
            per_sample=False,
            output_size=lambda context: int(context["n_outputs"]) + int(context["latent_dim"]),
            summary="CS divergence of predictions plus beta x normalised CS-QMI of (X, latent t).",
            reference=(
                'Yu et al., "Cauchy-Schwarz Divergence Information Bottleneck for Regression", '
                "ICLR 2024, arXiv:2404.17951"
            ),
        ),
        LossSpec(
            name="s3im",
            factory=S3IM,
            tasks={"regression"},
            link="identity",
            params=(
                Param("lam", "float", 1.0, low=0, grid=(0.0, 1.0), doc="weight of 1 - S3IM"),
                Param("kernel_size", "int", 4, low=1, doc="SSIM window size"),
                Param("stride", "int", 4, low=1, doc="SSIM window stride"),
                Param("repeat", "int", 10, low=1, doc="number of random re-tilings"),
                Param(
                    "patch_height",
                    "int",
                    None,
                    low=1,
                    nullable=True,
                    doc="pseudo-image height (batch a multiple of it); None: automatic",
                ),
            ),
            per_sample=False,
            stochastic=True,
            summary="MSE plus 1 - SSIM of randomly re-tiled batch pseudo-images (S3IM).",
            reference=(
                'Xie et al., "S3IM: Stochastic Structural SIMilarity and Its Unreasonable '
                'Effectiveness for Neural Fields", ICCV 2023, arXiv:2308.07032'
            ),
        ),
        LossSpec(
            name="acr",
            factory=ACR,
            tasks={"regression"},
            link="identity",
            params=(
                Param(
                    "lam",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(0.5, 1.0),
                    doc="small-error weight",
                ),
                Param(
                    "pca_variance",
                    "float",
                    None,
                    low=0,
                    high=1,
                    closed="right",
                    nullable=True,
                    doc="explained variance of the shape model; None: the reference schedule",
                ),
            ),
            data_params=("target_values",),
            summary="Adaptive coordinate loss: log/quadratic branches, difficulty from target PCA.",
            reference=(
                'Fard and Mahoor, "ACR Loss: Adaptive Coordinate-based Regression Loss for Face '
                'Alignment", ICPR 2022, arXiv:2203.15835'
            ),
        ),
        LossSpec(
            name="dm_count",
            factory=DMCount,
            tasks={"regression"},
            link=NONNEGATIVE,
            params=(
                Param("lam_ot", "float", 0.1, low=0, grid=(0.0, 0.1, 1.0), doc="OT weight"),
                Param("lam_tv", "float", 0.01, low=0, grid=(0.0, 0.01, 0.1), doc="TV weight"),
                Param("epsilon", "float", 10.0, low=0, closed="neither", doc="Sinkhorn epsilon"),
                Param("n_iter", "int", 100, low=1, doc="maximum Sinkhorn iterations"),
                Param(
                    "activation",
                    "choice",
                    "relu",
                    options=("relu", "softplus"),
                    doc="makes the outputs non-negative densities",
                ),
            ),
            summary="Count L1 plus Sinkhorn OT and TV between normalised count histograms.",
            reference=('Wang et al., "Distribution Matching for Crowd Counting", NeurIPS 2020'),
        ),
    ]
