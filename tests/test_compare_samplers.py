"""lossreg compare: the embedding task's batch sampler, per loss entry or for every loss."""

from __future__ import annotations

import numpy as np
import pytest

from lossreg.compare import compare
from lossreg.compare._data import load_data
from lossreg.compare._fit import make_pipeline
from lossreg.compare._run import plan_fits
from lossreg.compare._samplers import check_samplers, sampler_setting, split_sampler
from lossreg.estimators import PseudoLabelDiverse

DATA = "synthetic:classification(n_samples=120, n_features=5, n_informative=3, n_classes=3)"


def test_sampler_settings_are_read():
    assert split_sampler({"temperature": 0.1, "sampler": "random"}) == (
        {"temperature": 0.1},
        "random",
    )
    assert split_sampler({"temperature": 0.1}) == ({"temperature": 0.1}, None)
    assert sampler_setting("random") == "random"
    assert sampler_setting("pseudo_label_diverse") == PseudoLabelDiverse()
    assert sampler_setting("pseudo_label_diverse(n_clusters=12, latent_dim=4)") == (
        PseudoLabelDiverse(n_clusters=12, latent_dim=4)
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("diverse", "Unknown sampler 'diverse': use one of 'auto', 'random'"),
        ("random(k=2)", "Sampler 'random' takes no settings"),
        ("pseudo_label_diverse(k=2)", "settings of pseudo_label_diverse are: n_clusters"),
        ("pseudo_label_diverse(n_clusters=1)", "n_clusters must be an integer >= 2"),
        (3, "sampler must be a name"),
    ],
)
def test_bad_sampler_values_are_named(value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        sampler_setting(value)


def test_a_sampler_is_for_the_embedding_task_only():
    with pytest.raises(ValueError, match="works for task 'embedding', not 'multiclass'"):
        check_samplers(
            [("cross_entropy(sampler='random')", {"sampler": "random"})], "multiclass", {}
        )
    with pytest.raises(ValueError, match="In the estimator settings: Unknown sampler"):
        check_samplers([], "embedding", {"sampler": "divers"})
    dataset = load_data(DATA, task="multiclass")
    with pytest.raises(ValueError, match="not 'multiclass'"):
        plan_fits(dataset, losses=["cross_entropy"], estimator_params={"sampler": "random"})


def test_loss_entries_with_a_sampler_are_variants_of_the_loss():
    dataset = load_data(DATA, task="embedding")
    plan = plan_fits(
        dataset,
        losses=["info_nce", "info_nce(sampler=pseudo_label_diverse)"],
        baseline="info_nce",
        cv=2,
    )
    labels = [choice.label for choice in plan["losses"]]
    assert labels == ["info_nce", "info_nce(sampler='pseudo_label_diverse')"]
    keys = {fit["key"] for fit in plan["fits"]}
    assert len(keys) == len(plan["fits"]) == 4  # distinct fits, resumable apart
    # the sampler reaches the estimator, never the loss
    pipeline = make_pipeline(
        "embedding", "info_nce", {"sampler": "pseudo_label_diverse(n_clusters=8)"}, {}, seed=0
    )
    model = pipeline[-1]
    assert model.sampler == PseudoLabelDiverse(n_clusters=8)
    assert not any(name.startswith("loss__") for name in model.get_params())
    # a loss entry's sampler wins over the estimator settings'
    both = make_pipeline("embedding", "info_nce", {"sampler": "random"}, {"sampler": "auto"}, 0)
    assert both[-1].sampler == "random"
    assert make_pipeline("embedding", "info_nce", {}, {"sampler": "random"}, 0)[-1].sampler == (
        "random"
    )


def test_compare_runs_the_pseudo_label_variant(tmp_path):
    results = compare(
        DATA,
        task="embedding",
        losses=["info_nce", "info_nce(sampler='pseudo_label_diverse(n_clusters=8, max_iter=2)')"],
        baseline="info_nce",
        cv=2,
        estimator_params={"max_iter": 2, "batch_size": 8, "n_components": 4},
        out=tmp_path,
        report=False,
    )
    assert (results["status"] == "ok").all(), results.get("error")
    assert results["linear_probe_accuracy"].between(0, 1).all()
    assert set(results["loss_label"]) == {
        "info_nce",
        "info_nce(sampler='pseudo_label_diverse(n_clusters=8, max_iter=2)')",
    }
    assert np.all(results["n_epochs"] == 2)
