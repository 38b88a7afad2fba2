"""``Forecaster``: an LSTM and its preparation pipeline, series in and dated forecasts out.

The forecaster composes the library's own pieces: :class:`lstmkit.data.Pipeline` (optional
differencing, plain or seasonal, then scaling fitted on the training series, then windowing) and
a :class:`lstmkit.Sequential` network trained with ``fit``. Users pass a series in its own units
with its dates and get forecasts back in the same units, indexed by the dates that follow.

Multi-step strategies, for a forecast of ``H = horizon`` steps from a window of ``L = lookback``:

- ``"direct"``: ``LSTM -> Dense(H)``, one output per future step, all at once.
- ``"recursive"``: a one-step model ``LSTM -> Dense(F)``; each prediction is appended to the
  window and fed back for the next step. With covariates it forecasts every column, since the
  next window needs them all.
- ``"seq2seq"``: an encoder LSTM reads the window into a vector, ``RepeatVector(H)`` hands it to
  a decoder LSTM that returns one state per future step, and ``TimeDistributed(Dense)`` reads
  each out.

LSTM training results vary from seed to seed, so ``n_runs`` trains that many networks with seeds
``seed, seed + 1, ...``; ``predict`` returns their mean (the ensemble) and ``per_run=True`` shows
each one.

Shape:
    series ``(T,)`` or ``(T, F)`` with the target one of the F columns; windows
    ``X (N, L, F)``; forecast ``(H,)`` for the target.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile

import numpy as np
import pandas as pd

from lstmkit._validation import check_choice, check_float, check_int
from lstmkit.errors import NotFittedError
from lstmkit.models.callbacks import Callback, EarlyStopping

logger = logging.getLogger("lstmkit.forecast")

__all__ = ["Forecaster", "STRATEGIES", "infer_season", "load_forecaster"]

STRATEGIES = ("direct", "recursive", "seq2seq")
SCALINGS = ("standard", "minmax", None)
FORMAT = "lstmkit.forecaster"
CONFIG_FILE = "forecaster.json"
SERIES_FILE = "series.csv"

# Seasonal period by the index's frequency: a year of months or quarters, a week of days, a day
# of hours. Daily data can also have a yearly cycle; pass `season=365` for that.
_SEASONS = {"M": 12, "MS": 12, "ME": 12, "Q": 4, "QS": 4, "QE": 4, "W": 52, "D": 7, "B": 5, "H": 24, "h": 24}


def infer_season(index) -> int:
    """The seasonal period suggested by a time index's frequency; 1 when there is none.

    >>> infer_season(pd.period_range("2000-01", periods=3, freq="M"))
    12
    >>> infer_season(pd.RangeIndex(5))
    1
    """
    freq = getattr(index, "freqstr", None)
    if freq is None and isinstance(index, pd.DatetimeIndex) and len(index) > 2:
        freq = pd.infer_freq(index)
    if not freq:
        return 1
    base = freq.split("-")[0].lstrip("0123456789")
    return _SEASONS.get(base, 1)


def future_index(index: pd.Index, steps: int) -> pd.Index:
    """The ``steps`` labels that follow the last one of ``index`` (dates, periods or integers)."""
    if isinstance(index, pd.PeriodIndex):
        return pd.period_range(index[-1] + 1, periods=steps, freq=index.freq, name=index.name)
    if isinstance(index, pd.DatetimeIndex):
        freq = index.freq or (pd.infer_freq(index) if len(index) > 2 else None)
        if freq is None:  # irregular (e.g. leap days dropped): step by the most common gap
            gaps = pd.Series(np.diff(index.asi8)).mode()
            freq = pd.Timedelta(int(gaps.iloc[0]), unit="ns") if len(gaps) else pd.Timedelta(days=1)
        return pd.date_range(index[-1], periods=steps + 1, freq=freq, name=index.name)[1:]
    if len(index) and pd.api.types.is_integer_dtype(index.dtype):
        return pd.RangeIndex(int(index[-1]) + 1, int(index[-1]) + 1 + steps, name=index.name)
    return pd.RangeIndex(len(index), len(index) + steps, name=index.name)


def _lags(owner: str, differencing, season: int) -> list[int]:
    """``differencing`` as a list of lags: None/0 -> [], int -> [k], "seasonal" -> [season], list."""
    if differencing is None or (isinstance(differencing, (int, np.integer)) and not isinstance(differencing, bool)
                                and differencing == 0):
        return []
    if differencing == "seasonal":
        return [season]
    items = [differencing] if not isinstance(differencing, (list, tuple)) else list(differencing)
    lags = []
    for item in items:
        if item == "seasonal":
            lags.append(season)
        else:
            try:
                lags.append(check_int(owner, "differencing", item, minimum=1))
            except TypeError:
                raise TypeError(f"{owner}: `differencing` must be None, a lag (int >= 1), 'seasonal', or a list of "
                                f"them such as [12, 1], got {differencing!r}.") from None
    return lags


class _EpochProgress(Callback):
    """Moves a progress bar one step per epoch; an early stop jumps it past the epochs left."""

    def __init__(self, bar, epochs: int):
        super().__init__()
        self.bar, self.epochs, self.done = bar, epochs, 0

    def on_epoch_end(self, epoch, logs=None):
        self.done += 1
        self.bar.update(1)

    def on_train_end(self, logs=None):
        if self.epochs > self.done:
            self.bar.update(self.epochs - self.done)


class Forecaster:
    """Forecast a series ``horizon`` steps ahead with an LSTM, from its last ``lookback`` steps.

    Args:
        lookback: input window length L.
        horizon: steps to forecast, H.
        strategy: ``"direct"``, ``"recursive"`` or ``"seq2seq"`` (see the module docstring).
        target: the column to forecast when the series is a DataFrame (the other columns are past
            covariates, used as inputs); defaults to the only or the first column.
        units, layers, variant, bidirectional, dropout: the network: ``layers`` stacked LSTMs of
            ``units`` each (any ``lstmkit`` variant), the encoder optionally bidirectional,
            ``dropout`` between layers.
        differencing: None, a lag, ``"seasonal"`` (lag = ``season``), or a list such as
            ``["seasonal", 1]``; applied to every column before scaling, undone on the forecasts.
        season: the seasonal period; None infers it from the index (12 for monthly data).
        scaling: ``"standard"``, ``"minmax"`` (to [-1, 1]) or None; fitted on the training series.
        epochs, batch_size, learning_rate: training (Adam, mean squared error, clipnorm 1).
            ``batch_size=None`` picks 16, or more for long series so that an epoch is at most
            about 32 updates (``N // 32`` windows a batch), which keeps long series fast.
        validation_split: the last fraction of the training windows held out for early stopping
            (patience ``patience`` epochs, best weights kept); 0 trains for all ``epochs``.
        n_runs: networks trained with different seeds; the forecast is their mean.
        seed: the first seed.

    >>> import numpy as np, pandas as pd
    >>> t = pd.period_range("2000-01", periods=60, freq="M")
    >>> series = pd.Series(np.arange(60.0) * 2 + 100, index=t)
    >>> model = Forecaster(lookback=6, horizon=3, differencing=1, epochs=30).fit(series)
    >>> forecast = model.predict()
    >>> [str(p) for p in forecast.index]
    ['2005-01', '2005-02', '2005-03']
    >>> bool(np.allclose(forecast.to_numpy(), [220, 222, 224], atol=1.0))
    True
    """

    def __init__(self, lookback: int, horizon: int = 1, strategy: str = "direct", *, target=None,
                 units: int = 32, layers: int = 1, variant: str = "vanilla", bidirectional: bool = False,
                 dropout: float = 0.0, differencing=None, season: int | None = None, scaling: str | None = "standard",
                 epochs: int = 200, batch_size: int | None = None, learning_rate: float = 0.01,
                 validation_split: float = 0.1, patience: int = 30, n_runs: int = 1, seed: int = 0):
        owner = "Forecaster"
        self.lookback = check_int(owner, "lookback", lookback, minimum=1)
        self.horizon = check_int(owner, "horizon", horizon, minimum=1)
        self.strategy = check_choice(owner, "strategy", strategy, STRATEGIES)
        self.target = target
        self.units = check_int(owner, "units", units, minimum=1)
        self.layers = check_int(owner, "layers", layers, minimum=1)
        from lstmkit.cells.variants import get_variant

        get_variant(variant)  # raises naming the known variants
        self.variant = variant
        if not isinstance(bidirectional, bool):
            raise TypeError(f"{owner}: `bidirectional` must be True or False, got {bidirectional!r}.")
        self.bidirectional = bidirectional
        self.dropout = check_float(owner, "dropout", dropout, low=0.0, high=1.0, high_inclusive=False)
        self.season = check_int(owner, "season", season, minimum=1, allow_none=True)
        _lags(owner, differencing, self.season or 1)  # validate now, resolve at fit
        self.differencing = differencing
        self.scaling = check_choice(owner, "scaling", scaling, SCALINGS)
        self.epochs = check_int(owner, "epochs", epochs, minimum=1)
        self.batch_size = check_int(owner, "batch_size", batch_size, minimum=1, allow_none=True)
        self.learning_rate = check_float(owner, "learning_rate", learning_rate, low=0.0)
        self.validation_split = check_float(owner, "validation_split", validation_split, low=0.0, high=1.0,
                                            high_inclusive=False)
        self.patience = check_int(owner, "patience", patience, minimum=1)
        self.n_runs = check_int(owner, "n_runs", n_runs, minimum=1)
        self.seed = check_int(owner, "seed", seed, minimum=0)

    # ------------------------------------------------------------------ configuration
    def get_config(self) -> dict:
        """The constructor's arguments, JSON-safe: ``Forecaster(**f.get_config())`` is an unfitted copy."""
        keys = ("lookback", "horizon", "strategy", "target", "units", "layers", "variant", "bidirectional",
                "dropout", "differencing", "season", "scaling", "epochs", "batch_size", "learning_rate",
                "validation_split", "patience", "n_runs", "seed")
        config = {k: getattr(self, k) for k in keys}
        if isinstance(config["differencing"], tuple):
            config["differencing"] = list(config["differencing"])
        return config

    def clone(self, **changes) -> "Forecaster":
        """An unfitted forecaster with the same settings, except ``changes``."""
        return Forecaster(**{**self.get_config(), **changes})

    def __repr__(self):
        shown = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"Forecaster({shown})"

    # ------------------------------------------------------------------ data
    def _read(self, method: str, series) -> pd.DataFrame:
        """The series as a float DataFrame (T, F) with the target column resolved."""
        owner = f"Forecaster.{method}"
        if isinstance(series, pd.Series):
            frame = series.to_frame(name=series.name if series.name is not None else "y")
        elif isinstance(series, pd.DataFrame):
            frame = series
        else:
            try:
                array = np.asarray(series, dtype=float)
            except (TypeError, ValueError):
                raise TypeError(f"{owner}: `series` must be a pandas Series or DataFrame or an array of numbers, "
                                f"got {type(series).__name__}.") from None
            if array.ndim not in (1, 2):
                raise ValueError(f"{owner}: `series` must be 1-D (T,) or 2-D (T, F), got shape {array.shape}.")
            frame = pd.DataFrame(array if array.ndim == 2 else array[:, None])
            if array.ndim == 1:
                frame.columns = ["y"]
        bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c].dtype)]
        if bad:
            raise TypeError(f"{owner}: column {bad[0]!r} of `series` is not numeric (dtype {frame[bad[0]].dtype}); "
                            f"convert it with pd.to_numeric or drop it.")
        frame = frame.astype(float)
        values = frame.to_numpy()
        if not np.isfinite(values).all():
            row, col = np.argwhere(~np.isfinite(values))[0]
            raise ValueError(f"{owner}: `series` has a missing or infinite value in column {frame.columns[col]!r} "
                             f"at {frame.index[row]!r}; fill or drop it first.")
        return frame

    def _target_column(self, frame: pd.DataFrame):
        if self.target is None:
            return frame.columns[0]
        if self.target in frame.columns:
            return self.target
        raise ValueError(f"Forecaster: `target` {self.target!r} is not a column of the series; the columns are "
                         f"{', '.join(repr(c) for c in frame.columns)}.")

    def _check_fitted(self, method: str) -> None:
        if not hasattr(self, "models_"):
            raise NotFittedError(f"Forecaster.{method}: the forecaster is not fitted yet; call fit(series) first.")

    # ------------------------------------------------------------------ building
    def _make_pipeline(self):
        from lstmkit.data import Differencer, MinMaxScaler, Pipeline, StandardScaler

        steps = [Differencer(lag) for lag in self.lags_]
        if self.scaling == "standard":
            steps.append(StandardScaler())
        elif self.scaling == "minmax":
            steps.append(MinMaxScaler((-1.0, 1.0)))
        steps_out = 1 if self.strategy == "recursive" else self.horizon
        # The recursive model predicts every column (the next window needs them all); the others
        # predict the target alone.
        target = None if self.strategy == "recursive" and self.n_features_ > 1 else self.target_position_
        return Pipeline(steps, lookback=self.lookback, horizon=steps_out, target=target)

    def _make_network(self, n_out: int):
        from lstmkit.layers import LSTM, Bidirectional, Dense, Dropout, Flatten, RepeatVector, TimeDistributed
        from lstmkit.models import Sequential

        def recurrent(return_sequences: bool, encoder: bool):
            layer = LSTM(self.units, variant=self.variant, return_sequences=return_sequences)
            return Bidirectional(layer) if self.bidirectional and encoder else layer

        stack = []
        for k in range(self.layers):
            stack.append(recurrent(k < self.layers - 1, encoder=True))
            if self.dropout:
                stack.append(Dropout(self.dropout))
        if self.strategy == "seq2seq":
            stack.append(RepeatVector(self.horizon))
            for _ in range(self.layers):
                stack.append(recurrent(True, encoder=False))
            stack += [TimeDistributed(Dense(n_out)), Flatten()]  # (B, H, n_out) -> (B, H * n_out)
        else:
            steps_out = 1 if self.strategy == "recursive" else self.horizon
            stack.append(Dense(steps_out * n_out))
        return Sequential(stack, input_shape=(self.lookback, self.n_features_))

    # ------------------------------------------------------------------ fit
    def fit(self, series, *, progress=None) -> "Forecaster":
        """Fit the pipeline and ``n_runs`` networks on ``series`` (the training part only).

        Args:
            series: ``Series`` (univariate), ``DataFrame`` (the ``target`` column plus
                covariates) or array, oldest first, with no missing values.
            progress: a ``tqdm`` bar to advance by one per epoch (the ``lstmkit forecast``
                command passes one); None shows nothing.

        Returns:
            ``self``, with ``models_`` (one per run) and ``histories_`` (each run's losses).
        """
        from lstmkit.models import set_seed

        frame = self._read("fit", series)
        self.columns_ = list(frame.columns)
        self.target_ = self._target_column(frame)
        self.target_position_ = self.columns_.index(self.target_)
        self.n_features_ = len(self.columns_)
        self.season_ = self.season or infer_season(frame.index)
        self.lags_ = _lags("Forecaster", self.differencing, self.season_)
        values = frame.to_numpy()  # (T, F)
        pipeline = self._make_pipeline()
        needed = sum(self.lags_) + self.lookback + pipeline.horizon
        if len(values) < needed:
            raise ValueError(f"Forecaster.fit: the series has {len(values)} time steps; at least {needed} are needed "
                             f"({sum(self.lags_)} dropped by differencing + `lookback` {self.lookback} + "
                             f"{pipeline.horizon} target step(s)). Use a shorter lookback or a longer series.")
        windows = pipeline.fit_transform(values)
        X = windows.X.astype(np.float32)  # (N, L, F)
        y = windows.y.reshape(len(X), -1).astype(np.float32)  # (N, H * n_out)
        n_out = y.shape[1] // pipeline.horizon
        split = self.validation_split if len(X) * self.validation_split >= 1 and len(X) >= 10 else 0.0
        models, histories = [], []
        for run in range(self.n_runs):
            set_seed(self.seed + run)
            model = self._make_network(n_out)
            model.compile(optimizer="adam", loss="mse", learning_rate=self.learning_rate, clipnorm=1.0)
            callbacks = []
            if split:
                callbacks.append(EarlyStopping(monitor="val_loss", patience=self.patience, restore_best_weights=True))
            if progress is not None:
                callbacks.append(_EpochProgress(progress, self.epochs))
            batch_size = self.batch_size or max(16, len(X) // 32)
            history = model.fit(X, y, epochs=self.epochs, batch_size=batch_size, validation_split=split,
                                callbacks=callbacks, verbose=0)
            losses = history.history
            logger.debug("run %d/%d: %d epochs, loss %.4g%s", run + 1, self.n_runs, len(losses["loss"]),
                         losses["loss"][-1], f", best val_loss {min(losses['val_loss']):.4g}" if split else "")
            models.append(model)
            histories.append({k: [float(v) for v in vals] for k, vals in losses.items()})
        self.pipeline_ = pipeline
        self.series_ = frame
        self.models_ = models
        self.histories_ = histories
        return self

    # ------------------------------------------------------------------ predict
    def _forecast(self, values: np.ndarray, steps: int) -> np.ndarray:
        """Per-run forecasts of the target, ``(n_runs, steps)``, from history ``values (T, F)``."""
        context = sum(self.lags_) + self.lookback
        if len(values) < context:
            raise ValueError(f"Forecaster.predict: the series has {len(values)} time steps; forecasting needs the "
                             f"last {context} ({sum(self.lags_)} for differencing + `lookback` {self.lookback}).")
        out = np.empty((len(self.models_), steps))
        if self.strategy != "recursive":
            window = self._last_window(values[-context:])
            for r, model in enumerate(self.models_):
                pred = model.predict(window.X.astype(np.float32)).reshape(window.y.shape)
                out[r] = self.pipeline_.inverse_transform_y(pred, window).reshape(-1)[:steps]
            return out
        for r, model in enumerate(self.models_):
            history = values[-context:].copy()
            for h in range(steps):
                window = self._last_window(history[-context:])
                pred = model.predict(window.X.astype(np.float32)).reshape(window.y.shape)
                level = self.pipeline_.inverse_transform_y(pred, window).reshape(-1)  # (1,) or (F,)
                row = level if level.size == self.n_features_ else np.full(self.n_features_, level[0])
                history = np.vstack([history, row[None]])
                out[r, h] = row[self.target_position_]
        return out

    def _last_window(self, tail: np.ndarray):
        """The window that ends at the last row of ``tail``: placeholder rows stand in for the future
        targets; neither the window's inputs nor the inverse transform ever read them."""
        steps_out = self.pipeline_.horizon
        padded = np.vstack([tail, np.repeat(tail[-1:], steps_out, axis=0)])
        return self.pipeline_.transform(padded)

    def predict(self, horizon: int | None = None, *, series=None, per_run: bool = False):
        """Forecast the ``horizon`` steps after the end of the series, in its original units.

        Args:
            horizon: steps to forecast; defaults to the ``horizon`` the forecaster was built for
                (the most ``direct`` and ``seq2seq`` can give; ``recursive`` can go further).
            series: forecast from the end of this series instead of the training series (new
                observations, same columns); the networks are not refitted.
            per_run: return each run's forecast as a column (``run_1``, ...) instead of their mean.

        Returns:
            a ``Series`` named after the target (or a ``DataFrame`` with ``per_run``), indexed by
            the dates that follow the series.
        """
        self._check_fitted("predict")
        steps = self.horizon if horizon is None else check_int("Forecaster.predict", "horizon", horizon, minimum=1)
        if self.strategy != "recursive" and steps > self.horizon:
            raise ValueError(f"Forecaster.predict: `horizon`={steps} exceeds the {self.horizon} steps this "
                             f"{self.strategy} model was trained to output; build it with horizon={steps}, or use "
                             f"strategy='recursive'.")
        if series is None:
            frame = self.series_
        else:
            frame = self._read("predict", series)
            if list(frame.columns) != self.columns_:
                raise ValueError(f"Forecaster.predict: `series` has columns {list(frame.columns)}, but the "
                                 f"forecaster was fitted on {self.columns_}.")
        runs = self._forecast(frame.to_numpy(), steps)
        index = future_index(frame.index, steps)
        if per_run:
            return pd.DataFrame(runs.T, index=index, columns=[f"run_{k + 1}" for k in range(len(runs))])
        return pd.Series(runs.mean(axis=0), index=index, name=self.target_)

    # ------------------------------------------------------------------ save / load
    def save(self, path) -> str:
        """Write the fitted forecaster to the directory ``path``; reload it with :func:`load_forecaster`.

        The directory holds ``forecaster.json`` (settings, columns, index type), ``series.csv``
        (the training series: the pipeline is refitted from it on load, which reproduces its
        statistics exactly, and forecasts start from its end) and one saved model per run. It is
        built under a temporary name and renamed into place, so ``path`` never holds half of one.
        """
        self._check_fitted("save")
        path = os.path.abspath(os.fspath(path))
        parent = os.path.dirname(path)
        os.makedirs(parent, exist_ok=True)
        if os.path.exists(path) and not os.path.isfile(os.path.join(path, CONFIG_FILE)):
            raise ValueError(f"Forecaster.save: {path!r} exists and is not a saved forecaster; choose a new path.")
        tmp = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".", dir=parent)
        try:
            index = self.series_.index
            meta = {"format": FORMAT, "version": 1, "config": self.get_config(), "columns": [str(c) for c in self.columns_],
                    "target": str(self.target_), "index": _index_kind(index),
                    "integer_columns": all(isinstance(c, (int, np.integer)) for c in self.columns_)}
            from lstmkit._version import __version__

            meta["lstmkit_version"] = __version__
            with open(os.path.join(tmp, CONFIG_FILE), "w", encoding="utf-8") as fh:
                json.dump(meta, fh, indent=2)
            frame = self.series_.copy()
            frame.index = index.astype(str)
            frame.to_csv(os.path.join(tmp, SERIES_FILE), float_format="%.17g")
            for k, model in enumerate(self.models_):
                model.save(os.path.join(tmp, f"run_{k + 1}"))
            old = None
            if os.path.exists(path):
                old = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".old.", dir=parent)
                os.replace(path, os.path.join(old, "x"))
            os.replace(tmp, path)
            if old:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path


def _index_kind(index: pd.Index) -> dict:
    if isinstance(index, pd.PeriodIndex):
        return {"kind": "period", "freq": index.freqstr, "name": index.name}
    if isinstance(index, pd.DatetimeIndex):
        return {"kind": "datetime", "freq": index.freqstr, "name": index.name}
    return {"kind": "integer" if pd.api.types.is_integer_dtype(index.dtype) else "other", "name": index.name}


def _rebuild_index(labels: pd.Index, info: dict) -> pd.Index:
    if info["kind"] == "period":
        return pd.PeriodIndex(labels, freq=info["freq"], name=info["name"])
    if info["kind"] == "datetime":
        index = pd.DatetimeIndex(pd.to_datetime(labels), name=info["name"])
        return pd.DatetimeIndex(index, freq=info["freq"]) if info["freq"] else index
    if info["kind"] == "integer":
        return pd.Index(labels.astype(np.int64), name=info["name"])
    return pd.Index(labels, name=info["name"])


def load_forecaster(path) -> Forecaster:
    """Load a forecaster written by :meth:`Forecaster.save`; it predicts the same numbers.

    >>> import os, tempfile, numpy as np
    >>> f = Forecaster(lookback=4, horizon=2, epochs=5).fit(np.sin(np.arange(40) / 3))
    >>> path = f.save(os.path.join(tempfile.mkdtemp(), "sine"))
    >>> bool(np.array_equal(load_forecaster(path).predict(), f.predict()))
    True
    """
    from lstmkit.models import load_model

    path = os.fspath(path)
    file = os.path.join(path, CONFIG_FILE)
    if not os.path.isfile(file):
        raise ValueError(f"load_forecaster: {path!r} holds no {CONFIG_FILE}; pass a directory written by "
                         f"Forecaster.save().")
    with open(file, encoding="utf-8") as fh:
        meta = json.load(fh)
    if meta.get("format") != FORMAT:
        raise ValueError(f"load_forecaster: {file!r} is not a saved forecaster (format {meta.get('format')!r}).")
    frame = pd.read_csv(os.path.join(path, SERIES_FILE), index_col=0, dtype=str)
    frame.index = _rebuild_index(frame.index, meta["index"])
    frame = frame.astype(float)
    frame.columns = _restore_columns(frame.columns, meta)
    forecaster = Forecaster(**meta["config"])
    # Refit the pipeline exactly as fit() did, then put the saved networks in place of training.
    forecaster.columns_ = list(frame.columns)
    forecaster.target_ = forecaster._target_column(frame)
    forecaster.target_position_ = forecaster.columns_.index(forecaster.target_)
    forecaster.n_features_ = len(frame.columns)
    forecaster.season_ = forecaster.season or infer_season(frame.index)
    forecaster.lags_ = _lags("Forecaster", forecaster.differencing, forecaster.season_)
    forecaster.pipeline_ = forecaster._make_pipeline()
    forecaster.pipeline_.fit(frame.to_numpy())
    forecaster.series_ = frame
    forecaster.models_ = [load_model(os.path.join(path, f"run_{k + 1}")) for k in range(forecaster.n_runs)]
    forecaster.histories_ = []
    return forecaster


def _restore_columns(columns, meta):
    """Column names are saved as text; an array's integer column names get their type back."""
    return [int(c) for c in columns] if meta.get("integer_columns") else list(columns)
