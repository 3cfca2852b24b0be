"""The registry: laziness, entry points, broken plugins, duplicates, switches, lookups."""

from __future__ import annotations

import warnings

import pytest
from conftest import make_plugin, toy_spec

import lossreg
from lossreg import (
    DuplicateLossError,
    InvalidLossParameterError,
    LossPluginWarning,
    PluginLoadError,
    Registry,
    UnknownLossError,
)


def test_registry_loads_nothing_until_the_first_lookup():
    calls = []
    plugin = make_plugin("counting", hook=lambda: calls.append(1) or [toy_spec()])
    registry = Registry(builtins=False, entry_points=False, plugins=[plugin])
    assert calls == []
    assert registry.list_losses() == ["toy"]
    registry.get_spec("toy")
    assert calls == [1]


def test_builtins_are_registered_through_the_hook(builtin_registry):
    names = builtin_registry.list_losses()
    for name in ("cross_entropy", "bce", "focal", "binary_focal", "mse", "mae", "huber"):
        assert name in names
    plugins = {p.name: p for p in builtin_registry.list_plugins()}
    assert plugins["lossreg.plugins.classification"].source == "builtin"
    assert "focal" in plugins["lossreg.plugins.classification"].losses


def test_entry_point_plugins_are_found_with_their_distribution(fake_entry_points):
    fake_entry_points("asl", lambda: make_plugin("asl_mod", toy_spec("asym")), "lossreg-asl", "0.2")
    registry = Registry(builtins=False)
    assert registry.list_losses() == ["asym"]
    entry = registry.get_entry("asym")
    assert (entry.plugin.name, entry.plugin.distribution, entry.plugin.version) == (
        "asl",
        "lossreg-asl",
        "0.2",
    )


def _raise_on_import():
    raise ImportError("No module named 'missing_dependency'")


def test_a_plugin_that_fails_to_import_is_skipped_with_a_warning(fake_entry_points):
    fake_entry_points("broken", _raise_on_import, "lossreg-broken", "0.3")
    fake_entry_points("good", lambda: make_plugin("good_mod", toy_spec("good_one")))
    registry = Registry()
    with pytest.warns(LossPluginWarning) as caught:
        names = registry.list_losses()
    message = str(caught[0].message)
    assert "'broken'" in message
    assert "lossreg-broken 0.3" in message
    assert "missing_dependency" in message
    assert "LOSSREG_BLOCK_PLUGINS=lossreg-broken" in message
    assert "good_one" in names and "focal" in names
    (failed,) = [p for p in registry.list_plugins() if p.name == "broken"]
    assert failed.status == "failed"
    assert "ImportError" in failed.error


def test_strict_mode_raises_for_a_broken_plugin(fake_entry_points, monkeypatch):
    fake_entry_points("broken", _raise_on_import, "lossreg-broken", "0.3")
    monkeypatch.setenv("LOSSREG_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match=r"'broken' \(lossreg-broken 0.3\).*missing_dep"):
        Registry(builtins=False).list_losses()
    with pytest.raises(ImportError):  # a PluginLoadError is an ImportError for callers
        Registry(builtins=False).list_losses()


def test_a_plugin_whose_hook_raises_is_skipped(fake_entry_points):
    def hook():
        raise RuntimeError("boom in register_losses")

    fake_entry_points("raiser", lambda: make_plugin("raiser_mod", hook=hook))
    with pytest.warns(LossPluginWarning, match="boom in register_losses"):
        assert Registry(builtins=False).list_losses() == []


def test_an_invalid_spec_names_the_plugin_and_the_rule(fake_entry_points):
    bad = toy_spec("Bad-Name")
    fake_entry_points("badspec", lambda: make_plugin("badspec_mod", bad), "lossreg-bad", "1.1")
    with pytest.warns(LossPluginWarning) as caught:
        assert Registry(builtins=False).list_losses() == []
    message = str(caught[0].message)
    assert "'badspec' (lossreg-bad 1.1)" in message
    assert "rule 'name'" in message
    assert "'Bad-Name'" in message


def test_an_invalid_spec_raises_in_strict_mode():
    plugin = make_plugin("strict_mod", toy_spec(reference=""))
    with pytest.raises(PluginLoadError, match="rule 'reference'"):
        Registry(builtins=False, entry_points=False, plugins=[plugin], strict=True).list_losses()


def test_a_hook_returning_something_else_than_a_list_is_rejected():
    plugin = make_plugin("weird", hook=lambda: toy_spec())
    with pytest.warns(LossPluginWarning, match="must return a list of LossSpec"):
        Registry(builtins=False, entry_points=False, plugins=[plugin]).list_losses()


def test_a_module_without_a_hook_is_reported():
    import types

    empty = types.ModuleType("empty_plugin")
    with pytest.warns(LossPluginWarning, match="defines no register_losses"):
        Registry(builtins=False, entry_points=False, plugins=[empty]).list_losses()


def test_a_misspelled_hook_name_is_reported():
    import types

    module = types.ModuleType("typo_plugin")

    @lossreg.hookimpl
    def register_loss():
        return [toy_spec()]

    module.register_loss = register_loss
    with pytest.warns(LossPluginWarning, match="register_loss"):
        Registry(builtins=False, entry_points=False, plugins=[module]).list_losses()


def test_duplicate_names_name_both_plugins(fake_entry_points):
    fake_entry_points("one", lambda: make_plugin("one_mod", toy_spec("same")), "dist-one", "1")
    fake_entry_points("two", lambda: make_plugin("two_mod", toy_spec("same")), "dist-two", "2")
    with pytest.raises(DuplicateLossError) as err:
        Registry(builtins=False).list_losses()
    message = str(err.value)
    assert "'same' is registered twice" in message
    assert "'one' (dist-one 1)" in message and "'two' (dist-two 2)" in message
    assert "LOSSREG_BLOCK_PLUGINS=dist-two" in message


def test_an_alias_that_clashes_with_a_builtin_name_is_an_error(fake_entry_points):
    fake_entry_points(
        "clash", lambda: make_plugin("clash_mod", toy_spec("mine", aliases=("focal",)))
    )
    with pytest.raises(DuplicateLossError, match=r"'focal'.*lossreg.plugins.classification.*clash"):
        Registry().list_losses()


def test_duplicate_aliases_between_plugins_are_an_error():
    first = make_plugin("first", toy_spec("a_one", aliases=("shared",)))
    second = make_plugin("second", toy_spec("b_one", aliases=("shared",)))
    with pytest.raises(DuplicateLossError, match=r"'shared'.*'first'.*'second'"):
        Registry(builtins=False, entry_points=False, plugins=[first, second]).list_losses()


def test_load_switch_controls_entry_point_plugins(fake_entry_points, monkeypatch):
    fake_entry_points("alpha", lambda: make_plugin("alpha_mod", toy_spec("alpha_one")))
    fake_entry_points("beta", lambda: make_plugin("beta_mod", toy_spec("beta_one")))
    monkeypatch.setenv("LOSSREG_LOAD_PLUGINS", "")
    none = Registry()
    assert "alpha_one" not in none.list_losses() and "focal" in none.list_losses()
    assert {p.name: p.status for p in none.list_plugins()}["alpha"] == "not loaded"
    monkeypatch.setenv("LOSSREG_LOAD_PLUGINS", "lossreg-beta")  # distribution names work too
    only_beta = Registry(builtins=False)
    assert only_beta.list_losses() == ["beta_one"]
    monkeypatch.delenv("LOSSREG_LOAD_PLUGINS")
    assert Registry(builtins=False).list_losses() == ["alpha_one", "beta_one"]
    assert Registry(builtins=False, load="alpha").list_losses() == ["alpha_one"]


def test_block_switch_blocks_plugins_and_builtins(fake_entry_points, monkeypatch):
    fake_entry_points("alpha", lambda: make_plugin("alpha_mod", toy_spec("alpha_one")))
    monkeypatch.setenv("LOSSREG_BLOCK_PLUGINS", "alpha, lossreg.plugins.regression")
    registry = Registry()
    names = registry.list_losses()
    assert "alpha_one" not in names and "mse" not in names and "focal" in names
    statuses = {p.name: p.status for p in registry.list_plugins()}
    assert statuses["alpha"] == "blocked"
    assert statuses["lossreg.plugins.regression"] == "blocked"
    assert Registry(block=["lossreg"], entry_points=False).list_losses() == []


def test_unknown_name_suggests_the_closest(builtin_registry):
    with pytest.raises(UnknownLossError) as err:
        builtin_registry.get_spec("focall")
    message = str(err.value)
    assert message.startswith("Unknown loss 'focall'. Did you mean 'focal'?")
    assert f"{len(builtin_registry)} losses are registered; see `lossreg list`." in message
    with pytest.raises(KeyError):  # callers catching KeyError keep working
        builtin_registry.get_spec("no_such_thing")


def test_aliases_resolve_to_the_same_spec(builtin_registry):
    assert builtin_registry.get_spec("ce") is builtin_registry.get_spec("cross_entropy")
    assert "ce" in builtin_registry
    assert "ce" not in builtin_registry.list_losses()  # listed once, under its name


def test_list_losses_filters(builtin_registry):
    # Other built-in families add regression losses; the filter keeps them and only them.
    regression = builtin_registry.list_losses(task="regression")
    assert {"huber", "mae", "mse"} <= set(regression) and "focal" not in regression
    assert regression == sorted(regression)
    assert builtin_registry.list_losses(pattern="*focal") == ["binary_focal", "focal"]
    assert builtin_registry.list_losses(pattern="l1") == ["mae"]  # aliases match too
    assert builtin_registry.list_losses(plugin="lossreg.plugins.regression") == [
        "huber",
        "mae",
        "mse",
    ]


def test_create_loss_reports_every_problem_at_once(builtin_registry):
    with pytest.raises(InvalidLossParameterError) as err:
        builtin_registry.create_loss("focal", gama=2.0, alpha=[-1.0, 1.0])
    message = str(err.value)
    assert "Loss 'focal' has no parameter 'gama'. Did you mean 'gamma'?" in message
    assert "Valid parameters: alpha, gamma." in message
    assert "The 'alpha' parameter of loss 'focal' must be a 1-D sequence of numbers" in message
    assert "Got [-1.0, 1.0] instead." in message


def test_create_loss_range_message_is_scikit_learn_style(builtin_registry):
    with pytest.raises(
        ValueError,
        match=r"^The 'gamma' parameter of loss 'focal' must be a float "
        r"in the range \[0, inf\)\. Got -1 instead\.$",
    ):
        builtin_registry.create_loss("focal", gamma=-1)


def test_create_loss_builds_the_module_with_its_parameters(builtin_registry):
    loss = builtin_registry.create_loss("huber", delta=2.5, reduction="sum")
    assert (loss.delta, loss.reduction) == (2.5, "sum")
    with pytest.raises(ValueError, match="reduction must be one of"):
        builtin_registry.create_loss("huber", reduction="avg")


def test_default_registry_functions_use_one_instance():
    assert lossreg.default_registry() is lossreg.default_registry()
    assert "focal" in lossreg.list_losses(task="multiclass")
    assert lossreg.get_spec("focal").name == "focal"
    assert lossreg.create_loss("mse").reduction == "mean"
    assert any(p.name == "lossreg.plugins.classification" for p in lossreg.list_plugins())


def test_no_warning_from_the_installed_plugins():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Registry().list_losses()
