"""Shared fixtures: isolated registries, fake plugins and fake entry points."""

from __future__ import annotations

import importlib.metadata
import types
from collections.abc import Callable
from typing import Any

import pytest
import torch

import lossreg
from lossreg import LossModule, LossSpec, Param, as_float_target, hookimpl


class ToySquared(LossModule):
    """Squared error scaled by ``scale``: a tiny loss for registry tests.

    References
    ----------
    A test fixture, not a paper.
    """

    def __init__(self, *, scale: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.scale = scale

    def per_sample_loss(self, input: torch.Tensor, target: torch.Tensor, **extras: Any):
        return self.scale * (input - as_float_target(target, input)).square()


def toy_spec(name: str = "toy", **changes: Any) -> LossSpec:
    """Return a valid spec, with fields replaced by ``changes``."""
    fields: dict[str, Any] = {
        "name": name,
        "factory": ToySquared,
        "tasks": {"regression"},
        "link": "identity",
        "params": (Param("scale", "float", 1.0, low=0, grid=(1.0, 2.0)),),
        "summary": "A toy squared error.",
        "reference": "A test fixture.",
    }
    fields.update(changes)
    return LossSpec(**fields)


def make_plugin(name: str, *specs: LossSpec, hook: Callable[[], Any] | None = None) -> Any:
    """Return a module object whose register_losses hook returns ``specs`` (or calls ``hook``)."""
    module = types.ModuleType(name)

    @hookimpl
    def register_losses():
        return hook() if hook is not None else list(specs)

    module.register_losses = register_losses
    return module


class FakeDistribution:
    def __init__(self, name: str, version: str) -> None:
        self.name = name
        self.version = version


class FakeEntryPoint:
    """The part of importlib.metadata.EntryPoint the registry uses."""

    group = "lossreg"

    def __init__(self, name: str, loader: Callable[[], Any], dist: str, version: str) -> None:
        self.name = name
        self._loader = loader
        self.dist = FakeDistribution(dist, version)

    def load(self) -> Any:
        return self._loader()


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Replace the installed entry points of group ``lossreg`` with the ones a test adds."""
    found: list[FakeEntryPoint] = []
    real = importlib.metadata.entry_points

    def entry_points(**kwargs):
        if kwargs.get("group") == "lossreg":
            return list(found)
        return real(**kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)

    def add(name: str, loader: Callable[[], Any], dist: str = "", version: str = "1.0") -> None:
        found.append(FakeEntryPoint(name, loader, dist or f"lossreg-{name}", version))

    return add


def pytest_configure(config):
    # The tests train tiny networks: one thread is faster than two, and with pytest-xdist
    # workers it avoids oversubscribing the cores. Results do not depend on it.
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _clean_plugin_environment(monkeypatch):
    """Tests start from unset LOSSREG_* switches, whatever the shell running them set."""
    for var in ("LOSSREG_LOAD_PLUGINS", "LOSSREG_BLOCK_PLUGINS", "LOSSREG_STRICT_PLUGINS"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def builtin_registry() -> lossreg.Registry:
    """The built-in losses only: no third-party entry points."""
    return lossreg.Registry(entry_points=False)
