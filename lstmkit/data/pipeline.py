"""Compose difference -> scale -> window, fitted on training data, and invert forecasts in reverse.

A forecaster fits a :class:`Pipeline` on the training series, windows any series with it, trains
on the windows, and maps the model's predictions back to the original units with
:meth:`Pipeline.inverse_transform_y`, which undoes the steps in reverse order using, for each
window, the observations before its first target as the differencing history.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lstmkit._validation import check_int
from lstmkit.data._checks import check_array
from lstmkit.data.differencing import Differencer
from lstmkit.data.windows import Supervised, resolve_columns, to_supervised
from lstmkit.errors import NotFittedError

__all__ = ["Pipeline"]


class _Context:
    """What ``inverse_transform_y`` needs about the series a set of windows was cut from."""

    def __init__(self, pipeline, stages, offsets):
        self.pipeline = pipeline
        self.stages = stages  # stage k: the series after k steps, (T - offsets[k], F)
        self.offsets = offsets  # rows dropped before stage k (by differencing)


class Pipeline:
    """Apply transform steps in order, then cut supervised windows; invert predictions in reverse.

    Args:
        steps: transformers applied in order to the whole series, each fitted on the output of
            the one before: :class:`Differencer` (drops ``lag`` rows), :class:`MinMaxScaler`,
            :class:`StandardScaler`, or any object with scikit-learn's ``fit`` / ``transform`` /
            ``inverse_transform`` that keeps rows and acts on each column separately.
        lookback, horizon, stride, target: the windowing, as in :func:`to_supervised`;
            ``target`` names columns of the original data.

    Shape:
        - data: ``(T,)`` or ``(T, F)``, time first
        - transform: ``X (N, lookback, F)``, ``y (N, horizon[, F_target])`` with
          ``N = (T - lags - lookback - horizon) // stride + 1``
        - inverse_transform_y: predictions shaped like ``y`` -> original units, same shape

    >>> from lstmkit.data import Differencer, MinMaxScaler
    >>> series = np.array([10.0, 12, 15, 19, 24, 30, 37, 45])
    >>> pipe = Pipeline([Differencer(1), MinMaxScaler((-1, 1))], lookback=3)
    >>> windows = pipe.fit_transform(series[:6])  # fit on the training part only
    >>> windows.X.shape, windows.y.shape
    ((2, 3, 1), (2, 1))
    >>> pipe.inverse_transform_y(windows.y, windows).ravel().tolist()  # back to levels
    [24.0, 30.0]
    """

    def __init__(self, steps, lookback: int, horizon: int = 1, stride: int = 1, target=None):
        owner = "Pipeline"
        steps = list(steps)
        for k, step in enumerate(steps):
            missing = [m for m in ("fit", "transform", "inverse_transform") if not callable(getattr(step, m, None))]
            if missing:
                raise TypeError(f"{owner}: `steps[{k}]` ({type(step).__name__}) has no "
                                f"{', '.join(missing)}; each step needs fit, transform and inverse_transform.")
        self.steps = steps
        self.lookback = check_int(owner, "lookback", lookback, minimum=1)
        self.horizon = check_int(owner, "horizon", horizon, minimum=1)
        self.stride = check_int(owner, "stride", stride, minimum=1)
        self.target = target

    @property
    def total_lag(self) -> int:
        """Rows the differencing steps drop from the front of a series."""
        return sum(int(step.lag) for step in self.steps if isinstance(step, Differencer))

    # --- fitting and transforming ------------------------------------------------------------
    def _read(self, method: str, data):
        array, info = check_array(f"Pipeline.{method}", "data", data, ndims=(1, 2))
        values = array if array.ndim == 2 else array[:, None]  # (T, F)
        needed = self.total_lag + self.lookback + self.horizon
        if values.shape[0] < needed:
            raise ValueError(
                f"Pipeline.{method}: `data` has {values.shape[0]} time steps, fewer than the "
                f"{needed} needed: {self.total_lag} dropped by differencing + `lookback` "
                f"{self.lookback} + `horizon` {self.horizon}.")
        return values, info, array.ndim

    def _stages(self, values: np.ndarray, fit: bool):
        stages, offsets = [values], [0]
        for k, step in enumerate(self.steps):
            if fit:
                step.fit(stages[-1])
            out = np.asarray(step.transform(stages[-1]), dtype=float)
            if out.ndim == 1:
                out = out[:, None]
            drop = int(step.lag) if isinstance(step, Differencer) else 0
            if out.shape != (stages[-1].shape[0] - drop, values.shape[1]):
                raise ValueError(f"Pipeline: `steps[{k}]` ({type(step).__name__}) turned shape "
                                 f"{stages[-1].shape} into {out.shape}; a step must keep the columns "
                                 f"and (unless it is a Differencer) the rows.")
            stages.append(out)
            offsets.append(offsets[-1] + drop)
        return stages, offsets

    def fit(self, data, y=None):
        """Fit every step, in order, on the training series ``data`` only; returns ``self``."""
        values, info, _ = self._read("fit", data)
        columns = info.columns if info.kind == "frame" else None
        resolve_columns("Pipeline", "target", self.target, columns, values.shape[1])
        self._stages(values, fit=True)
        self.n_features_in_ = values.shape[1]
        return self

    def transform(self, data) -> Supervised:
        """Transform ``data`` with the fitted steps and cut windows; returns :class:`Supervised`.

        ``data`` may be any stretch of the series (e.g. the test part with ``lookback`` + lags
        rows of context before it). ``X`` and ``y`` are in the transformed space; ``positions``,
        ``index`` and ``source_index`` refer to rows of ``data`` itself.
        """
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError("Pipeline.transform: the pipeline is not fitted yet; call "
                                 "fit(train) on the training series first.")
        values, info, ndim = self._read("transform", data)
        if values.shape[1] != self.n_features_in_:
            raise ValueError(f"Pipeline.transform: `data` has {values.shape[1]} feature(s), but the "
                             f"pipeline was fitted on {self.n_features_in_}.")
        stages, offsets = self._stages(values, fit=False)
        last, lag = stages[-1], offsets[-1]
        if info.kind == "ndarray":
            framed = last if ndim == 2 else last[:, 0]
        else:
            framed = info.wrap(last if info.kind == "frame" else last[:, 0], index=info.index[lag:])
        windows = to_supervised(framed, self.lookback, self.horizon, self.stride, self.target)
        # Report positions and labels as rows of `data`, not of the shorter differenced series.
        windows.positions = windows.positions + lag
        windows.source_index = info.index if info.kind != "ndarray" else pd.RangeIndex(values.shape[0])
        windows.index = windows.source_index[windows.positions[:, 0]]
        windows.context = _Context(self, stages, offsets)
        return windows

    def fit_transform(self, data, y=None) -> Supervised:
        return self.fit(data).transform(data)

    # --- inverting -----------------------------------------------------------------------------
    def inverse_transform_y(self, y, windows: Supervised) -> np.ndarray:
        """Map predictions for ``windows`` (from :meth:`transform`) back to the original units.

        The steps are undone in reverse order. Undoing a difference at target step ``h`` adds the
        value ``lag`` steps earlier: an observation from the series when that lies before the
        window's first target, otherwise the value just rebuilt for step ``h - lag``, so a
        multi-step forecast never uses observations it is forecasting.

        Shape:
            - y: ``windows.y.shape``, i.e. ``(N, horizon)`` or ``(N, horizon, F_target)``
            - output: same as y, float64
        """
        owner = "Pipeline.inverse_transform_y"
        context = getattr(windows, "context", None)
        if not isinstance(context, _Context) or context.pipeline is not self:
            raise ValueError(f"{owner}: `windows` must be what this pipeline's transform() returned, "
                             f"so the differencing history is known.")
        values = np.asarray(y, dtype=float)
        if values.shape != windows.y.shape:
            raise ValueError(f"{owner}: `y` has shape {values.shape} but the windows' targets have "
                             f"{windows.y.shape}; pass predictions shaped like windows.y.")
        cols = list(windows.target)
        n, horizon = values.shape[:2]
        v = values.reshape(n, horizon, len(cols))  # (N, H, F_target)
        first = windows.positions[:, 0]  # first target row, in rows of `data`
        for k in range(len(self.steps), 0, -1):
            step = self.steps[k - 1]
            if isinstance(step, Differencer):
                before = context.stages[k - 1][:, cols]  # the series this step differenced
                rebuilt = np.empty_like(v)
                for h in range(horizon):
                    if h < step.lag:  # an observation before the forecast origin
                        base = before[first + h - step.lag - context.offsets[k - 1]]
                    else:
                        base = rebuilt[:, h - step.lag]
                    rebuilt[:, h] = v[:, h] + base
                v = rebuilt
            else:
                # Column-wise steps: the other columns' placeholder zeros cannot affect ours.
                full = np.zeros((n * horizon, self.n_features_in_))
                full[:, cols] = v.reshape(-1, len(cols))
                v = np.asarray(step.inverse_transform(full), dtype=float)[:, cols].reshape(n, horizon, len(cols))
        return v.reshape(values.shape)

    def __repr__(self):
        steps = ", ".join(repr(s) for s in self.steps)
        return (f"Pipeline([{steps}], lookback={self.lookback}, horizon={self.horizon}, "
                f"stride={self.stride}, target={self.target!r})")
