"""reduce(): the single place for mean / sum / none and sample weights; links."""

import pytest
import torch

from lossreg import InvalidReductionError, reduce
from lossreg.links import BUILTIN_LINKS, resolve_link


def test_reductions_without_weights():
    losses = torch.tensor([1.0, 2.0, 3.0, 6.0])
    assert reduce(losses, "mean").item() == pytest.approx(3.0)
    assert reduce(losses, "sum").item() == pytest.approx(12.0)
    assert torch.equal(reduce(losses, "none"), losses)


def test_weighted_mean_divides_by_the_sum_of_weights():
    losses = torch.tensor([1.0, 2.0, 3.0, 6.0], dtype=torch.float64)
    weights = [0.5, 1.0, 0.0, 2.5]
    expected = sum(w * v for w, v in zip(weights, losses.tolist())) / sum(weights)
    assert reduce(losses, "mean", weights).item() == pytest.approx(expected, rel=1e-15)
    assert reduce(losses, "sum", weights).item() == pytest.approx(0.5 + 2.0 + 15.0)
    assert reduce(losses, "none", weights).tolist() == [0.5, 2.0, 0.0, 15.0]


def test_weight_two_equals_a_duplicated_row():
    losses = torch.tensor([1.0, 4.0, 7.0])
    doubled = reduce(losses, "mean", torch.tensor([2.0, 1.0, 1.0]))
    assert doubled.item() == pytest.approx(reduce(torch.tensor([1.0, 1.0, 4.0, 7.0])).item())


def test_all_zero_weights_give_zero_not_nan():
    losses = torch.tensor([1.0, 2.0], requires_grad=True)
    value = reduce(losses, "mean", torch.zeros(2))
    value.backward()
    assert value.item() == 0.0
    assert torch.isfinite(losses.grad).all()


def test_dtype_is_preserved():
    losses = torch.ones(3, dtype=torch.float64)
    assert reduce(losses, "mean", [1, 1, 1]).dtype == torch.float64


@pytest.mark.parametrize("bad", ["avg", "MEAN", None, 1])
def test_invalid_reduction_names_are_rejected(bad):
    with pytest.raises(InvalidReductionError, match=r"one of 'mean', 'sum', 'none'\. Got"):
        reduce(torch.ones(2), bad)


def test_shape_problems_are_explained():
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        reduce(torch.ones(2, 3))
    with pytest.raises(ValueError, match="sample_weight has 3 values but the loss has 2 rows"):
        reduce(torch.ones(2), "mean", torch.ones(3))


def test_builtin_links():
    out = torch.tensor([[0.0, 0.0], [2.0, -1.0]])
    probs = resolve_link("softmax")(out)
    assert torch.allclose(probs.sum(dim=1), torch.ones(2))
    assert torch.allclose(resolve_link("sigmoid")(out), torch.sigmoid(out))
    assert resolve_link("identity")(out) is out
    assert resolve_link("softmax").has_proba and not resolve_link("score").has_proba
    assert set(BUILTIN_LINKS) == {"softmax", "sigmoid", "identity", "score"}
    custom = BUILTIN_LINKS["identity"]
    assert resolve_link(custom) is custom


def test_batch_level_helpers():
    from lossreg import check_batch_reduction, row_weights

    assert check_batch_reduction("sum", "toy") == "sum"
    with pytest.raises(InvalidReductionError, match="Loss 'toy' is batch-level"):
        check_batch_reduction("none", "toy")
    like = torch.zeros(3, dtype=torch.float64)
    assert row_weights(None, 3, like).tolist() == [1.0, 1.0, 1.0]
    assert row_weights([1, 2, 0], 3, like).dtype == torch.float64
    with pytest.raises(ValueError, match="one weight per row"):
        row_weights([1.0], 3, like)
    with pytest.raises(ValueError, match="non-negative"):
        row_weights([1.0, -1.0, 0.0], 3, like)
