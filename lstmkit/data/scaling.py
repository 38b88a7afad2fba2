"""Per-feature min-max scaling and standardisation, fitted on the training split only.

Both follow scikit-learn's ``fit`` / ``transform`` / ``inverse_transform`` protocol (and drop into
a ``sklearn.pipeline.Pipeline``) without depending on scikit-learn. Features are the last axis,
so a ``(T, F)`` series and a ``(B, T, F)`` batch of windows are scaled the same way; a 1-D input
is a single feature. NaN marks a missing value: it is ignored when fitting and passed through by
``transform`` and ``inverse_transform``, so missing steps can still be masked afterwards.
"""

from __future__ import annotations

import warnings

import numpy as np

from lstmkit._validation import check_float
from lstmkit.data._base import Transformer
from lstmkit.data._checks import check_array, check_bool

__all__ = ["MinMaxScaler", "StandardScaler"]


def _negligible(spread, low, high):
    """A spread within rounding noise of the values' magnitude counts as a constant feature, so
    that dividing by it cannot blow up (scikit-learn guards the same way)."""
    magnitude = np.maximum(1.0, np.maximum(np.abs(low), np.abs(high)))
    return spread < 10 * np.finfo(np.float64).eps * magnitude


class _Scaler(Transformer):
    """Shared plumbing: read the input, fit per-feature statistics, apply ``x * scale + shift``."""

    def _read(self, method: str, X):
        owner = f"{type(self).__name__}.{method}"
        array, info = check_array(owner, "X", X, ndims=(1, 2, 3), allow_nan=True)
        features = 1 if array.ndim == 1 else array.shape[-1]
        return array, info, features

    def _rows(self, array: np.ndarray) -> np.ndarray:
        return array.reshape(-1, 1) if array.ndim == 1 else array.reshape(-1, array.shape[-1])  # (N, F)

    def _check_features(self, method: str, features: int) -> None:
        self._check_fitted(method)
        if features != self.n_features_in_:
            raise ValueError(f"{type(self).__name__}.{method}: `X` has {features} feature(s) (its last "
                             f"axis), but the scaler was fitted on {self.n_features_in_}; pass data "
                             f"with the same columns as the training data.")

    def fit(self, X, y=None):
        """Learn per-feature statistics from ``X`` (the training split only); returns ``self``."""
        self._validate_params()
        array, info, features = self._read("fit", X)
        rows = self._rows(array)
        empty = np.isnan(rows).all(axis=0)
        if empty.any():
            raise ValueError(f"{type(self).__name__}.fit: feature {int(np.flatnonzero(empty)[0])} of `X` "
                             f"is all NaN; there is nothing to fit it on.")
        self._fit_rows(rows)
        self.n_features_in_ = features
        self.n_samples_seen_ = int(rows.shape[0])
        if info.kind == "frame":
            self.feature_names_in_ = np.asarray(info.columns, dtype=object)
        return self

    def transform(self, X):
        """Scale ``X`` with the fitted statistics; returns the same type and shape."""
        array, info, features = self._read("transform", X)
        self._check_features("transform", features)
        return info.wrap(self._forward(array))

    def inverse_transform(self, X):
        """Undo :meth:`transform`; returns the same type and shape."""
        array, info, features = self._read("inverse_transform", X)
        self._check_features("inverse_transform", features)
        return info.wrap(self._backward(array))

    def get_feature_names_out(self, input_features=None):
        self._check_fitted("get_feature_names_out")
        if input_features is not None:
            return np.asarray(input_features, dtype=object)
        if hasattr(self, "feature_names_in_"):
            return self.feature_names_in_.copy()
        return np.asarray([f"x{k}" for k in range(self.n_features_in_)], dtype=object)


class MinMaxScaler(_Scaler):
    """Scale each feature linearly so that its training minimum and maximum map to ``feature_range``.

    ``x' = x * scale_ + min_`` with ``scale_ = (hi - lo) / (data_max_ - data_min_)`` and
    ``min_ = lo - data_min_ * scale_``; a constant feature (range within rounding noise of its
    magnitude) gets ``scale_ = hi - lo`` applied to ``x - data_min_``, i.e. it maps to ``lo``. Test values outside the training range map outside
    ``feature_range`` (unless ``clip``): that is the honest result of fitting on training data only.

    Args:
        feature_range: ``(lo, hi)`` with ``lo < hi``; ``(-1, 1)`` suits a tanh output.
        clip: clip transformed values to ``feature_range``.

    Shape:
        - X: ``(T,)``, ``(T, F)`` or ``(B, T, F)``; statistics are per feature (last axis)
        - output: same as X

    >>> scaler = MinMaxScaler(feature_range=(-1, 1)).fit([[0.0], [5.0], [10.0]])
    >>> scaler.transform([[0.0], [2.5], [20.0]]).ravel().tolist()
    [-1.0, -0.5, 3.0]
    >>> scaler.inverse_transform([[3.0]]).ravel().tolist()
    [20.0]
    """

    def __init__(self, feature_range=(0.0, 1.0), clip: bool = False):
        self.feature_range = feature_range
        self.clip = clip

    def _validate_params(self):
        owner = "MinMaxScaler"
        try:
            lo, hi = self.feature_range
        except (TypeError, ValueError):
            raise TypeError(f"{owner}: `feature_range` must be a pair (lo, hi), got {self.feature_range!r}.") from None
        lo = check_float(owner, "feature_range[0]", lo)
        hi = check_float(owner, "feature_range[1]", hi)
        if not lo < hi:
            raise ValueError(f"{owner}: `feature_range` must have lo < hi, got {self.feature_range!r}; "
                             f"e.g. (0, 1) or (-1, 1).")
        check_bool(owner, "clip", self.clip)
        return lo, hi

    def _fit_rows(self, rows):
        lo, hi = self._validate_params()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.data_min_ = np.nanmin(rows, axis=0)
            self.data_max_ = np.nanmax(rows, axis=0)
        self.data_range_ = self.data_max_ - self.data_min_
        safe_range = np.where(_negligible(self.data_range_, self.data_min_, self.data_max_), 1, self.data_range_)
        self.scale_ = (hi - lo) / safe_range
        self.min_ = lo - self.data_min_ * self.scale_

    def _forward(self, array):
        out = array * self.scale_.astype(array.dtype) + self.min_.astype(array.dtype)
        if self.clip:
            lo, hi = self._validate_params()
            out = np.clip(out, lo, hi)
        return out

    def _backward(self, array):
        return (array - self.min_.astype(array.dtype)) / self.scale_.astype(array.dtype)


class StandardScaler(_Scaler):
    """Standardise each feature: subtract the training mean, divide by the training standard deviation.

    ``x' = (x - mean_) / scale_`` with ``scale_`` the population standard deviation (``ddof=0``,
    as scikit-learn); a constant feature (spread within rounding noise of its magnitude) keeps
    ``scale_ = 1``.

    Args:
        with_mean: subtract the mean.
        with_std: divide by the standard deviation.

    Shape:
        - X: ``(T,)``, ``(T, F)`` or ``(B, T, F)``; statistics are per feature (last axis)
        - output: same as X

    >>> scaler = StandardScaler().fit([1.0, 2.0, 3.0])
    >>> scaler.mean_.tolist(), scaler.transform([1.0, 3.0]).round(4).tolist()
    ([2.0], [-1.2247, 1.2247])
    """

    def __init__(self, with_mean: bool = True, with_std: bool = True):
        self.with_mean = with_mean
        self.with_std = with_std

    def _validate_params(self):
        check_bool("StandardScaler", "with_mean", self.with_mean)
        check_bool("StandardScaler", "with_std", self.with_std)

    def _fit_rows(self, rows):
        mean = np.nanmean(rows, axis=0)
        var = np.nanvar(rows, axis=0)
        self.mean_ = mean if self.with_mean else None
        self.var_ = var if self.with_std else None
        std = np.sqrt(var)
        self.scale_ = np.where(_negligible(std, mean, mean), 1.0, std) if self.with_std else None

    def _forward(self, array):
        out = array
        if self.with_mean:
            out = out - self.mean_.astype(array.dtype)
        if self.with_std:
            out = out / self.scale_.astype(array.dtype)
        return array.copy() if out is array else out

    def _backward(self, array):
        out = array
        if self.with_std:
            out = out * self.scale_.astype(array.dtype)
        if self.with_mean:
            out = out + self.mean_.astype(array.dtype)
        return array.copy() if out is array else out
