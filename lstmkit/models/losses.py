"""Losses, metrics and optimizers by name, for ``Model.compile``.

Losses follow Keras's conventions so that tutorials translate line by line: the cross-entropies
take *probabilities* (the output of a sigmoid or softmax layer), clipped to ``[1e-7, 1 - 1e-7]``;
``categorical_crossentropy`` takes one-hot targets, ``sparse_categorical_crossentropy`` integer
class ids. For logits, pass a torch loss object such as ``torch.nn.BCEWithLogitsLoss()``.

Every named loss and metric reduces the last axis first, giving one value per sample (or per
sample and time step for sequence outputs ``(B, T, F)``); the mean is then taken over those, and
only over real steps when the model's output carries a mask.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

_EPS = 1e-7


def _align(owner: str, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``y`` cast to ``pred``'s dtype and shape; ``(B,)`` targets fit a ``(B, 1)`` output."""
    if y.shape != pred.shape:
        if pred.shape[-1:] == (1,) and y.shape == pred.shape[:-1]:
            y = y.unsqueeze(-1)
        else:
            raise ValueError(f"{owner}: targets of shape {tuple(y.shape)} do not match the model's output "
                             f"{tuple(pred.shape)}. Reshape `y` to the output's shape.")
    return y.to(pred.dtype)


def _last_axis(pred: torch.Tensor) -> int:
    return -1 if pred.dim() > 1 else 0


# Each loss comes in two forms: elementwise, one value per sample (per step for sequences), shape
# pred.shape[:-1], used with masks; and `mean`, the mean of those, written with torch's fused ops
# because a step of a small model is dominated by the number of operations, not their size.
def _bce_input(pred):
    return pred.clamp(_EPS, 1.0 - _EPS)


def mse(pred, y):
    return F.mse_loss(pred, _align("mse", pred, y), reduction="none").mean(_last_axis(pred))


def mae(pred, y):
    return F.l1_loss(pred, _align("mae", pred, y), reduction="none").mean(_last_axis(pred))


def huber(pred, y, delta: float = 1.0):
    return F.huber_loss(pred, _align("huber", pred, y), reduction="none", delta=delta).mean(_last_axis(pred))


def binary_crossentropy(pred, y):
    y = _align("binary_crossentropy", pred, y)
    return F.binary_cross_entropy(_bce_input(pred), y, reduction="none").mean(_last_axis(pred))


def categorical_crossentropy(pred, y):
    y = _align("categorical_crossentropy", pred, y)
    p = pred / pred.sum(-1, keepdim=True)
    return -(y * p.clamp(_EPS, 1.0 - _EPS).log()).sum(-1)


def _class_ids(pred, y):
    if y.is_floating_point():
        y = y.round()
    y = y.long()
    if y.shape == pred.shape[:-1] + (1,):
        y = y.squeeze(-1)
    if y.shape != pred.shape[:-1]:
        raise ValueError(f"sparse_categorical_crossentropy: integer targets of shape {tuple(y.shape)} do not match "
                         f"the model's output {tuple(pred.shape)}: expected {tuple(pred.shape[:-1])}. "
                         "Pass class ids (not one-hot); for one-hot targets use 'categorical_crossentropy'.")
    return y


def sparse_categorical_crossentropy(pred, y):
    y = _class_ids(pred, y)
    p = pred.clamp(_EPS, 1.0 - _EPS)
    return -p.log().gather(-1, y.unsqueeze(-1)).squeeze(-1)


def mape(pred, y):
    y = _align("mape", pred, y)
    return 100.0 * ((pred - y).abs() / y.abs().clamp_min(_EPS)).mean(_last_axis(pred))


def _mse_mean(pred, y):
    return F.mse_loss(pred, _align("mse", pred, y))


def _mae_mean(pred, y):
    return F.l1_loss(pred, _align("mae", pred, y))


def _huber_mean(pred, y):
    return F.huber_loss(pred, _align("huber", pred, y))


def _bce_mean(pred, y):
    return F.binary_cross_entropy(_bce_input(pred), _align("binary_crossentropy", pred, y))


def _sparse_cce_mean(pred, y):
    return F.nll_loss(pred.clamp(_EPS, 1.0 - _EPS).log().reshape(-1, pred.shape[-1]), _class_ids(pred, y).reshape(-1))


# The unmasked means as single torch ops. Named functions, not lambdas: a compiled model keeps
# its loss, and pickle (torch.save of a whole model) cannot store a lambda.
_MEANS: dict[str, Callable] = {
    "mse": _mse_mean,
    "mae": _mae_mean,
    "huber": _huber_mean,
    "binary_crossentropy": _bce_mean,
    "sparse_categorical_crossentropy": _sparse_cce_mean,
}


LOSSES: dict[str, Callable] = {
    "mse": mse, "mean_squared_error": mse,
    "mae": mae, "mean_absolute_error": mae,
    "huber": huber,
    "binary_crossentropy": binary_crossentropy,
    "categorical_crossentropy": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
    "mape": mape, "mean_absolute_percentage_error": mape,
    "rmse": mse,  # trained on the mean squared error; reported as its square root
}

# torch loss classes that a named loss reproduces, so compiled settings stay saveable.
_TORCH_LOSS_NAMES = {nn.MSELoss: "mse", nn.L1Loss: "mae", nn.HuberLoss: "huber"}


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``values``; with a mask of the same shape, over the True entries only."""
    if mask is None or mask.shape != values.shape:
        return values.mean()
    weights = mask.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


class Loss:
    """A resolved loss: ``loss(pred, y, mask)`` returns a scalar tensor."""

    def __init__(self, spec):
        self.spec = spec
        if isinstance(spec, str):
            if spec not in LOSSES:
                listed = ", ".join(repr(k) for k in LOSSES)
                raise ValueError(f"compile: unknown `loss` {spec!r}. Expected one of: {listed}, "
                                 "or a torch loss object / callable (pred, y) -> scalar.")
            self.name = spec
            self._elementwise = LOSSES[spec]
            canonical = {"mean_squared_error": "mse", "mean_absolute_error": "mae", "rmse": "mse"}.get(spec, spec)
            self._mean = _MEANS.get(canonical)
            self._fn = None
            self._sqrt = spec == "rmse"
        elif callable(spec):
            self.name = _TORCH_LOSS_NAMES.get(type(spec)) if type(spec) in _TORCH_LOSS_NAMES and \
                getattr(spec, "reduction", "mean") == "mean" else None
            self._elementwise = None
            self._fn = spec
            self._sqrt = False
        else:
            raise TypeError(f"compile: `loss` must be a name such as 'mse' or a callable (pred, y) -> scalar, "
                            f"got {spec!r} ({type(spec).__name__}).")

    def __call__(self, pred, y, mask=None):
        if self._fn is not None:
            return self._fn(pred, y)
        if mask is None and self._mean is not None:
            value = self._mean(pred, y)
        else:
            value = masked_mean(self._elementwise(pred, y), mask)
        return value.clamp_min(1e-12).sqrt() if self._sqrt else value


def _accuracy_kind(loss_name: str | None, pred: torch.Tensor) -> str:
    if loss_name == "sparse_categorical_crossentropy":
        return "sparse"
    if loss_name == "categorical_crossentropy":
        return "categorical"
    if loss_name == "binary_crossentropy" or pred.dim() == 1 or pred.shape[-1] == 1:
        return "binary"
    return "categorical"


def _correct(kind: str, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per sample (per step): 1.0 where the prediction is right."""
    if kind == "sparse":
        y = y.long()
        if y.shape == pred.shape[:-1] + (1,):
            y = y.squeeze(-1)
        return (pred.argmax(-1) == y).to(pred.dtype)
    y = _align("accuracy", pred, y)
    if kind == "categorical":
        return (pred.argmax(-1) == y.argmax(-1)).to(pred.dtype)
    hits = ((pred > 0.5) == (y > 0.5)).to(pred.dtype)
    return hits.mean(_last_axis(pred))


class Metric:
    """A running metric over an epoch: ``update(pred, y, mask)`` then ``result()``."""

    def __init__(self, spec, loss_name: str | None = None):
        self.spec = spec
        self.loss_name = loss_name
        if isinstance(spec, str):
            if spec not in METRIC_NAMES:
                listed = ", ".join(repr(k) for k in METRIC_NAMES)
                raise ValueError(f"compile: unknown metric {spec!r} in `metrics`. Expected one of: {listed}, "
                                 "or a callable (pred, y) -> scalar.")
            self.name = {"acc": "accuracy", "mean_squared_error": "mse", "mean_absolute_error": "mae"}.get(spec, spec)
        elif callable(spec):
            self.name = getattr(spec, "__name__", type(spec).__name__)
        else:
            raise TypeError(f"compile: each entry of `metrics` must be a name such as 'accuracy' or a callable, "
                            f"got {spec!r} ({type(spec).__name__}).")
        self.reset()

    def reset(self) -> None:
        self._total = 0.0
        self._count = 0.0

    def _values(self, pred, y):
        name = self.name
        if name == "accuracy":
            return _correct(_accuracy_kind(self.loss_name, pred), pred, y)
        if name == "binary_accuracy":
            return _correct("binary", pred, y)
        if name == "categorical_accuracy":
            return _correct("categorical", pred, y)
        if name == "sparse_categorical_accuracy":
            return _correct("sparse", pred, y)
        if name in ("mse", "rmse"):
            return mse(pred, y)
        return LOSSES[name](pred, y)

    @torch.no_grad()
    def update(self, pred, y, mask=None) -> None:
        if not isinstance(self.spec, str):
            n = pred.shape[0]
            self._total += float(self.spec(pred, y)) * n
            self._count += n
            return
        values = self._values(pred, y)
        if mask is not None and mask.shape == values.shape:
            weights = mask.to(values.dtype)
            self._total += float((values * weights).sum())
            self._count += float(weights.sum())
        else:
            self._total += float(values.sum())
            self._count += values.numel()

    def result(self) -> float:
        if self._count == 0:
            return float("nan")
        mean = self._total / self._count
        return mean ** 0.5 if self.name == "rmse" else mean


METRIC_NAMES = ["accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
                "mse", "mean_squared_error", "rmse", "mae", "mean_absolute_error", "mape", "huber",
                "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy"]


# Named optimizers with Keras's defaults (learning rate, epsilon, RMSprop's rho), so that a
# tutorial's `optimizer="adam"` trains the same way here.
OPTIMIZERS: dict[str, tuple[type, dict]] = {
    "adam": (torch.optim.Adam, {"lr": 1e-3, "eps": 1e-7}),
    "adamw": (torch.optim.AdamW, {"lr": 1e-3, "eps": 1e-7, "weight_decay": 4e-3}),
    "sgd": (torch.optim.SGD, {"lr": 1e-2}),
    "rmsprop": (torch.optim.RMSprop, {"lr": 1e-3, "alpha": 0.9, "eps": 1e-7}),
    "adagrad": (torch.optim.Adagrad, {"lr": 1e-3, "initial_accumulator_value": 0.1, "eps": 1e-7}),
    "adadelta": (torch.optim.Adadelta, {"lr": 1e-3, "rho": 0.95, "eps": 1e-7}),
    "adamax": (torch.optim.Adamax, {"lr": 1e-3, "eps": 1e-7}),
    "nadam": (torch.optim.NAdam, {"lr": 1e-3, "eps": 1e-7}),
}
_TORCH_OPTIMIZER_NAMES = {cls: name for name, (cls, _) in OPTIMIZERS.items()}


def check_optimizer(spec) -> None:
    """Raise if ``spec`` is not an optimizer name, a torch optimizer or a factory ``params -> optimizer``."""
    if isinstance(spec, str):
        if spec.lower() not in OPTIMIZERS:
            listed = ", ".join(repr(k) for k in OPTIMIZERS)
            raise ValueError(f"compile: unknown `optimizer` {spec!r}. Expected one of: {listed}, "
                             "a torch.optim.Optimizer, or a callable params -> optimizer.")
    elif not (isinstance(spec, torch.optim.Optimizer) or callable(spec)):
        raise TypeError(f"compile: `optimizer` must be a name such as 'adam', a torch.optim.Optimizer, "
                        f"or a callable params -> optimizer; got {spec!r} ({type(spec).__name__}).")


def make_optimizer(spec, params, learning_rate: float | None) -> torch.optim.Optimizer:
    """The optimizer for ``params`` described by ``spec`` (see ``check_optimizer``)."""
    if isinstance(spec, str):
        cls, defaults = OPTIMIZERS[spec.lower()]
        kwargs = dict(defaults)
        if learning_rate is not None:
            kwargs["lr"] = learning_rate
        return cls(params, **kwargs)
    if isinstance(spec, torch.optim.Optimizer):
        if learning_rate is not None:
            for group in spec.param_groups:
                group["lr"] = learning_rate
        return spec
    optimizer = spec(params) if learning_rate is None else spec(params, lr=learning_rate)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"compile: the `optimizer` factory returned {type(optimizer).__name__}, "
                        "expected a torch.optim.Optimizer.")
    return optimizer


def optimizer_name(spec) -> str | None:
    """The registered name that rebuilds ``spec``, or None when it has none."""
    if isinstance(spec, str):
        return spec.lower()
    if isinstance(spec, torch.optim.Optimizer):
        return _TORCH_OPTIMIZER_NAMES.get(type(spec))
    return _TORCH_OPTIMIZER_NAMES.get(spec) if isinstance(spec, type) else None
