"""The Registry: finds loss plugins lazily, validates their specs, and answers lookups."""

from __future__ import annotations

import fnmatch
import importlib
import importlib.metadata
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pluggy

from lossreg import hookspecs
from lossreg._suggest import did_you_mean
from lossreg._version import __version__
from lossreg.errors import (
    DuplicateLossError,
    InvalidLossSpecError,
    LossPluginWarning,
    PluginLoadError,
    UnknownLossError,
)
from lossreg.params import check_params
from lossreg.spec import LossSpec, spec_problems

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "RegisteredLoss",
    "Registry",
    "create_loss",
    "default_registry",
    "get_spec",
    "list_losses",
    "list_plugins",
]

ENTRY_POINT_GROUP = "lossreg"
_FROM_ENV: Any = object()  # sentinel: read the LOSSREG_* variable when the registry loads


@dataclass(frozen=True)
class PluginInfo:
    """What the registry knows about one plugin.

    ``status`` is ``"loaded"``, ``"failed"`` (``error`` says why), ``"blocked"``
    (``LOSSREG_BLOCK_PLUGINS``) or ``"not loaded"`` (excluded by ``LOSSREG_LOAD_PLUGINS``).
    """

    name: str
    source: str  # "builtin", "entry_point" or "object"
    status: str
    distribution: str | None = None
    version: str | None = None
    losses: tuple[str, ...] = ()
    error: str | None = None

    @property
    def label(self) -> str:
        """``'name' (distribution version)`` for messages."""
        if self.distribution:
            return f"plugin {self.name!r} ({self.distribution} {self.version or ''})".replace(
                " )", ")"
            )
        return f"plugin {self.name!r}"


@dataclass(frozen=True)
class RegisteredLoss:
    """A spec together with the plugin that registered it."""

    spec: LossSpec
    plugin: PluginInfo


@dataclass
class _Candidate:
    name: str
    source: str
    load: Callable[[], Any]
    distribution: str | None = None
    version: str | None = None
    keys: tuple[str, ...] = field(default=())  # names LOSSREG_LOAD/BLOCK_PLUGINS may use


class Registry:
    """A set of losses gathered from plugins.

    Nothing is imported until the first lookup. Then the built-in plugin modules load, then
    the entry points of group ``lossreg``, then the ``plugins`` given here; every spec is
    validated. A plugin that fails to import or register is skipped with a
    :class:`~lossreg.errors.LossPluginWarning` (``strict`` raises instead).

    Parameters
    ----------
    builtins : bool
        Load lossreg's own loss families.
    entry_points : bool
        Load third-party plugins from the ``lossreg`` entry-point group.
    plugins : iterable
        Further plugin objects (modules or objects with a ``register_losses`` hookimpl).
    load : str or None
        Which entry-point plugins to load: ``None`` all, ``""`` none, ``"a,b"`` only those
        (entry-point or distribution names). Default: ``$LOSSREG_LOAD_PLUGINS``.
    block : iterable of str
        Plugin or distribution names not to load, built-ins included.
        Default: ``$LOSSREG_BLOCK_PLUGINS`` (comma separated).
    strict : bool
        Raise :class:`~lossreg.errors.PluginLoadError` instead of warning.
        Default: ``$LOSSREG_STRICT_PLUGINS == "1"``.
    """

    def __init__(
        self,
        *,
        builtins: bool = True,
        entry_points: bool = True,
        plugins: Iterable[Any] = (),
        load: str | None = _FROM_ENV,
        block: Iterable[str] = _FROM_ENV,
        strict: bool = _FROM_ENV,
    ) -> None:
        self.builtins = builtins
        self.entry_points = entry_points
        self.plugins = tuple(plugins)
        self.load = load
        self.block = block
        self.strict = strict
        self._lock = threading.Lock()
        self._losses: dict[str, RegisteredLoss] | None = None
        self._aliases: dict[str, str] = {}
        self._plugins: list[PluginInfo] = []

    # -- lookups -------------------------------------------------------------------------
    def list_losses(
        self, task: str | None = None, pattern: str = "*", plugin: str | None = None
    ) -> list[str]:
        """Return the sorted canonical names of the registered losses.

        Parameters
        ----------
        task : str, optional
            Keep losses that support this task.
        pattern : str
            A shell pattern matched against names and aliases.
        plugin : str, optional
            Keep losses registered by this plugin (plugin or distribution name).
        """
        entries = self._entries()
        names = []
        for name, entry in entries.items():
            if task is not None and task not in entry.spec.tasks:
                continue
            if plugin is not None and plugin not in (entry.plugin.name, entry.plugin.distribution):
                continue
            if not any(fnmatch.fnmatchcase(n, pattern) for n in entry.spec.names):
                continue
            names.append(name)
        return sorted(names)

    def get_entry(self, name: str) -> RegisteredLoss:
        """Return the spec and plugin of a loss name or alias."""
        entries = self._entries()
        if not isinstance(name, str):
            raise UnknownLossError(f"A loss name must be a str. Got {name!r} instead.")
        canonical = self._aliases.get(name, name)
        if canonical not in entries:
            hint = did_you_mean(name, [*entries, *self._aliases])
            raise UnknownLossError(
                f"Unknown loss {name!r}.{hint} {len(entries)} losses are registered; "
                "see `lossreg list`."
            )
        return entries[canonical]

    def get_spec(self, name: str) -> LossSpec:
        """Return the :class:`~lossreg.LossSpec` of a loss name or alias."""
        return self.get_entry(name).spec

    def create_loss(self, name: str, **params: Any) -> Any:
        """Build a loss module, validating every parameter first.

        Parameters
        ----------
        name : str
            A registered name or alias.
        **params
            Hyperparameters, data parameters (``n_classes=...``) and ``reduction``. The data
            parameters are the spec's ``data_params`` and, for a loss built from others
            (``weighted_sum``, a wrapper with a ``base``), those its ``data_params_of`` names
            for these hyperparameters: ``create_loss("weighted_sum", losses=("cross_entropy",
            "ldam"), class_counts=[...])``.

        Raises
        ------
        UnknownLossError
            When no plugin registered ``name``.
        InvalidLossParameterError
            Listing every unknown parameter, every invalid value and every missing data
            parameter.
        """
        spec = self.get_spec(name)
        hyper = {k: v for k, v in params.items() if k != "reduction"}
        check_params(
            spec.name,
            spec.params,
            hyper,
            data_params=_data_params_needed(spec, hyper),
            require_data_params=True,
        )
        return spec.factory(**params)

    def list_plugins(self) -> list[PluginInfo]:
        """Return every plugin seen, failed and blocked ones included."""
        self._entries()
        return list(self._plugins)

    def __contains__(self, name: object) -> bool:
        entries = self._entries()
        return isinstance(name, str) and (name in entries or name in self._aliases)

    def __iter__(self) -> Iterator[str]:
        return iter(self.list_losses())

    def __len__(self) -> int:
        return len(self._entries())

    # -- loading -------------------------------------------------------------------------
    def _entries(self) -> dict[str, RegisteredLoss]:
        if self._losses is None:
            with self._lock:
                if self._losses is None:
                    self._load_all()
        assert self._losses is not None  # set by _load_all
        return self._losses

    def _settings(self) -> tuple[set[str] | None, set[str], bool]:
        load = os.environ.get("LOSSREG_LOAD_PLUGINS") if self.load is _FROM_ENV else self.load
        block = (
            os.environ.get("LOSSREG_BLOCK_PLUGINS", "").split(",")
            if self.block is _FROM_ENV
            else list(self.block)
        )
        strict = (
            os.environ.get("LOSSREG_STRICT_PLUGINS", "") == "1"
            if self.strict is _FROM_ENV
            else bool(self.strict)
        )
        only = None if load is None else {_norm(n) for n in load.split(",") if n.strip()}
        return only, {_norm(b) for b in block if b.strip()}, strict

    def _candidates(self) -> list[_Candidate]:
        found: list[_Candidate] = []
        if self.builtins:
            from lossreg.plugins import BUILTIN_PLUGINS

            for path in BUILTIN_PLUGINS:
                found.append(
                    _Candidate(
                        name=path,
                        source="builtin",
                        load=lambda path=path: importlib.import_module(path),
                        distribution="lossreg",
                        version=__version__,
                        keys=(path, "lossreg"),
                    )
                )
        if self.entry_points:
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                dist = getattr(ep, "dist", None)
                dist_name = dist.name if dist is not None else None
                found.append(
                    _Candidate(
                        name=ep.name,
                        source="entry_point",
                        load=ep.load,
                        distribution=dist_name,
                        version=dist.version if dist is not None else None,
                        keys=tuple(k for k in (ep.name, dist_name) if k),
                    )
                )
        for obj in self.plugins:
            name = getattr(obj, "__name__", None) or type(obj).__name__
            found.append(
                _Candidate(name=name, source="object", load=lambda obj=obj: obj, keys=(name,))
            )
        return found

    def _load_all(self) -> None:
        only, block, strict = self._settings()
        manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        manager.add_hookspecs(hookspecs)
        losses: dict[str, RegisteredLoss] = {}
        aliases: dict[str, str] = {}
        owners: dict[str, PluginInfo] = {}  # every claimed name or alias -> its plugin
        plugins: list[PluginInfo] = []
        for cand in self._candidates():
            keys = {_norm(k) for k in cand.keys}
            base = PluginInfo(cand.name, cand.source, "loaded", cand.distribution, cand.version)
            if keys & block:
                plugins.append(_with(base, status="blocked"))
                continue
            if cand.source == "entry_point" and only is not None and not keys & only:
                plugins.append(_with(base, status="not loaded"))
                continue
            try:
                specs = _call_plugin(manager, cand)
            except Exception as exc:
                plugins.append(self._fail(base, exc, strict))
                continue
            info = _with(base, losses=tuple(s.name for s in specs))
            for spec in specs:
                for claimed in spec.names:
                    if claimed in owners:
                        raise DuplicateLossError(_duplicate_message(claimed, owners[claimed], info))
                    owners[claimed] = info
            for spec in specs:
                losses[spec.name] = RegisteredLoss(spec, info)
                aliases.update(dict.fromkeys(spec.aliases, spec.name))
            plugins.append(info)
        self._plugins = plugins
        self._aliases = aliases
        self._losses = losses

    def _fail(self, base: PluginInfo, exc: Exception, strict: bool) -> PluginInfo:
        error = f"{type(exc).__name__}: {exc}"
        if strict:
            raise PluginLoadError(
                f"Could not load lossreg {base.label}: {error}. Unset LOSSREG_STRICT_PLUGINS to "
                "skip broken plugins with a warning instead."
            ) from exc
        block_name = base.distribution or base.name
        warnings.warn(
            f"Skipping lossreg {base.label}: {error}. The other plugins are loaded. Block it with "
            f"LOSSREG_BLOCK_PLUGINS={block_name}, or set LOSSREG_STRICT_PLUGINS=1 to raise.",
            LossPluginWarning,
            stacklevel=4,
        )
        return _with(base, status="failed", error=error)


def _data_params_needed(spec: LossSpec, hyper: dict[str, Any]) -> tuple[str, ...]:
    """The data params ``create_loss`` requires: the spec's, then its members' for ``hyper``.

    The members are asked (``spec.data_params_of``) only when every given hyperparameter value
    is valid: with an invalid one (``losses=3``) the members are unknown, and the value's own
    error is the one to report.
    """
    if spec.data_params_of is None:
        return spec.data_params
    schema = {p.name: p for p in spec.params}
    given = {k: v for k, v in hyper.items() if k in schema}
    if not all(schema[k].is_valid(v) for k, v in given.items()):
        return spec.data_params
    # Imported here: lossreg.targets imports numpy, which a registry lookup does not need.
    from lossreg.targets import data_param_names

    return data_param_names(spec, given)


def _call_plugin(manager: pluggy.PluginManager, cand: _Candidate) -> list[LossSpec]:
    """Import one plugin, call its hook alone, and validate what it returned."""
    obj = cand.load()
    manager.register(obj, name=f"{cand.source}:{cand.name}")
    try:
        manager.check_pending()  # a misspelled hook name fails here, not silently
        impls = [i for i in manager.hook.register_losses.get_hookimpls() if i.plugin is obj]
        if not impls:
            raise InvalidLossSpecError(
                "it defines no register_losses() hook; decorate it with @lossreg.hookimpl"
            )
        specs: list[Any] = []
        for impl in impls:
            returned = impl.function()
            if not isinstance(returned, list | tuple):
                raise InvalidLossSpecError(
                    f"register_losses() must return a list of LossSpec, got {returned!r}"
                )
            specs.extend(returned)
        problems = [
            f"loss {getattr(s, 'name', s)!r} breaks rule {rule!r}: {text}"
            for s in specs
            for rule, text in spec_problems(s)
        ]
        if problems:
            raise InvalidLossSpecError(
                f"{cand.name!r} returned invalid specs: " + "; ".join(problems)
            )
        return specs
    finally:
        # The manager only carried the hook call; the registry keeps the specs.
        manager.unregister(obj)


def _duplicate_message(name: str, first: PluginInfo, second: PluginInfo) -> str:
    return (
        f"Loss name {name!r} is registered twice: by {first.label} and by {second.label}. "
        "Rename one, or block one with "
        f"LOSSREG_BLOCK_PLUGINS={second.distribution or second.name}."
    )


def _with(info: PluginInfo, **changes: Any) -> PluginInfo:
    return replace(info, **changes)


def _norm(name: str) -> str:
    return name.strip().lower().replace("-", "_")


# -- the default registry and its module-level functions ---------------------------------
_default: Registry | None = None
_default_lock = threading.Lock()


def default_registry() -> Registry:
    """Return the process-wide registry that the module-level functions use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Registry()
    return _default


def list_losses(
    task: str | None = None, pattern: str = "*", plugin: str | None = None
) -> list[str]:
    """Return the sorted names of the registered losses; see :meth:`Registry.list_losses`."""
    return default_registry().list_losses(task=task, pattern=pattern, plugin=plugin)


def get_spec(name: str) -> LossSpec:
    """Return the spec of a registered loss name or alias."""
    return default_registry().get_spec(name)


def create_loss(name: str, **params: Any) -> Any:
    """Build a registered loss module with validated parameters."""
    return default_registry().create_loss(name, **params)


def list_plugins() -> list[PluginInfo]:
    """Return every plugin the default registry has seen, failed ones with their error."""
    return default_registry().list_plugins()
