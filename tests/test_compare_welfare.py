"""lossreg compare on ad auctions: synthetic:auctions, the bid column and the welfare metric."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from lossreg.compare import compare, load_data
from lossreg.compare._config import load_config
from lossreg.compare._synthetic import make_synthetic
from lossreg.compare._welfare import auction_welfare, score_welfare

FAST = {"max_iter": 2, "module__hidden_units": (8,), "batch_size": 64}


def _welfare_by_loops(clicks, ctr, bids, auctions):
    """Reference: walk the rows once, keeping each auction's leader and its best value."""
    leader: dict = {}  # auction -> (eCPM, value of the leading ad)
    best: dict = {}
    for c, p, b, a in zip(clicks, ctr, bids, auctions, strict=True):
        if a not in leader or b * p > leader[a][0]:
            leader[a] = (b * p, b * c)
        best[a] = max(best.get(a, 0.0), b * c)
    won = sum(value for _, value in leader.values())
    return won / sum(best.values()), won / len(leader)


def test_auctions_generator_draws_clicks_from_a_logistic_ctr():
    name, frame = make_synthetic("synthetic:auctions(n_samples=1600, ads_per_auction=4)")
    assert name.startswith("synthetic:auctions(")
    assert len(frame) == 1600
    assert {"x0", "x7", "ctx0", "ctx1", "bid", "group", "target"} <= set(frame.columns)
    assert (frame.groupby("group").size() == 4).all()
    assert frame.groupby("group")["ctx0"].nunique().eq(1).all()  # shared by an auction's ads
    assert (frame["bid"] > 0).all()
    assert set(frame["target"].unique()) == {0, 1}
    assert 0.05 < frame["target"].mean() < 0.25  # around base_ctr=0.1
    again = make_synthetic("synthetic:auctions(n_samples=1600, ads_per_auction=4)")[1]
    pd.testing.assert_frame_equal(frame, again)
    with pytest.raises(ValueError, match="ads_per_auction >= 2"):
        make_synthetic("synthetic:auctions(ads_per_auction=1)")
    with pytest.raises(ValueError, match="two auctions"):
        make_synthetic("synthetic:auctions(n_samples=7, ads_per_auction=4)")
    uneven = make_synthetic("synthetic:auctions(n_samples=10, ads_per_auction=4)")[1]
    assert uneven.groupby("group").size().tolist() == [4, 4, 2]
    with pytest.raises(ValueError, match="0 < base_ctr < 1"):
        make_synthetic("synthetic:auctions(base_ctr=1.5)")


def test_welfare_matches_loops_and_is_one_for_the_hindsight_selection():
    rng = np.random.default_rng(0)
    n = 60
    clicks = rng.integers(0, 2, size=n)
    ctr, bids = rng.random(n), rng.lognormal(size=n)
    auctions = rng.integers(0, 12, size=n)
    out = auction_welfare(clicks, ctr, bids, auctions)
    expected = _welfare_by_loops(clicks, ctr, bids, auctions)
    assert out["welfare"] == pytest.approx(expected[0])
    assert out["welfare_per_auction"] == pytest.approx(expected[1])
    assert 0 <= out["welfare"] <= 1
    # a CTR equal to the click selects the best ad of every auction
    assert auction_welfare(clicks, clicks, bids, auctions)["welfare"] == pytest.approx(1.0)
    assert np.isnan(auction_welfare(np.zeros(4), ctr[:4], bids[:4], [0, 0, 1, 1])["welfare"])
    # a binary fold: the click class is the second class; no bids, no welfare
    proba = np.column_stack([1 - ctr, ctr])
    assert score_welfare(clicks, proba, np.array([0, 1]), bids, auctions) == out
    assert score_welfare(clicks, proba, np.array([0, 1]), None, auctions) == {}


def test_load_data_takes_the_bids_out_of_the_features():
    dataset = load_data("synthetic:auctions(n_samples=100)")  # bid and group named unasked
    assert dataset.task == "binary"
    assert dataset.bids is not None and len(dataset.bids) == dataset.n_rows
    assert not {"bid", "group", "target"} & set(dataset.X.columns)
    frame = make_synthetic("synthetic:auctions(n_samples=100)")[1].rename(columns={"bid": "cpc"})
    explicit = load_data(frame, target="target", group="group", bid="cpc")
    np.testing.assert_array_equal(explicit.bids, dataset.bids)
    assert "cpc" not in explicit.X.columns
    doubled = frame.assign(cpc=2 * frame["cpc"])
    assert load_data(doubled, target="target", group="group", bid="cpc").fingerprint != (
        explicit.fingerprint
    )
    with pytest.raises(ValueError, match="Bid column 'price' is not a feature column"):
        load_data(frame, target="target", group="group", bid="price")
    with pytest.raises(ValueError, match=r"auction ids with group=\.\.\."):
        load_data(frame.drop(columns=["group"]), target="target", bid="cpc")
    with pytest.raises(ValueError, match="finite numbers >= 0"):
        load_data(frame.assign(cpc=-frame["cpc"]), target="target", group="group", bid="cpc")


def test_compare_routes_the_bids_and_scores_welfare(tmp_path):
    data = "synthetic:auctions(n_samples=240, ads_per_auction=4)"
    results = compare(
        data,
        losses=["bce", "welfare_rank"],
        baseline="bce",
        split="group",
        cv=2,
        estimator_params=FAST,
        torch_threads=1,
    )
    assert (results["status"] == "ok").all(), results["error"].tolist()
    assert results["welfare"].between(0, 1).all()
    assert results["welfare_per_auction"].gt(0).all()
    # without the bid column the loss that needs bids is refused before any fit, saying how
    frame = make_synthetic(data)[1].drop(columns=["bid"])
    with pytest.raises(ValueError, match=r"welfare_rank need the fit extra 'bid'.*--bid COLUMN"):
        compare(
            frame,
            target="target",
            group="group",
            losses=["bce", "welfare_rank"],
            cv=2,
            estimator_params=FAST,
            torch_threads=1,
        )


def test_bid_option_in_config_and_command_line(tmp_path):
    from lossreg.cli import cli

    config = tmp_path / "auctions.toml"
    config.write_text('[compare]\ndata = "ads.csv"\ngroup = "auction"\nbid = "cpc"\n')
    assert load_config(config)["bid"] == "cpc"
    frame = make_synthetic("synthetic:auctions(n_samples=120, ads_per_auction=3)")[1]
    csv = tmp_path / "ads.csv"
    frame.rename(columns={"bid": "cpc", "group": "auction"}).to_csv(csv, index=False)
    args = ["compare", str(csv), "--target", "target", "--group", "auction", "--bid", "cpc"]
    args += ["--split", "group", "--losses", "bce,welfare_rank", "--cv", "2", "--max-iter", "2"]
    args += ["--scoring", "welfare", "--out", str(tmp_path / "out"), "--no-progress"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "welfare" in result.output
