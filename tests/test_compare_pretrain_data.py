"""Two-phase training: HiddenLayersFrom, compare's pretraining set, precision at fixed recall."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from lossreg.cli import cli
from lossreg.compare import compare, load_data, plan_fits
from lossreg.compare._precision_recall import PRECISION_AT_RECALL, precision_at_recall
from lossreg.compare._synthetic_shift import shifted_positives
from lossreg.estimators import MLP, HiddenLayersFrom, LossClassifier, LossEmbedder

REAL = (
    "synthetic:shifted_positives(n_samples=160, n_features=4, n_informative=3, positive_rate=0.25)"
)
SHIFTED = (
    "synthetic:shifted_positives(n_samples=240, n_features=4, n_informative=3, "
    "positive_rate=0.5, shift=1.0, random_state=1)"
)
FAST = {"max_iter": 2, "module__hidden_units": (8, 4), "batch_size": 64}


@pytest.fixture(scope="module")
def embedder() -> tuple[LossEmbedder, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    est = LossEmbedder(
        "supcon", n_components=3, max_iter=2, random_state=0, module__hidden_units=(8, 6)
    )
    return est.fit(X, y), X, y


# -- HiddenLayersFrom ------------------------------------------------------------------------


def test_hidden_layers_are_copied_and_the_output_layer_is_new(embedder):
    source, _, _ = embedder
    module = HiddenLayersFrom(source)(n_features=5, n_outputs=1)
    new, old = list(module.layers), list(source.module_.layers)
    for i in (0, 2):  # the two hidden Linear layers (ReLU between them)
        assert torch.equal(new[i].weight, old[i].weight) and torch.equal(new[i].bias, old[i].bias)
    assert new[-1].weight.shape == (1, 6) and old[-1].weight.shape == (3, 6)


def test_a_classifier_starts_from_the_embedder_and_clone_keeps_the_weights(embedder):
    source, X, y = embedder
    clf = LossClassifier(
        "binary_focal", module=HiddenLayersFrom(source), max_iter=1, lr=1e-12, random_state=0
    )
    fitted = clone(clf).fit(X, y)  # a clone deep-copies the factory with its weights
    assert torch.allclose(fitted.module_.layers[0].weight, source.module_.layers[0].weight)
    assert fitted.predict_proba(X).shape == (len(y), 2)
    # the source's architecture (hidden_units, activation) is taken when not set
    tanh = LossEmbedder("supcon", max_iter=1, random_state=0, module__hidden_units=(7,))
    tanh.set_params(module__activation="tanh").fit(X, y)
    made = HiddenLayersFrom(tanh)(n_features=5, n_outputs=2)
    assert isinstance(made.layers[1], torch.nn.Tanh) and made.layers[-1].in_features == 7


@pytest.mark.parametrize(
    ("attempt", "message"),
    [
        (lambda f: HiddenLayersFrom(f)(4, 1), "takes 5 input features; this fit has 4"),
        (
            lambda f: HiddenLayersFrom(f)(5, 1, hidden_units=(8, 5)),
            "Linear\\[5, 8\\] here .* Linear\\[6, 8\\]",
        ),
        (lambda f: HiddenLayersFrom(f)(5, 1, batch_norm=True), "hidden layers do not match"),
        (lambda f: HiddenLayersFrom(LossEmbedder("supcon")), "not fitted. Call its fit"),
        (lambda f: HiddenLayersFrom(torch.nn.Linear(2, 2)), "copies lossreg's MLP; got a Linear"),
    ],
)
def test_hidden_layers_from_refuses_what_it_cannot_copy(embedder, attempt, message):
    fitted, _, _ = embedder
    with pytest.raises(ValueError, match=message):
        attempt(fitted)


def test_an_mlp_itself_can_be_the_source():
    mlp = MLP(3, 2, hidden_units=(4,))
    made = HiddenLayersFrom(mlp)(n_features=3, n_outputs=5)
    assert torch.equal(made.layers[0].weight, mlp.layers[0].weight)
    assert made.layers[-1].out_features == 5


# -- precision at fixed recall ---------------------------------------------------------------


def _precision_at_recall_by_loops(y: np.ndarray, score: np.ndarray, recall: float) -> float:
    # every distinct score as a threshold, counted row by row
    best = 0.0
    for threshold in set(score.tolist()):
        tp = fp = fn = 0
        for label, value in zip(y, score, strict=True):
            flagged = value >= threshold
            tp += flagged and label == 1
            fp += flagged and label == 0
            fn += (not flagged) and label == 1
        if tp / (tp + fn) >= recall:
            best = max(best, tp / (tp + fp))
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_precision_at_recall_matches_a_threshold_by_threshold_count(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=40)
    score = np.round(rng.random(40) + 0.3 * y, 1)  # rounded: tied scores
    for recall in (0.5, 0.8, 1.0):
        assert precision_at_recall(y, score, recall) == pytest.approx(
            _precision_at_recall_by_loops(y, score, recall)
        )


def test_precision_at_recall_needs_both_classes_and_a_valid_recall():
    with pytest.raises(ValueError, match="both classes"):
        precision_at_recall([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="recall must be in"):
        precision_at_recall([0, 1], [0.2, 0.3], recall=0.0)


# -- the generator ---------------------------------------------------------------------------


def test_shifted_positives_moves_only_the_positives_by_shift():
    plain = shifted_positives(n_samples=300, positive_rate=0.2, random_state=3)
    moved = shifted_positives(n_samples=300, positive_rate=0.2, shift=2.0, random_state=3)
    assert plain["target"].sum() == 60 and plain["target"].equals(moved["target"])
    gap = np.linalg.norm((moved - plain).drop(columns="target").to_numpy(), axis=1)
    positive = plain["target"].to_numpy() == 1
    assert np.allclose(gap[positive], 2.0) and np.allclose(gap[~positive], 0.0)
    other = shifted_positives(n_samples=300, positive_rate=0.2, random_state=4)
    assert not np.allclose(other.to_numpy(), plain.to_numpy())  # new rows, same concept


# -- compare ---------------------------------------------------------------------------------


def test_compare_pretrains_an_embedding_on_the_pretraining_set():
    results = compare(
        REAL,
        losses="binary_focal,bce",
        pretrain="supcon",
        pretrain_data=SHIFTED,
        cv=2,
        estimator_params=FAST,
        torch_threads=1,
    )
    assert (results["status"] == "ok").all(), results["error"].dropna().tolist()
    assert results[PRECISION_AT_RECALL].between(0, 1).all()
    assert "pretrained_accuracy" not in results  # an embedding predicts no class


SEEN: dict = {}


class _Spy(ClassifierMixin, BaseEstimator):
    """The last step of the pipeline: records what it is given in SEEN."""

    def fit(self, X, y, pretrain_rows=None, sample_weight=None):
        SEEN.update(X=X, pretrain_rows=pretrain_rows, sample_weight=sample_weight)
        self.classes_ = np.unique(y)
        return self


def test_the_pretraining_set_is_transformed_by_the_folds_preprocessing():
    from lossreg.compare._fit import preprocessing
    from lossreg.compare._pretrain_data import PretrainingPipeline, pretraining_set

    data = load_data(REAL)
    pipe = PretrainingPipeline(
        [("prep", preprocessing()), ("model", _Spy())], pretrain_data=SHIFTED
    )
    fitted = clone(pipe).fit(data.X, data.y, model__sample_weight=np.ones(len(data.y)))
    X_pre, y_pre = pretraining_set(SHIFTED, "target")
    # scaled with the training rows' statistics, not its own: its shifted positives stay shifted
    scale = data.X.std(ddof=0).to_numpy()
    expected = (X_pre - data.X.mean()).to_numpy() / scale
    assert np.allclose(SEEN["pretrain_rows"][0], expected)
    assert np.array_equal(SEEN["pretrain_rows"][1], y_pre)
    assert SEEN["sample_weight"] is not None and fitted[:-1].transform(data.X).shape[1] == 4
    with pytest.raises(ValueError, match="to its last step only"):
        clone(pipe).fit(data.X, data.y, prep__x=1)


def test_the_pretraining_set_is_part_of_each_fits_key():
    data = load_data(REAL)
    plain = plan_fits(data, losses="binary_focal", cv=2, pretrain="supcon")
    other = plan_fits(data, losses="binary_focal", cv=2, pretrain="supcon", pretrain_data=SHIFTED)
    assert {f["key"] for f in plain["fits"]}.isdisjoint(f["key"] for f in other["fits"])
    assert other["fits"][0]["pretrain_data"]["target"] == "target"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pretrain_data": SHIFTED}, "needs pretrain=LOSS"),
        ({"pretrain": "supcon", "pretrain_data": pd.DataFrame()}, "must name a data set"),
        ({"pretrain": "supcon", "pretrain_data": "iris"}, "missing \\['x0'"),
        ({"pretrain": "supcon", "teacher": "pretrained"}, "embedding loss \\('supcon'\\)"),
        ({"pretrain": "mse"}, "supports regression, not 'binary'"),
    ],
)
def test_pretraining_misuse_is_refused(kwargs, message):
    data = load_data(REAL)
    with pytest.raises(ValueError, match=message):
        plan_fits(data, losses="binary_focal", cv=2, **kwargs)


def test_classification_pretraining_needs_the_datas_classes():
    # the same classes: the whole network (output layer included) can be continued
    plan = plan_fits(load_data(REAL), cv=2, losses="bce", pretrain="ce", pretrain_data=SHIFTED)
    assert plan["fits"][0]["pretrain"] == "cross_entropy"
    data = load_data(
        "synthetic:classification(n_samples=100, n_features=4, n_informative=3, n_classes=2)"
    )
    other = "synthetic:classification(n_samples=100, n_features=4, n_informative=3, n_classes=3)"
    with pytest.raises(ValueError, match="needs the data's classes \\[0, 1\\]; it has"):
        plan_fits(data, losses="cross_entropy", cv=2, pretrain="ce", pretrain_data=other)


def test_the_cli_and_config_take_pretrain_data(tmp_path, monkeypatch):
    import lossreg.compare

    captured = {}

    def stop(data, **kwargs):  # what compare() receives is all this test needs
        captured.update(kwargs)
        raise ValueError("stopped")

    monkeypatch.setattr(lossreg.compare, "compare", stop)
    path = tmp_path / "c.toml"
    path.write_text(f'[compare]\ndata = "iris"\nlosses = "ce"\npretrain_data = "{SHIFTED}"\n')
    CliRunner().invoke(cli, ["compare", "--config", str(path), "--pretrain", "supcon"])
    assert captured["pretrain_data"] == SHIFTED and captured["pretrain"] == "supcon"
    CliRunner().invoke(cli, ["compare", "iris", "--losses", "ce", "--pretrain-data", "iris"])
    assert captured["pretrain_data"] == "iris"
