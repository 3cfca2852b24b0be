"""What LossClassifier and LossRegressor share: parameters, fitting, the forward pass."""

from __future__ import annotations

import abc
import copy
import inspect
import numbers
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
from skorch.callbacks import Callback, EarlyStopping, PrintLog

from lossreg.errors import MissingFitExtraError, UnsupportedTaskError
from lossreg.links import Link, resolve_link
from lossreg.params import check_params
from lossreg.registry import default_registry
from lossreg.spec import FIT_EXTRAS, SCALAR_EXTRAS, LossSpec
from lossreg.targets import (
    column_width,
    compute_data_params,
    data_param_names,
    extra_widths,
    output_size,
    rule_text,
)

from ._augment import FeatureCorruption
from ._batches import TensorBatches
from ._mlp import MLP
from ._mode import loss_mode
from ._net import EpochNotifier, LossNet
from ._outputs import as_logits_features, logits_of
from ._params import PrefixedParams, check_prefixed, extra_params, split_prefixed
from ._stopping import warn_if_stalled

__all__ = ["USER_FIT_EXTRAS", "LossEstimatorBase", "fit_extras_from", "fold_data_params"]

#: The fit extras a caller passes to ``fit`` by name (``features`` is X itself, passed by the
#: estimator). Each estimator's ``fit`` lists them in its signature, which is what scikit-learn's
#: metadata routing reads to offer ``set_fit_request(group=True, ...)``.
USER_FIT_EXTRAS = tuple(name for name in FIT_EXTRAS if name != "features")


def fit_extras_from(arguments: dict[str, Any]) -> dict[str, Any]:
    """Pick the fit extras out of a ``fit`` call's arguments (its ``locals()``)."""
    return {name: arguments.get(name) for name in USER_FIT_EXTRAS}


def fold_data_params(
    spec: LossSpec,
    loss_params: dict[str, Any],
    y: np.ndarray,
    task: str,
    n_classes: int | None,
    *,
    width: int | None = None,
    feature_width: int | None = None,
) -> dict[str, Any]:
    """The data params of one training fold: the spec's, then its members' (composites).

    ``spec.data_params`` must all be defined for ``task`` (an error says which is not); a
    member's data param (``spec.data_params_of``, for these ``loss_params``) that ``task``
    does not define (a class count on regression targets) is left out: the member then fails
    with its own message, or the task check names the members' tasks.
    """
    common = {"width": width, "feature_width": feature_width}
    out = compute_data_params(spec.data_params, y, task, n_classes, **common)
    for name in data_param_names(spec, loss_params):
        if name in out:
            continue
        try:
            out.update(compute_data_params((name,), y, task, n_classes, **common))
        except ValueError:
            continue
    return out


OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adamw": torch.optim.AdamW,
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}

_CLASS_TASKS = ("binary", "multiclass")

_FITTED = (
    "classes_",
    "net_",
    "module_",
    "criterion_",
    "history_",
    "loss_name_",
    "data_params_",
    "n_iter_",
    "task_",
    "n_outputs_",
)


class LossEstimatorBase(PrefixedParams, BaseEstimator, metaclass=abc.ABCMeta):
    """Shared machinery; see :class:`~lossreg.LossClassifier` for the parameters."""

    #: the tasks this estimator fits; subclasses narrow it
    _tasks: tuple[str, ...] = ()

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "loss": [str, LossSpec],
        "module": [None, type, callable],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "optimizer": [StrOptions(set(OPTIMIZERS)), type],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "device": [StrOptions({"cpu", "cuda", "auto"}), str, torch.device],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "callbacks": [None, list],
    }

    # -- parameters ----------------------------------------------------------------------
    def _store_prefixed(self, kwargs: dict[str, Any]) -> None:
        # __init__ only stores (scikit-learn's rule). Names without a known prefix are kept
        # too, so that clone() carries them and fit() reports them with a suggestion.
        self._extra_params = dict(kwargs)

    # -- what the subclasses provide -------------------------------------------------------
    @abc.abstractmethod
    def _prepare_target(self, y: Any) -> tuple[str, np.ndarray, int]:
        """Return (task, encoded y, n_classes) and set target-related fitted attributes."""

    def _row_weights(self, y_encoded: np.ndarray, task: str) -> np.ndarray | None:
        """Per-row weights implied by estimator parameters (class_weight); None by default."""
        return None

    def _init_module(
        self,
        module: torch.nn.Module,
        spec: LossSpec,
        task: str,
        y_counted: np.ndarray,
        n_classes: int,
        width: int,
    ) -> None:
        """Adjust a freshly built module from the training targets (output_bias); no-op here."""

    # -- fitting ---------------------------------------------------------------------------
    def _spec(self) -> LossSpec:
        return (
            self.loss if isinstance(self.loss, LossSpec) else default_registry().get_spec(self.loss)
        )

    def _link(self) -> Link:
        return resolve_link(self._spec().link)

    def _fit(self, X: Any, y: Any, sample_weight: Any, extras: dict[str, Any]) -> Any:
        continuing = self.warm_start and hasattr(self, "net_")
        try:
            return self._fit_once(X, y, sample_weight, extras)
        except BaseException:
            if not continuing:
                self._forget_fit()  # a failed fresh fit leaves no half-fitted attributes
            raise

    def _fit_once(self, X: Any, y: Any, sample_weight: Any, extras: dict[str, Any]) -> Any:
        self._validate_params()
        check_prefixed(type(self).__name__, list(extra_params(self)), list(self._get_param_names()))
        spec = self._spec()
        continuing = self.warm_start and hasattr(self, "net_")
        if not continuing:
            self._forget_fit()
        X, y = validate_data(
            self,
            X,
            y,
            reset=not continuing,
            accept_sparse=("csr", "csc", "coo"),
            dtype=(np.float32, np.float64),
            multi_output=True,
            y_numeric="regression" in self._tasks,
        )
        X = _dense_float32(X)
        task, y_encoded, n_classes = self._prepare_target(y)
        self._check_task(spec.name, spec.tasks, task)
        loss_params = split_prefixed(self, "loss__")
        check_params(spec.name, spec.params, loss_params, data_params=(), prefix="loss__")
        fields = {"target": self._target_tensor(spec, task, y_encoded)}
        weights = self._combined_weights(sample_weight, X, y_encoded, task)
        if weights is not None:
            fields["sample_weight"] = torch.as_tensor(weights, dtype=torch.float32)

        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        device = self._device()
        snapshot = copy.deepcopy(self.net_.module_.state_dict()) if continuing else None
        n_outputs = int(y_encoded.shape[1]) if y_encoded.ndim == 2 else 1
        width = self._output_width(spec, task, n_classes, n_outputs, loss_params, X.shape[1])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # seeds weight initialisation and dropout, not the caller
            if continuing:
                net = self.net_
                criterion = net.criterion_
            else:
                module = self._build_module(X.shape[1], width, spec)
                feature_width = self._feature_width(spec, module, X)
                # Unlabeled rows (-1, semi-supervised losses) do not count in class statistics.
                counted = y_encoded[y_encoded >= 0] if task in _CLASS_TASKS else y_encoded
                self._init_module(module, spec, task, counted, n_classes, width)
                data_params = self._data_params(
                    spec, loss_params, counted, task, n_classes, width, feature_width
                )
                criterion = spec.factory(**loss_params, **data_params)
                # A loss built from others (weighted_sum) knows its tasks only once built.
                self._check_task(spec.name, getattr(criterion, "tasks_", spec.tasks), task)
            declared = getattr(criterion, "fit_extras_", spec.fit_extras)
            widths = extra_widths(
                spec,
                task,
                width=width,
                n_classes=n_classes,
                n_outputs=n_outputs,
                params=loss_params,
                n_features=X.shape[1],
                criterion=criterion,
            )
            fields.update(self._extras(spec.name, declared, extras, X, widths))
            data = TensorBatches(torch.from_numpy(X), fields)
            if not continuing:
                net = self._build_net(spec, module, criterion, data, device, seed, task)
                self.data_params_ = data_params
            try:
                if continuing:
                    net.partial_fit(data.to(device), epochs=self.max_iter)
                else:
                    net.fit(data.to(device))
                    warn_if_stalled(
                        net.history,
                        loss_name=spec.name,
                        monitor="valid_loss" if self.early_stopping else "train_loss",
                        max_iter=self.max_iter,
                        patience=self.n_iter_no_change,
                        tol=self.tol,
                    )
            except BaseException:
                if continuing and snapshot is not None:
                    net.module_.load_state_dict(snapshot)  # keep the model that was fitted
                else:
                    self._forget_fit()
                raise
        self.net_ = net
        self.module_ = net.module_
        self.criterion_ = net.criterion_
        self.history_ = net.history
        self.loss_name_ = spec.name
        self.n_iter_ = len(net.history)
        self.task_ = task
        return self

    def _data_params(
        self,
        spec: LossSpec,
        loss_params: dict[str, Any],
        y: np.ndarray,
        task: str,
        n_classes: int,
        width: int,
        feature_width: int | None,
    ) -> dict[str, Any]:
        """The data params of this training fold (:func:`fold_data_params`)."""
        return fold_data_params(
            spec,
            loss_params,
            y,
            self._data_task(task),
            n_classes,
            width=width,
            feature_width=feature_width,
        )

    def _data_task(self, task: str) -> str:
        """The task whose rules compute the data params (embedding labels count as classes)."""
        return task

    def _output_width(
        self,
        spec: LossSpec,
        task: str,
        n_classes: int,
        n_outputs: int,
        params: dict[str, Any],
        n_features: int,
    ) -> int:
        return output_size(
            spec,
            task,
            n_classes=n_classes,
            n_outputs=n_outputs,
            params=params,
            n_features=n_features,
        )

    def _batch_size_auto(self, n: int) -> int:
        """``batch_size="auto"``: scikit-learn's MLP rule."""
        return min(200, n)

    def _batch_sampler(self, spec: LossSpec) -> str | None:
        """How the net draws training batches (the spec's sampler; LossEmbedder has an option)."""
        return spec.sampler

    def _augmenter(self) -> Any:
        """The augmentation two-view losses get (estimators with an option override it)."""
        return FeatureCorruption()

    def _forget_fit(self) -> None:
        for name in _FITTED:
            self.__dict__.pop(name, None)

    def _check_task(self, name: str, tasks: frozenset[str], task: str) -> None:
        ok = task in tasks or (task == "binary" and "multiclass" in tasks)
        if not ok:
            compatible = default_registry().list_losses(task=task)
            shown = ", ".join(compatible[:12]) + (" ..." if len(compatible) > 12 else "")
            raise UnsupportedTaskError(
                f"Loss {name!r} does not support task {task!r} (supports: "
                f"{', '.join(sorted(tasks))}). Use one of: {shown}."
            )

    def _combined_weights(
        self, sample_weight: Any, X: np.ndarray, y_encoded: np.ndarray, task: str
    ) -> np.ndarray | None:
        implied = self._row_weights(y_encoded, task)
        if sample_weight is None and implied is None:
            return None
        weights = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if implied is not None:
            weights = weights * implied
        return weights

    def _extras(
        self,
        loss: str,
        declared: tuple[str, ...],
        extras: dict[str, Any],
        X: np.ndarray,
        widths: dict[str, tuple[int, ...]] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Validate and convert the per-row extras the loss declares; others are not passed.

        ``widths`` holds the columns per row the loss accepts for its sized extras
        (:func:`lossreg.targets.extra_widths`); another width fails here, naming the loss.
        """
        extras = dict(extras)
        n_rows = X.shape[0]
        if "sample_index" in declared and extras.get("sample_index") is None:
            # Stable row ids of this fit's training rows: nothing the caller must supply.
            extras["sample_index"] = np.arange(n_rows)
        if "features" in declared and extras.get("features") is None:
            extras["features"] = X  # losses on the inputs themselves (CS divergence ...)
        missing = [name for name in declared if extras.get(name) is None]
        if missing:
            needs = ", ".join(f"{m}=..." for m in missing)
            raise MissingFitExtraError(
                f"Loss {loss!r} needs {', '.join(map(repr, missing))} at fit time: pass "
                f"fit(X, y, {needs}) with one value per row ({FIT_EXTRAS[missing[0]]})."
            )
        tensors = {}
        for name in declared:
            value = np.asarray(extras[name])
            if value.shape[0] != n_rows:
                raise ValueError(
                    f"{name} has {value.shape[0]} rows but X has {n_rows}; pass one per row."
                )
            if name in SCALAR_EXTRAS and column_width(value) != 1:
                raise ValueError(
                    f"{name} holds one number per row ({FIT_EXTRAS[name]}); got shape "
                    f"{value.shape}, {column_width(value)} values per row. Pass fit(X, y, "
                    f"{name}=...) with shape (n_rows,) or (n_rows, 1)."
                )
            accepted = (widths or {}).get(name)
            if accepted is not None and column_width(value) not in accepted:
                self._wrong_width(loss, name, value, accepted)
            if value.dtype.kind == "f":
                tensors[name] = torch.as_tensor(value, dtype=torch.float32)
            elif value.dtype.kind in "iub":
                tensors[name] = torch.as_tensor(value.astype(np.int64))
            else:
                raise ValueError(f"{name} must be numeric. Got dtype {value.dtype} instead.")
        return tensors

    def _wrong_width(
        self, loss: str, name: str, value: np.ndarray, accepted: tuple[int, ...]
    ) -> None:
        spec = self._spec()
        rule = spec.extra_widths.get(name) if spec.name == loss else None
        why = f" Its width: {rule_text(rule).rstrip('.')}." if rule is not None else ""
        wanted = " or ".join(str(w) for w in accepted)
        raise ValueError(
            f"Loss {loss!r} takes {name} {wanted} columns wide; got {column_width(value)} "
            f"(shape {value.shape}).{why} Pass fit(X, y, {name}=...) with shape "
            f"(n_rows, {accepted[0]}); see `lossreg info {loss}`."
        )

    def _target_tensor(self, spec: LossSpec, task: str, y_encoded: np.ndarray) -> torch.Tensor:
        if (
            task in ("binary", "multiclass", "embedding")
            and resolve_link(spec.link).name != "sigmoid"
        ):
            return torch.tensor(y_encoded, dtype=torch.int64)
        return torch.tensor(y_encoded, dtype=torch.float32)

    def _build_module(self, n_features: int, width: int, spec: LossSpec) -> torch.nn.Module:
        params = split_prefixed(self, "module__")
        features = spec.outputs == "logits+features"
        if self.module is None:
            if features:
                params["return_features"] = True
            return MLP(n_features, width, **params)
        try:
            accepted = inspect.signature(self.module).parameters
        except (TypeError, ValueError):
            accepted = {}
        # A user module gets the data-dependent sizes when it asks for them by these names,
        # and return_features=True when it takes that switch (as the MLP does).
        asked = [("n_features", n_features), ("n_outputs", width)]
        if features:
            asked.append(("return_features", True))
        for name, value in asked:
            if name in accepted and name not in params:
                params[name] = value
        return self.module(**params)

    def _feature_width(self, spec: LossSpec, module: torch.nn.Module, X: np.ndarray) -> int | None:
        """For a ``logits+features`` loss: check the module returns the pair, return its D.

        One forward pass on two rows, in eval mode and without gradient (no random draw, no
        batch-norm statistic moves), so a module that returns logits only fails here with a
        message naming the fix instead of inside the loss.
        """
        if spec.outputs != "logits+features":
            return None
        training = module.training
        module.eval()
        try:
            with torch.no_grad():
                output = module(torch.from_numpy(X[:2]))
        finally:
            module.train(training)
        name = type(module).__name__ if self.module is not None else "MLP"
        _, features = as_logits_features(output, spec.name, repr(name))
        return int(features.shape[1])

    def _build_net(
        self,
        spec: LossSpec,
        module: torch.nn.Module,
        criterion: torch.nn.Module,
        data: TensorBatches,
        device: str,
        seed: int,
        task: str,
    ) -> LossNet:
        optimizer = OPTIMIZERS.get(self.optimizer, self.optimizer)
        optimizer_params = {
            "optimizer__" + k: v for k, v in split_prefixed(self, "optimizer__").items()
        }
        optimizer_params.setdefault("optimizer__weight_decay", self.weight_decay)
        n = len(data)
        batch_size = self._batch_size_auto(n) if self.batch_size == "auto" else int(self.batch_size)
        # a hyperparameter may switch the loss to two views (cwcl's target kernel)
        views = loss_mode(spec, split_prefixed(self, "loss__")).views
        callbacks: list[tuple[str, Callback]] = [("set_epoch", EpochNotifier())]
        monitor = "valid_loss" if self.early_stopping else "train_loss"
        callbacks.append(
            (
                "early_stopping",
                EarlyStopping(
                    monitor=monitor,
                    patience=self.n_iter_no_change,
                    threshold=self.tol,
                    threshold_mode="abs",
                    load_best=self.early_stopping,
                    sink=_quiet,
                ),
            )
        )
        if self.verbose:
            callbacks.append(("print_log", PrintLog()))
        for i, cb in enumerate(self.callbacks or []):
            callbacks.append(cb if isinstance(cb, tuple) else (f"user_{i}_{type(cb).__name__}", cb))
        generator = torch.Generator().manual_seed(seed)
        train_split = None
        if self.early_stopping:
            train_split = _ValidationSplit(self.validation_fraction, seed, task)
        return LossNet(
            module=module,
            criterion=criterion,
            optimizer=optimizer,
            lr=self.lr,
            max_epochs=self.max_iter,
            batch_size=batch_size,
            train_split=train_split,
            callbacks=callbacks,
            device=device,
            verbose=self.verbose,
            loss_name=spec.name,
            generator=generator,
            merge_tail=not spec.per_sample,
            sampler=self._batch_sampler(spec),
            views=views,
            outputs=spec.outputs,
            augment=self._augmenter() if views == 2 else None,
            view_maker=spec.view_maker,
            **optimizer_params,
        )

    def _device(self) -> str:
        device = str(self.device)
        if device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(
                f"device={self.device!r} but PyTorch sees no CUDA device here. Use "
                "device='cpu', or device='auto' to take a GPU only when there is one."
            )
        return device

    # -- prediction ------------------------------------------------------------------------
    def _forward64(self, X: Any) -> tuple[torch.Tensor, torch.nn.Module]:
        """Module output for ``X`` and the fitted criterion, in float64 on the CPU.

        The output is the logits: a ``logits+features`` network's features serve training
        only, so links and criterion helpers receive the logits part.

        Training runs in float32; predictions use a float64 copy of the trained network so that
        a row's prediction does not depend on which other rows share its batch (float32
        matrix kernels round differently for different batch shapes).
        """
        check_is_fitted(self, "net_")
        X = validate_data(
            self,
            X,
            reset=False,
            accept_sparse=("csr", "csc", "coo"),
            dtype=(np.float32, np.float64),
        )
        X = X.toarray() if sp.issparse(X) else X
        inputs = torch.from_numpy(np.array(X, dtype=np.float64))  # a private, writable copy
        module = copy.deepcopy(self.module_).to(device="cpu", dtype=torch.float64).eval()
        criterion = copy.deepcopy(self.criterion_).to(device="cpu", dtype=torch.float64)
        chunk = 65536  # bounds peak memory of the float64 activations
        with torch.no_grad():
            # A logits+features network: predictions (links, transforms) use the logits only.
            out = torch.cat(
                [logits_of(module(inputs[i : i + chunk])) for i in range(0, len(inputs), chunk)]
            )
        return out, criterion

    def _linked(self, X: Any) -> np.ndarray:
        """Module output through the loss's link (probabilities, scores or values)."""
        out, criterion = self._forward64(X)
        with torch.no_grad():
            return self._link()(out, criterion).numpy()

    def _criterion_method(self, X: Any, method: str, **kwargs: Any) -> Any:
        """Call a prediction helper of the fitted loss (``predict_std`` ...) on the output."""
        out, criterion = self._forward64(X)
        with torch.no_grad():
            result = getattr(criterion, method)(out, **kwargs)
        if isinstance(result, tuple):
            return tuple(r.numpy() for r in result)
        return result.numpy()

    def _loss_offers(self, method: str) -> bool:
        try:
            return callable(getattr(self._spec().factory, method, None))
        except Exception:  # an unknown loss fails at fit, with its own message
            return False

    def _supports(self, task: str) -> bool:
        try:
            return task in self._spec().tasks
        except Exception:  # an unknown loss fails at fit, with its own message
            return False

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = self._supports("multilabel") or self._supports("regression")
        return tags


class _ValidationSplit:
    """Holds out ``fraction`` of the rows (stratified for class targets when possible)."""

    def __init__(self, fraction: float, seed: int, task: str) -> None:
        self.fraction = fraction
        self.seed = seed
        self.task = task

    def __call__(self, dataset: TensorBatches, y: Any = None, **kwargs: Any) -> Any:
        n = len(dataset)
        index = np.arange(n)
        target = dataset.fields["target"].cpu().numpy()
        stratify = target if self.task in ("binary", "multiclass") else None
        try:
            train, valid = train_test_split(
                index, test_size=self.fraction, random_state=self.seed, stratify=stratify
            )
        except ValueError:  # a class too small to stratify: fall back to a plain split
            train, valid = train_test_split(index, test_size=self.fraction, random_state=self.seed)
        device = dataset.X.device
        return (
            dataset.subset(torch.as_tensor(train, device=device)),
            dataset.subset(torch.as_tensor(valid, device=device)),
        )


def _quiet(*args: Any, **kwargs: Any) -> None:
    """Sink for skorch's early-stopping message; ``n_iter_`` tells how many epochs ran."""


def _dense_float32(X: Any) -> np.ndarray:
    # Sparse input is densified: tabular models see a few hundred columns at most, and the
    # network needs dense tensors anyway.
    if sp.issparse(X):
        X = X.toarray()
    X = np.ascontiguousarray(X, dtype=np.float32)
    # torch shares memory with the array and warns about read-only ones; copy those.
    return X if X.flags.writeable else X.copy()
