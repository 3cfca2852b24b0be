"""Built-in plugin: losses on unlabeled rows (semi-supervised, clustering, test-time adaptation).

Unlabeled rows carry the label -1, the scikit-learn convention (``SelfTrainingClassifier``).
Inside these losses a target of -1 marks an unlabeled row: supervised terms use the labelled
rows only, unsupervised terms every row (each loss's docstring says which).
"""

from __future__ import annotations

from lossreg import LossSpec, Param, hookimpl

from .cluster import DepictClusterKL
from .entropy import EntropyMinimization, EntropyPriorKL, MarginalEntropy, weighted_entropy
from .legogcd import LocalEntropyRegularization
from .margin import SelfLabeledMargin
from .reconstruction import KNOWN_CLASS_SOFTMAX_LINK, ProjectionBasedNCD, pbn_output_size
from .tta import EATAEntropy
from .vat import VirtualAdversarialLoss

__all__ = [
    "KNOWN_CLASS_SOFTMAX_LINK",
    "NOT_REGISTERED",
    "DepictClusterKL",
    "EATAEntropy",
    "EntropyMinimization",
    "EntropyPriorKL",
    "LocalEntropyRegularization",
    "MarginalEntropy",
    "ProjectionBasedNCD",
    "SelfLabeledMargin",
    "VirtualAdversarialLoss",
    "pbn_output_size",
    "register_losses",
    "weighted_entropy",
]

#: Catalogue entries that are deliberately not training criteria, with the reason.
NOT_REGISTERED: dict[str, str] = {
    "dual_view_kl": (
        "The estimators now feed two augmented views of each row to a loss that declares "
        "views=2, but the catalogue's symmetric KL between the views is a reconstruction "
        "(UNVERIFIED) and which predictions LegoGCD compares, and with what weight, was not "
        "checked against the paper; no claim depends on it."
    ),
    "cafa": (
        "Needs the network's penultimate features (a second head), the class means and shared "
        "covariance of those features on the source training rows (computed from the fitted "
        "model after training) and an adapt(X) loop updating normalisation parameters; a "
        "criterion on logits has none of these."
    ),
}

_SFDA = (
    'Bateson et al., "Source-Free Domain Adaptation for Image Segmentation", Medical Image '
    "Analysis 2022, arXiv:2108.03152"
)
_CLASS_WEIGHTS = Param(
    "class_weights",
    "vector",
    None,
    low=0,
    nullable=True,
    doc="per-class weights of the entropy term; None weighs every class 1",
)


@hookimpl
def register_losses() -> list[LossSpec]:
    return [
        LossSpec(
            semi_supervised=True,  # y == -1 marks unlabeled rows
            name="entropy_min",
            factory=EntropyMinimization,
            tasks={"multiclass"},
            link="softmax",
            params=(_CLASS_WEIGHTS,),
            summary="Entropy of each row's softmax (all rows, labels ignored).",
            reference=(
                'Grandvalet & Bengio, "Semi-supervised Learning by Entropy Minimization", '
                f"NIPS 2004; {_SFDA}"
            ),
        ),
        LossSpec(
            semi_supervised=True,  # y == -1 marks unlabeled rows
            name="entropy_prior_kl",
            factory=EntropyPriorKL,
            tasks={"multiclass"},
            link="softmax",
            params=(
                Param(
                    "lambda_se",
                    "float",
                    1.0,
                    low=0,
                    grid=(0.1, 1.0),
                    doc="weight of the entropy term",
                ),
                Param(
                    "lambda_prior",
                    "float",
                    1.0,
                    low=0,
                    grid=(0.1, 1.0, 10.0),
                    doc="weight of the KL(mean prediction || prior) term",
                ),
                _CLASS_WEIGHTS,
                Param(
                    "prior",
                    "vector",
                    None,
                    low=0,
                    high=1,
                    nullable=True,
                    doc="class-ratio prior; None uses the fold's class_priors",
                ),
            ),
            data_params=("class_priors",),
            per_sample=False,
            summary="Entropy minimisation + KL(batch mean prediction || class prior).",
            reference=_SFDA,
        ),
        LossSpec(
            semi_supervised=True,  # y == -1 marks unlabeled rows
            name="marginal_entropy",
            factory=MarginalEntropy,
            tasks={"multiclass"},
            link="softmax",
            params=(
                Param(
                    "lam",
                    "float",
                    0.3,
                    low=0,
                    grid=(0.1, 0.3, 1.0),
                    doc="weight of the negative entropy of the batch mean prediction",
                ),
            ),
            per_sample=False,
            summary="CE on labelled rows + lam * sum(pbar log pbar) over all rows (diversity).",
            reference=(
                'Long et al., "Training-Free Unsupervised Prompt for Vision-Language Models", '
                "arXiv:2404.16339"
            ),
        ),
        LossSpec(
            semi_supervised=True,  # y == -1 marks unlabeled rows
            name="self_labeled_margin",
            factory=SelfLabeledMargin,
            tasks={"binary"},
            link="sigmoid",
            params=(
                Param(
                    "lam",
                    "float",
                    1.0,
                    low=0,
                    grid=(0.1, 0.5, 1.0),
                    doc="weight of the unlabeled (own-sign) term",
                ),
                Param(
                    "phi",
                    "choice",
                    "logistic",
                    options=("logistic", "hinge"),
                    grid=("logistic", "hinge"),
                    doc="margin loss",
                ),
            ),
            summary="phi(y f) on labelled rows + lam * phi(|f|) on unlabeled (-1) rows.",
            reference=(
                'Saberi et al., "Out-Of-Domain Unlabeled Data Improves Generalization", '
                "ICLR 2024, arXiv:2310.00027"
            ),
        ),
        LossSpec(
            semi_supervised=True,  # y == -1 marks unlabeled rows
            name="vat",
            factory=VirtualAdversarialLoss,
            tasks={"binary", "multiclass"},
            link="softmax",
            params=(
                Param(
                    "eps",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(0.5, 1.0, 2.0),
                    doc="norm of each row's perturbation, in standardised feature units",
                ),
                Param(
                    "xi",
                    "float",
                    1e-6,
                    low=0,
                    closed="neither",
                    doc="finite-difference step of the power iteration",
                ),
                Param(
                    "alpha",
                    "float",
                    1.0,
                    low=0,
                    grid=(0.3, 1.0, 3.0),
                    doc="weight of the virtual adversarial KL term",
                ),
                Param(
                    "entmin",
                    "bool",
                    False,
                    grid=(False, True),
                    doc="add the mean entropy of the unlabeled rows' predictions (VAT+EntMin)",
                ),
            ),
            per_sample=False,
            stochastic=True,  # a random start direction per row and batch
            views=2,  # (2N, C): rows 0..N-1 the clean rows, N..2N-1 the perturbed ones
            view_maker="virtual_adversarial",
            summary="VAT: CE on labelled rows + alpha KL(p(x) || p(x + r_adv)) on all rows.",
            reference=(
                'Miyato et al., "Virtual Adversarial Training: A Regularization Method for '
                'Supervised and Semi-Supervised Learning", IEEE TPAMI 2019, arXiv:1704.03976'
            ),
        ),
        LossSpec(
            semi_supervised=True,  # y == -1 marks unlabeled rows
            name="depict_cluster_kl",
            factory=DepictClusterKL,
            tasks={"multiclass"},
            link="softmax",
            summary="KL(q || p) with DEPICT's frequency-balanced detached target q (clustering).",
            reference=(
                'Dizaji et al., "Deep Clustering via Joint Convolutional Autoencoder Embedding '
                'and Relative Entropy Minimization", ICCV 2017'
            ),
        ),
        LossSpec(
            semi_supervised=True,  # y == -1 marks unlabeled rows
            name="eata_entropy",
            factory=EATAEntropy,
            tasks={"multiclass"},
            link="softmax",
            params=(
                Param(
                    "e_margin_factor",
                    "float",
                    0.4,
                    low=0,
                    closed="neither",
                    grid=(0.4, 0.5),
                    doc="entropy threshold E0 = factor * ln(C)",
                ),
                Param(
                    "d_margin",
                    "float",
                    0.05,
                    low=0,
                    high=1,
                    closed="right",
                    grid=(0.05, 0.5, 0.9),
                    doc="cosine redundancy threshold",
                ),
            ),
            data_params=("n_classes",),
            per_sample=False,
            summary="EATA: entropy of reliable, non-redundant rows, weighted exp(E0 - H).",
            reference=(
                'Niu et al., "Efficient Test-Time Model Adaptation without Forgetting", ICML 2022'
            ),
        ),
        LossSpec(
            semi_supervised=True,  # y == -1 marks unlabeled rows
            name="pbn_ce_recon",
            factory=ProjectionBasedNCD,
            tasks={"multiclass"},
            link=KNOWN_CLASS_SOFTMAX_LINK,
            params=(
                Param(
                    "w",
                    "float",
                    0.5,
                    low=0,
                    high=1,
                    grid=(0.25, 0.5, 0.75, 0.9),
                    doc="weight of the CE term; 1 - w weighs the reconstruction",
                ),
            ),
            data_params=("n_classes",),
            fit_extras=("features",),
            per_sample=False,
            output_size=pbn_output_size,
            summary="PBN: w * CE(known-class rows) + (1 - w) * squared reconstruction of X.",
            reference=(
                'Troisemaine et al., "A Practical Approach to Novel Class Discovery in Tabular '
                'Data", Data Mining and Knowledge Discovery 2024, arXiv:2311.05440'
            ),
        ),
        LossSpec(
            semi_supervised=True,  # y == -1 marks unlabeled rows
            name="local_entropy_reg",
            factory=LocalEntropyRegularization,
            tasks={"multiclass"},
            link="softmax",
            params=(
                Param(
                    "threshold",
                    "float",
                    0.7,
                    low=0,
                    high=1,
                    grid=(0.5, 0.7, 0.9),
                    doc="confidence needed to select an unlabeled row",
                ),
                Param(
                    "select_temperature",
                    "float",
                    0.1,
                    low=0,
                    closed="neither",
                    doc="temperature of the selection softmax",
                ),
                Param(
                    "temperature",
                    "float",
                    0.05,
                    low=0,
                    closed="neither",
                    doc="temperature of the soft targets and predictions",
                ),
                Param("tau", "float", 0.4, low=0, doc="weight of log q-hat added to the logits"),
                Param(
                    "momentum",
                    "float",
                    0.999,
                    low=0,
                    high=1,
                    closed="left",
                    doc="momentum of the moving-average class prior q-hat",
                ),
                Param(
                    "n_novel",
                    "int",
                    0,
                    low=0,
                    doc="number of novel-class outputs after the known classes",
                ),
            ),
            data_params=("n_classes",),
            output_size=lambda ctx: ctx["n_classes"] + ctx["n_novel"],
            summary="LegoGCD: soft self-training on confident unlabeled rows of known classes.",
            reference=(
                'Cao et al., "Solving the Catastrophic Forgetting Problem in Generalized '
                'Category Discovery", CVPR 2024'
            ),
        ),
    ]
