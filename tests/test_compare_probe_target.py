"""compare's probe column (``probe_target``), the few-label F1, ``model:supervised`` and the
multi-device generator."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lossreg.compare import compare, load_data, plan_fits
from lossreg.compare._few_labels import few_label_metrics, labelled_share
from lossreg.compare._synthetic import make_synthetic
from lossreg.compare._synthetic_devices import multidevice

FAST = {"max_iter": 2, "n_components": 4, "module__hidden_units": (8,)}


def _frame(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """Features that carry ``activity`` (3 classes); ``device`` is unrelated to them."""
    rng = np.random.default_rng(seed)
    activity = np.arange(n) % 3
    X = rng.normal(size=(n, 4)) + 3.0 * np.eye(3, 4)[activity]
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(4)])
    frame["device"] = rng.integers(0, 2, size=n)
    frame["activity"] = np.array(["sit", "walk", "run"])[activity]
    return frame


def test_multidevice_rows_are_time_aligned_windows_of_every_device():
    frame = multidevice(n_samples=90, n_devices=3, n_activities=4, n_features=5)
    assert frame.shape == (90, 5 + 3)
    assert frame.attrs["probe_target"] == "activity"
    per_window = frame.groupby("group")
    assert (per_window["target"].apply(sorted) == pd.Series([[0, 1, 2]] * 30)).all()
    assert (per_window["activity"].nunique() == 1).all()  # one activity per time window
    assert set(frame["activity"]) <= set(range(4))
    assert frame.equals(multidevice(n_samples=90, n_devices=3, n_activities=4, n_features=5))
    other = multidevice(n_samples=90, n_devices=3, n_activities=4, n_features=5, random_state=1)
    assert not frame.equals(other)
    # a short last window: 10 rows of 4 devices are 3 windows, the last with 2 devices
    name, generated = make_synthetic("synthetic:multidevice(n_samples=10)")
    assert name == "synthetic:multidevice(n_samples=10)" and len(generated) == 10
    assert generated["group"].tolist() == [0] * 4 + [1] * 4 + [2] * 2


def test_multidevice_devices_see_the_window_through_their_own_placement():
    frame = multidevice(n_samples=800, n_devices=2, noise=0.0, separation=0.0)
    X = frame.filter(like="x").to_numpy().reshape(400, 2, -1)
    # without noise each device's rows are an affine image of the same latent motion:
    # device 1 is predicted exactly from device 0 by a linear map (rank n_latent = 4)
    A = np.c_[X[:, 0], np.ones(400)]
    coef, *_ = np.linalg.lstsq(A, X[:, 1], rcond=None)
    assert np.allclose(A @ coef, X[:, 1], atol=1e-8)
    assert np.linalg.matrix_rank(X[:, 0] - X[:, 0].mean(axis=0), tol=1e-8) == 4


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_devices": 1}, "n_devices must be an integer >= 2. Got 1"),
        ({"n_samples": 2.5}, "n_samples must be an integer >= 2. Got 2.5"),
        ({"noise": -1.0}, "noise must be a number >= 0. Got -1.0"),
    ],
)
def test_multidevice_refuses_unusable_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        multidevice(**params)


def test_the_few_label_f1_is_the_macro_mean_of_per_class_f1():
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1, 2], [60, 30, 10])
    emb = rng.normal(size=(100, 2)) + 1.2 * np.eye(3, 2)[y]
    out = few_label_metrics(emb, y, emb, y, 0.5, seed=1)
    rows = labelled_share(y, 0.5, 1)
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scale = StandardScaler().fit(emb[rows])
    predicted = LogisticRegression(max_iter=2000).fit(scale.transform(emb[rows]), y[rows])
    predicted = predicted.predict(scale.transform(emb))
    scores = []
    for c in (0, 1, 2):  # F1 from its definition, class by class
        tp = sum(1 for t, p in zip(y, predicted, strict=True) if t == c and p == c)
        fp = sum(1 for t, p in zip(y, predicted, strict=True) if t != c and p == c)
        fn = sum(1 for t, p in zip(y, predicted, strict=True) if t == c and p != c)
        scores.append(2 * tp / (2 * tp + fp + fn))
    assert out["few_label_probe_f1"] == pytest.approx(sum(scores) / 3)
    assert out["few_label_probe_f1"] < out["few_label_probe_accuracy"]  # the rare class lags


def test_the_probe_column_is_no_feature_and_changes_the_fingerprint():
    frame = _frame()
    plain = load_data(frame.drop(columns=["activity"]), target="device", task="embedding")
    probed = load_data(frame, target="device", task="embedding", probe_target="activity")
    assert "activity" not in probed.X.columns and list(probed.X.columns) == list(plain.X.columns)
    assert probed.probe.tolist() == frame["activity"].tolist()
    assert probed.fingerprint != plain.fingerprint
    # generated data names its probe column for embeddings, and keeps it for other tasks
    generated = load_data("synthetic:multidevice(n_samples=80)", task="embedding")
    assert generated.probe is not None and "activity" not in generated.X.columns
    assert load_data("synthetic:multidevice(n_samples=80)").probe is None


@pytest.mark.parametrize(
    ("frame_change", "column", "message"),
    [
        (None, "actvity", "'actvity' is not in 'dataframe'"),
        (None, "device", "'device' is already the target or the group column"),
        ("continuous", "activity", "'activity' holds continuous values"),
        ("missing", "activity", "'activity' has 1 missing values"),
    ],
)
def test_unusable_probe_columns_are_refused(frame_change, column, message):
    frame = _frame()
    if frame_change == "continuous":
        frame["activity"] = np.linspace(0, 1, len(frame))
    elif frame_change == "missing":
        frame.loc[3, "activity"] = None
    with pytest.raises(ValueError, match=message):
        load_data(frame, target="device", task="embedding", probe_target=column)


def test_a_probe_column_needs_an_embedding_task():
    data = load_data(_frame(), target="device", probe_target="activity")
    with pytest.raises(ValueError, match=r"task='embedding'.*this task is 'binary'"):
        plan_fits(data, losses=["cross_entropy"], cv=2)


def test_probes_read_the_probe_column_and_supervised_trains_on_it():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.preprocessing import StandardScaler

    from lossreg.compare._supervised import supervised_classifier

    frame = _frame()
    results = compare(
        frame,
        target="device",
        task="embedding",
        probe_target="activity",
        probe_labels=0.25,
        losses=["triplet"],
        models=["raw_features", "supervised"],
        cv=3,
        estimator_params=FAST,
        torch_threads=1,
        report=False,
    )
    assert (results["status"] == "ok").all(), results["error"].tolist()
    assert "probe_train" not in results and "probe_test" not in results
    raw = results[results["loss_label"] == "model:raw_features"]
    # the features carry the activity, not the device: probes of the activity succeed
    assert raw["linear_probe_accuracy"].min() > 0.9
    data = load_data(frame, target="device", task="embedding", probe_target="activity")
    plan = plan_fits(
        data,
        losses=["triplet"],
        cv=3,
        models=["raw_features", "supervised"],
        probe_labels=0.25,
        estimator_params=FAST,
    )
    fit = next(f for f in plan["fits"] if f["loss"] == "model:raw_features" and f["fold"] == 2)
    train, test = np.asarray(fit["train"]), np.asarray(fit["test"])
    X, a = data.X.to_numpy(), frame["activity"].to_numpy()
    scale = StandardScaler().fit(X[train])
    rows = train[labelled_share(a[train], 0.25, fit["model_seed"])]
    probe = LogisticRegression(max_iter=2000).fit(scale.transform(X[rows]), a[rows])
    expected = f1_score(a[test], probe.predict(scale.transform(X[test])), average="macro")
    assert raw.loc[raw["fold"] == 2, "few_label_probe_f1"].item() == pytest.approx(expected)
    # model:supervised: the comparison's network with a class head, on every activity label
    supervised = results[results["loss_label"] == "model:supervised"]
    assert supervised["n_probe_labels"].tolist() == [160] * 3
    net = supervised_classifier("embedding", fit["model_seed"], FAST)
    assert not hasattr(net, "n_components")
    from lossreg.compare._fit import preprocessing

    prep = preprocessing().fit(data.X.iloc[train])
    net.fit(prep.transform(data.X.iloc[train]).astype(np.float32), a[train])
    predicted = net.predict(prep.transform(data.X.iloc[test]).astype(np.float32))
    row = supervised[supervised["fold"] == 2]
    assert row["few_label_probe_f1"].item() == pytest.approx(
        f1_score(a[test], predicted, average="macro")
    )
    assert row["few_label_probe_accuracy"].item() == pytest.approx(np.mean(predicted == a[test]))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"probe_labels": None}, r"only record with probe_labels: pass probe_labels"),
        ({"scenarios": ["clean", "symmetric_noise:0.2"]}, r"\['symmetric_noise:0.2'\] would"),
    ],
)
def test_supervised_is_refused_where_nothing_could_be_paired_with_it(changes, message):
    data = load_data(_frame(), target="device", task="embedding", probe_target="activity")
    settings = {"losses": ["triplet"], "models": ["supervised"], "probe_labels": 0.25, **changes}
    with pytest.raises(ValueError, match=message):
        plan_fits(data, cv=3, estimator_params=FAST, **settings)


def test_supervised_drops_every_embedder_only_setting():
    from lossreg.compare._supervised import supervised_classifier

    settings = {"sampler": "random", "n_components": 4, "bin_targets": 5, "max_iter": 1}
    net = supervised_classifier("embedding", 0, settings)
    assert net.max_iter == 1 and "sampler" not in net.get_params()


def test_the_cli_and_config_files_take_probe_target(tmp_path):
    from click.testing import CliRunner

    from lossreg.cli import cli

    data = tmp_path / "rows.csv"
    _frame(90).to_csv(data, index=False)
    config = tmp_path / "c.toml"
    config.write_text(
        f'[compare]\ndata = "{data}"\ntarget = "device"\ntask = "embedding"\n'
        'losses = ["triplet"]\nmodels = ["raw_features"]\nprobe_target = "activity"\n'
    )
    out = tmp_path / "out"
    base = ["compare", "--config", str(config), "--cv", "2", "--max-iter", "1", "--no-progress"]
    result = CliRunner().invoke(cli, [*base, "--out", str(out), "--probe-labels", "0.2"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "results.jsonl").open()]
    assert {"few_label_probe_f1", "knn_accuracy"} <= set(records[0])
    wrong = CliRunner().invoke(cli, [*base, "--out", str(out), "--probe-target", "nope"])
    assert wrong.exit_code != 0 and "'nope' is not in" in wrong.output
