"""Blocking recall (``blocking_k``), the MinHash blocker and ``synthetic:duplicate_records``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from lossreg.cli import cli
from lossreg.compare import compare
from lossreg.compare._blocking import (
    blocking_metrics,
    blocking_scores,
    check_blocking_k,
    nearest_others,
)
from lossreg.compare._minhash import MinHashBlocker
from lossreg.compare._synthetic_records import duplicate_records


def test_blocking_scores_count_each_matching_pair_once_by_hand():
    # entities a a a b b: 3 + 1 = 4 matching pairs among 10 pairs
    entity = np.array(["a", "a", "a", "b", "b"])
    # each row's single candidate: 0-1 (match), 1-0 (same pair), 2-3 (no), 3-4 (match),
    # 4-2 (no): pairs {0,1}, {2,3}, {3,4}, {2,4}
    neighbours = np.array([[1], [0], [3], [4], [2]])
    scores = blocking_scores(neighbours, entity)
    assert scores["blocking_recall"] == pytest.approx(2 / 4)
    assert scores["blocking_reduction_ratio"] == pytest.approx(1 - 4 / 10)


def test_blocking_recall_is_nan_without_matching_pairs():
    scores = blocking_scores(np.array([[1], [0], [1]]), np.array([1, 2, 3]))
    assert np.isnan(scores["blocking_recall"])


def test_nearest_others_never_return_the_row_itself_even_for_duplicates():
    points = np.array([[0.0], [0.0], [0.0], [5.0], [5.1]])
    near = nearest_others(points, 2)
    assert near.shape == (5, 2)
    for row, found in enumerate(near):
        assert row not in found
    assert 4 in near[3] and 3 in near[4]
    # k larger than the other rows: every other row
    assert sorted(nearest_others(points, 10)[0]) == [1, 2, 3, 4]


def test_blocking_metrics_of_a_perfect_and_a_useless_embedding():
    entity = np.repeat(np.arange(20), 3)
    perfect = np.eye(20)[entity]  # records of one entity coincide
    assert blocking_metrics(perfect, entity, 2)["blocking_recall"] == 1.0
    # one point per row on a line, entities interleaved: the 2 nearest rows are other entities
    spread = np.arange(60, dtype=float)[:, None] * 10.0
    interleaved = np.tile(np.arange(20), 3)
    assert blocking_metrics(spread, interleaved, 2)["blocking_recall"] == 0.0
    assert blocking_metrics(perfect, entity, None) == {}


@pytest.mark.parametrize(
    ("value", "task", "models", "message"),
    [
        (0, "embedding", [], "integer >= 1"),
        (True, "embedding", [], "integer >= 1"),
        (2.5, "embedding", [], "integer >= 1"),
        (5, "multiclass", [], "task='embedding'"),
        (None, "embedding", ["model:minhash_lsh"], "set the candidate budget"),
    ],
)
def test_bad_blocking_k_names_the_fix(value, task, models, message):
    with pytest.raises(ValueError, match=message):
        check_blocking_k(value, task, models)
    assert check_blocking_k(None, "embedding", ["model:raw_features"]) is None
    assert check_blocking_k(3, "embedding", ["model:minhash_lsh"]) == 3


def test_minhash_tokens_bins_and_missing_fields():
    train = pd.DataFrame({"price": [0.0, 2.0, 4.0, 6.0], "name": ["acme red", "b", "c", None]})
    blocker = MinHashBlocker(numeric_width=0.5).fit(train)
    width = 0.5 * np.std([0.0, 2.0, 4.0, 6.0])
    tokens = blocker.tokens(train)
    assert tokens[0] == {"price#0", "name=acme", "name=red"}
    assert tokens[3] == {f"price#{int(np.floor(6.0 / width))}"}  # a missing name: no token
    gap = pd.DataFrame({"price": [np.nan], "name": [None]})
    signature = blocker.transform(gap)
    assert (signature < 0).all()  # no tokens: agrees with no real record


def test_minhash_distance_estimates_one_minus_jaccard():
    # token sets {0..29} and {10..39}: Jaccard 20 / 40 = 0.5
    left = pd.DataFrame({f"c{j}": ["x"] for j in range(40)})
    for j in range(30, 40):
        left[f"c{j}"] = None
    right = pd.DataFrame({f"c{j}": ["x"] for j in range(40)})
    for j in range(10):
        right[f"c{j}"] = None
    both = pd.concat([left, right], ignore_index=True)
    blocker = MinHashBlocker(n_hashes=2000, random_state=1).fit(both)
    signatures = blocker.transform(both)
    distance = blocker.distance(signatures, signatures)
    assert distance[0, 1] == pytest.approx(0.5, abs=0.05)
    # a record against itself: only the tie-breaking offset, under half a component
    assert 0 <= distance[0, 0] < 0.5 / 2000
    with pytest.raises(ValueError, match="n_hashes must be an integer >= 1"):
        MinHashBlocker(n_hashes=0).fit(both)


def test_duplicate_records_have_the_stated_structure():
    frame = duplicate_records(n_samples=3000, records_per_entity=3, typo_rate=0.2)
    assert frame.attrs["task"] == "embedding" and len(frame) == 3000
    counts = frame["target"].value_counts()
    assert (counts == 3).all() and len(counts) == 1000
    assert (frame["target"] == "e" + frame["group"].astype(str)).all()
    words = frame["cat0"]
    assert words.isna().mean() == pytest.approx(0.1, abs=0.02)
    assert words.str.contains("~", na=False).mean() == pytest.approx(0.2, abs=0.03)
    # numbers of one entity scatter by numeric_noise around a shared value
    within = frame.groupby("target")["num0"].var().mean()  # unbiased: noise variance
    assert within == pytest.approx(0.3**2, rel=0.2)
    assert frame["num0"].std() > 0.9
    with pytest.raises(ValueError, match="typo_rate \\+ swap_rate"):
        duplicate_records(typo_rate=0.6, swap_rate=0.3, missing_rate=0.2)
    with pytest.raises(ValueError, match="records_per_entity must be an integer >= 2"):
        duplicate_records(records_per_entity=1)


def test_compare_scores_losses_and_blockers_on_unseen_entities(tmp_path):
    results = compare(
        "synthetic:duplicate_records(n_samples=120)",
        losses=["nlsh_triplet"],
        baseline="nlsh_triplet",
        models=["minhash_lsh", "raw_features"],
        split="group",
        cv=2,
        blocking_k=3,
        estimator_params={"max_iter": 2, "batch_size": 32},
        scoring="blocking_recall",
        torch_threads=1,
        progress=False,
    )
    assert (results["status"] == "ok").all(), results.get("error")
    assert set(results["loss_label"]) == {
        "nlsh_triplet",
        "model:minhash_lsh",
        "model:raw_features",
    }
    assert results["blocking_recall"].between(0, 1).all()
    assert results["blocking_reduction_ratio"].between(0, 1).all()
    assert results.attrs["primary"] == "blocking_recall"
    # the blocker is scored as a blocker only
    blocker = results[results["loss_label"] == "model:minhash_lsh"]
    assert blocker["knn_accuracy"].isna().all()
    # records of identical entities are found by every blocker
    exact = compare(
        "synthetic:duplicate_records(n_samples=60, typo_rate=0.0, swap_rate=0.0, "
        "missing_rate=0.0, numeric_noise=0.0)",
        losses=["nlsh_triplet"],
        baseline="nlsh_triplet",
        models=["minhash_lsh"],
        split="group",
        cv=2,
        blocking_k=2,
        estimator_params={"max_iter": 1},
        torch_threads=1,
        progress=False,
    )
    found = exact[exact["loss_label"] == "model:minhash_lsh"]["blocking_recall"]
    assert (found == 1.0).all()


def test_blocking_k_without_a_blocker_model_or_on_another_task_fails_clearly():
    with pytest.raises(ValueError, match="scores embeddings as blockers"):
        compare("iris", losses=["cross_entropy"], blocking_k=5, progress=False)
    with pytest.raises(ValueError, match="set the candidate budget"):
        compare(
            "synthetic:duplicate_records(n_samples=60)",
            losses=["nlsh_triplet"],
            models=["minhash_lsh"],
            split="group",
            cv=2,
            progress=False,
        )


def test_cli_and_config_take_blocking_k(tmp_path, monkeypatch):
    import lossreg.compare

    captured = {}

    def fake(data, **kwargs):
        captured.update(kwargs)
        raise SystemExit(0)

    monkeypatch.setattr(lossreg.compare, "compare", fake)
    path = tmp_path / "c.toml"
    path.write_text('[compare]\ndata = "iris"\nlosses = ["triplet"]\nblocking_k = 7\n')
    result = CliRunner().invoke(cli, ["compare", "--config", str(path), "--no-progress"])
    assert captured["blocking_k"] == 7, result.output
    result = CliRunner().invoke(
        cli, ["compare", "--config", str(path), "--blocking-k", "4", "--no-progress"]
    )
    assert captured["blocking_k"] == 4, result.output
