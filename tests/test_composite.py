"""weighted_sum: members computed by hand, routing of params and extras, clear errors, grids."""

from __future__ import annotations

import math

import kornia.losses
import pytest
import torch
import torch.nn.functional as F
from sklearn.model_selection import ParameterGrid

import lossreg
from lossreg.plugins.composite import member_param_grid


@pytest.fixture(scope="module")
def registry():
    return lossreg.Registry(entry_points=False)


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(11)
    logits = torch.randn(20, 3, generator=gen, dtype=torch.float64) * 2
    labels = torch.randint(0, 3, (20,), generator=gen)
    weights = torch.rand(20, generator=gen, dtype=torch.float64)
    return logits, labels, weights


def _mae_prob_loop(logits, labels):
    out = []
    for row, y in zip(logits.softmax(dim=1).tolist(), labels.tolist()):
        out.append(sum(abs(p - (1.0 if k == y else 0.0)) for k, p in enumerate(row)))
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.reference("weighted_sum")
def test_weighted_sum_equals_its_members_by_hand(registry, data):
    logits, labels, weights = data
    rows = F.cross_entropy(logits, labels, reduction="none") + 0.5 * _mae_prob_loop(logits, labels)
    params = {"losses": ("cross_entropy", "mae_prob"), "weights": (1.0, 0.5)}
    none = registry.create_loss("weighted_sum", reduction="none", **params)(logits, labels)
    torch.testing.assert_close(none, rows, rtol=1e-12, atol=1e-12)
    total = registry.create_loss("weighted_sum", reduction="sum", **params)(logits, labels)
    assert total.item() == pytest.approx(rows.sum().item(), rel=1e-12)
    mean = registry.create_loss("weighted_sum", **params)(logits, labels, sample_weight=weights)
    assert mean.item() == pytest.approx(((rows * weights).sum() / weights.sum()).item(), rel=1e-12)


@pytest.mark.reference("weighted_sum")
def test_member_params_reach_the_members(registry, data):
    logits, labels, _ = data
    loss = registry.create_loss(
        "weighted_sum",
        losses=["focal", "gce"],
        weights=[2.0, 0.3],
        member_params={"focal": {"gamma": 1.0}, "gce": {"q": 0.5}},
        reduction="none",
    )
    focal = kornia.losses.focal_loss(logits, labels, alpha=None, gamma=1.0, reduction="none")
    p_t = logits.softmax(dim=1).gather(1, labels.unsqueeze(1)).squeeze(1)
    expected = 2.0 * focal.sum(dim=1) + 0.3 * (1 - p_t**0.5) / 0.5
    torch.testing.assert_close(loss(logits, labels), expected, rtol=1e-9, atol=1e-12)
    assert loss.members[0].gamma == 1.0 and loss.members[1].q == 0.5


def test_default_weights_are_one_and_dtype_is_preserved(registry, data):
    logits, labels, _ = data
    loss = registry.create_loss("weighted_sum", reduction="none")
    ce = registry.create_loss("cross_entropy", reduction="none")(logits, labels)
    mae = registry.create_loss("mae_prob", reduction="none")(logits, labels)
    torch.testing.assert_close(loss(logits, labels), ce + mae)
    assert loss(logits.float(), labels).dtype == torch.float32
    x = logits.clone().requires_grad_(True)
    loss(x, labels).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_data_params_and_fit_extras_are_routed_to_members_that_declare_them(registry, data):
    logits, labels, _ = data
    loss = registry.create_loss(
        "weighted_sum",
        losses=("cross_entropy", "aldr_kl"),
        member_params={"aldr_kl": {"n_samples": 20, "alpha": 2.0}},
        reduction="none",
    )
    index = torch.arange(20)
    values = loss(logits, labels, sample_index=index)
    ce, _ = loss.per_member(logits, labels)
    assert not torch.all(loss.members[1].lambdas_ == 1.0)  # the extra reached aldr_kl
    assert values.shape == (20,) and torch.equal(
        ce, F.cross_entropy(logits, labels, reduction="none")
    )
    assert loss.fit_extras_ == ("sample_index",) and loss.data_params_ == ("n_samples",)
    assert not loss.learnable_ and not loss.stochastic_
    tempnet = registry.create_loss(
        "weighted_sum",
        losses=("tempnet_dro_ce",),  # its special link admits no softmax partner
        member_params={"tempnet_dro_ce": {"n_classes": 3, "hidden": 4}},
    )
    assert tempnet.learnable_ and tempnet.stochastic_ and len(list(tempnet.parameters())) > 0
    factory = registry.get_spec("weighted_sum").factory  # data params an estimator would add
    direct = factory(losses=("ce", "aldr_kl"), n_samples=7)
    assert direct.members[1].lambdas_.shape == (7,)


def test_set_epoch_is_forwarded(registry):
    loss = registry.create_loss("weighted_sum")
    seen = []
    loss.members[1].set_epoch = lambda epoch, max_epochs: seen.append((epoch, max_epochs))
    loss.set_epoch(3, 10)
    assert seen == [(3, 10)]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"losses": ("cross_entropy", "mse")},
            r"share no task \('cross_entropy' supports binary, multiclass; 'mse' supports "
            r"regression\)",
        ),
        ({"losses": ("cross_entropy", "bce")}, r"different links \('cross_entropy' uses 'softmax'"),
        ({"weights": (1.0,)}, "'weights' has 1 values for 2 members"),
        ({"losses": ("cross_entropy", "focall")}, "Did you mean 'focal'"),
        ({"losses": ("ce", "cross_entropy")}, "appear more than once"),
        ({"losses": ("weighted_sum",)}, "cannot be a member of itself"),
        ({"member_params": {"focal": {"gamma": 1.0}}}, r"'member_params' names \['focal'\]"),
        ({"member_params": {"cross_entropy": {"label_smoothing": 2.0}}}, "Member 'cross_entropy'"),
        ({"losses": 5}, "must be a non-empty sequence of registered loss names"),
        ({"member_params": {"cross_entropy": 1.0}}, r"must be a dict \{member loss name"),
        ({"weights": (1.0, -1.0)}, "'weights' parameter"),
    ],
)
def test_invalid_combinations_raise_clear_errors(registry, params, message):
    with pytest.raises(lossreg.InvalidLossParameterError, match=message):
        registry.create_loss("weighted_sum", **params)


def test_tasks_and_link_follow_the_members(registry):
    loss = registry.create_loss("weighted_sum", losses=("bce", "binary_focal"))
    assert loss.tasks_ == {"binary", "multilabel"} and loss.link_ == "sigmoid"
    link = registry.get_spec("weighted_sum").link
    out = torch.tensor([[0.0, 2.0]])
    torch.testing.assert_close(link(out, loss), out.sigmoid())
    torch.testing.assert_close(link(out, None), out.softmax(dim=-1))
    regression = registry.create_loss("weighted_sum", losses=("mse", "mae"))
    assert regression.tasks_ == {"regression"}
    torch.testing.assert_close(link(out, regression), out)


def test_output_size_follows_the_members(registry):
    spec = registry.get_spec("weighted_sum")
    context = {**spec.defaults, "n_classes": 5, "n_outputs": 1, "task": "multiclass"}
    assert spec.output_size(context) == 5
    context.update(losses=("bce", "binary_focal"), task="binary")
    assert spec.output_size(context) == 1
    context.update(losses=("mse",), task="regression", n_outputs=3)
    assert spec.output_size(context) == 3


def test_a_parameter_grid_varies_weights_and_member_params(registry, data):
    logits, labels, _ = data
    grid = ParameterGrid(
        {
            "losses": [("focal", "gce")],
            "weights": [(1.0, 0.1), (1.0, 1.0)],
            "member_params": member_param_grid({"focal": {"gamma": [1.0, 2.0]}}),
        }
    )
    values = {
        round(registry.create_loss("weighted_sum", **p)(logits, labels).item(), 10) for p in grid
    }
    assert len(grid) == 4 and len(values) == 4
    assert member_param_grid({"focal": {"gamma": [1.0, 2.0]}, "gce": {"q": [0.5]}}) == [
        {"focal": {"gamma": 1.0}, "gce": {"q": 0.5}},
        {"focal": {"gamma": 2.0}, "gce": {"q": 0.5}},
    ]


def test_state_dict_and_deepcopy_round_trip(registry, data):
    import copy
    import pickle

    logits, labels, _ = data
    loss = registry.create_loss("weighted_sum", weights=(1.0, 0.25))
    clone = copy.deepcopy(loss)
    again = pickle.loads(pickle.dumps(loss))
    for other in (clone, again):
        assert other(logits, labels).item() == pytest.approx(loss(logits, labels).item())
    fresh = registry.create_loss("weighted_sum", weights=(1.0, 0.25))
    fresh.load_state_dict(loss.state_dict())
    assert math.isfinite(fresh(logits, labels).item())


def test_a_batch_level_member_with_a_per_row_form_is_summed_per_row():
    logits = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    total = lossreg.create_loss(
        "weighted_sum",
        losses=("cross_entropy", "softmax_norm_penalty"),
        weights=(1.0, 0.03),
        member_params={"softmax_norm_penalty": {"per_sample": True}},
        reduction="none",
    )(logits, labels)
    squared = (logits.softmax(dim=-1) ** 2).sum(dim=-1)
    expected = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    torch.testing.assert_close(total, expected + 0.03 * torch.log1p(squared))
    with pytest.raises(lossreg.InvalidLossParameterError, match="no per-row form"):
        lossreg.create_loss("weighted_sum", losses=("cross_entropy", "softmax_norm_penalty"))
