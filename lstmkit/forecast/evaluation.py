"""Walk-forward validation: a forecaster next to the baselines on the same folds, and the table.

:func:`backtest` holds out the last ``test_size`` steps of a series and walks the forecast origin
through them ``horizon`` (or ``step``) steps at a time. At each origin the forecaster sees only the
data before it: with ``refit=False`` it is fitted once on everything before the first origin and
then only fed the newer observations; with ``refit=True`` it is refitted at every origin, on all
the past (``window="expanding"``) or on the last ``len(series) - test_size`` steps
(``window="sliding"``). The baselines forecast from the same history at every origin.

:func:`select` chooses between candidate settings by running the same backtest *inside* the
training part, so the held-out steps never influence the choice.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from lstmkit._validation import check_choice, check_int
from lstmkit.data import walk_forward
from lstmkit.forecast.baselines import BASELINES
from lstmkit.forecast.forecaster import Forecaster, infer_season
from lstmkit.forecast.metrics import METRICS, mase_scale

logger = logging.getLogger("lstmkit.forecast")

__all__ = ["BacktestResult", "backtest", "select"]

MODEL = "lstm"


class BacktestResult:
    """What :func:`backtest` measured.

    Attributes:
        predictions: one row per (fold, step): ``origin`` (label of the first forecast step),
            ``step`` (1..H), ``actual``, the ensemble ``lstm`` forecast, each ``run_k``, and each
            baseline.
        metrics: ``DataFrame`` indexed by model (``lstm``, then the baselines) with columns
            RMSE, MAE, MAPE, sMAPE, MASE over every held-out step (MAPE is NaN where a value is 0).
        runs: the same metrics for each run on its own (``n_runs`` rows), whose mean and spread
            say how much a single training run can be trusted.
        per_step: RMSE by forecast step (rows 1..H) for each model.
        season: the seasonal period used by the seasonal naive baseline and MASE.
    """

    def __init__(self, predictions: pd.DataFrame, scales: np.ndarray, baselines: list[str], n_runs: int,
                 season: int):
        self.predictions = predictions
        self.season = season
        actual = predictions["actual"].to_numpy()
        scale = scales[predictions["fold"].to_numpy()]  # each step's MASE denominator, from its fold

        def score(pred):
            row = {}
            for name, metric in METRICS.items():
                try:
                    row[name] = metric(actual, pred)
                except ValueError:  # MAPE with zeros among the actual values
                    row[name] = float("nan")
            row["MASE"] = float(np.mean(np.abs(actual - pred) / scale))
            return row

        models = [MODEL, *baselines]
        self.metrics = pd.DataFrame({m: score(predictions[m].to_numpy()) for m in models}).T
        self.runs = pd.DataFrame({f"run_{k + 1}": score(predictions[f"run_{k + 1}"].to_numpy())
                                  for k in range(n_runs)}).T
        squared = predictions[models].sub(predictions["actual"], axis=0) ** 2
        self.per_step = np.sqrt(squared.groupby(predictions["step"]).mean())

    def beats(self, baseline: str, metric: str = "RMSE") -> bool:
        """Whether the LSTM ensemble has a lower ``metric`` than ``baseline``."""
        return bool(self.metrics.loc[MODEL, metric] < self.metrics.loc[baseline, metric])

    def table(self) -> str:
        """The result table as text: the LSTM (ensemble, and runs as mean ± std) above each baseline."""
        cols = list(self.metrics.columns)
        rows = [["model", *cols]]
        rows.append([f"LSTM (mean of {len(self.runs)})" if len(self.runs) > 1 else "LSTM",
                     *[_fmt(v) for v in self.metrics.loc[MODEL]]])
        if len(self.runs) > 1:
            mean, std = self.runs.mean(), self.runs.std(ddof=1)
            rows.append(["  single runs", *[f"{_fmt(mean[c])} ± {_fmt(std[c])}" for c in cols]])
        names = {"naive": "persistence", "seasonal_naive": f"seasonal naive (m={self.season})"}
        for name in self.metrics.index[1:]:
            rows.append([names.get(name, name), *[_fmt(v) for v in self.metrics.loc[name]]])
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                 for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        best = self.metrics.drop(index=MODEL)["RMSE"].idxmin()
        ratio = self.metrics.loc[MODEL, "RMSE"] / self.metrics.loc[best, "RMSE"]
        verdict = (f"LSTM RMSE is {100 * (1 - ratio):.1f}% lower than the best baseline ({names.get(best, best)})"
                   if ratio < 1 else
                   f"LSTM RMSE is {100 * (ratio - 1):.1f}% HIGHER than the best baseline ({names.get(best, best)})")
        return "\n".join(lines + [verdict + "."])

    def __repr__(self):
        return f"BacktestResult(folds={self.predictions['fold'].nunique()}, models={list(self.metrics.index)})"


def _fmt(value: float) -> str:
    if value != value:
        return "n/a"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"


def backtest(forecaster: Forecaster, series, *, test_size: int | None = None, step: int | None = None,
             window: str = "expanding", refit: bool = False, season: int | None = None,
             baselines=("naive", "seasonal_naive", "drift", "mean"), progress=None) -> BacktestResult:
    """Walk-forward validation of ``forecaster`` and the baselines on the last ``test_size`` steps.

    Args:
        forecaster: the settings to evaluate (copied; the object passed in is not fitted).
        series: the whole series (Series or DataFrame with the forecaster's target).
        test_size: held-out steps at the end; defaults to one ``horizon``. Origins sit at
            ``len - test_size``, then every ``step`` (default ``horizon``) while a whole horizon fits.
        window: ``"expanding"`` (train on all the past) or ``"sliding"`` (on the last
            ``len - test_size`` steps); matters with ``refit`` and for the baselines' history.
        refit: refit at every origin, or fit once before the first and only feed new data.
        season: seasonal period for the seasonal naive baseline and MASE; defaults to the
            forecaster's, else inferred from the index.
        baselines: names from :data:`lstmkit.forecast.BASELINES`.
        progress: a ``tqdm`` bar advanced one step per training epoch.

    Returns:
        :class:`BacktestResult`.

    >>> import numpy as np, pandas as pd
    >>> t = pd.period_range("2000-01", periods=72, freq="M")
    >>> y = pd.Series(50 + 10 * np.sin(np.arange(72) * np.pi / 6), index=t)
    >>> result = backtest(Forecaster(lookback=12, horizon=6, epochs=2), y, test_size=12)
    >>> list(result.metrics.index)
    ['lstm', 'naive', 'seasonal_naive', 'drift', 'mean']
    >>> bool(result.metrics.loc["seasonal_naive", "RMSE"] < 1e-9)  # an exact cycle repeats itself
    True
    """
    owner = "backtest"
    if not isinstance(forecaster, Forecaster):
        raise TypeError(f"{owner}: `forecaster` must be a Forecaster, got {type(forecaster).__name__}.")
    frame = forecaster._read("backtest", series)
    target = forecaster._target_column(frame)
    horizon = forecaster.horizon
    test_size = check_int(owner, "test_size", horizon if test_size is None else test_size, minimum=1)
    step = check_int(owner, "step", horizon if step is None else step, minimum=1)
    check_choice(owner, "window", window, ("expanding", "sliding"))
    if not isinstance(refit, bool):
        raise TypeError(f"{owner}: `refit` must be True or False, got {refit!r}.")
    season = check_int(owner, "season", season or forecaster.season or infer_season(frame.index), minimum=1)
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise ValueError(f"{owner}: unknown baseline {unknown[0]!r}. Expected some of: "
                         f"{', '.join(repr(b) for b in BASELINES)}.")
    if test_size < horizon:
        raise ValueError(f"{owner}: `test_size`={test_size} is shorter than the forecaster's `horizon`={horizon}; "
                         f"hold out at least one whole horizon.")
    initial = len(frame) - test_size
    if initial < 1:
        raise ValueError(f"{owner}: `test_size`={test_size} leaves nothing to train on in a series of {len(frame)}.")
    folds = walk_forward(len(frame), initial=initial, test_size=horizon, step=step, window=window)
    values = frame[target].to_numpy()
    records, scales, fitted = [], [], None
    for k, fold in enumerate(folds):
        origin = int(fold.test[0])
        history = frame.iloc[fold.train]
        if fitted is None or refit:
            fitted = forecaster.clone().fit(history, progress=progress)
        # The model sees every observation before the origin (only the baselines and a refit are
        # limited to the sliding window).
        runs = fitted.predict(series=frame.iloc[:origin], per_run=True).to_numpy().T  # (n_runs, H)
        past = values[fold.train]
        scales.append(mase_scale(past, season))
        for h, row in enumerate(fold.test):
            record = {"fold": k, "origin": frame.index[origin], "date": frame.index[row], "step": h + 1,
                      "actual": values[row], MODEL: runs[:, h].mean()}
            record.update({f"run_{r + 1}": runs[r, h] for r in range(len(runs))})
            records.append(record)
        for name in baselines:
            forecast = BASELINES[name](past, horizon, season=season)
            for h in range(horizon):
                records[-horizon + h][name] = forecast[h]
        logger.debug("fold %d/%d: origin %s", k + 1, len(folds), frame.index[origin])
    predictions = pd.DataFrame.from_records(records)
    return BacktestResult(predictions, np.asarray(scales), list(baselines), forecaster.n_runs, season)


def select(candidates, series, *, test_size: int | None = None, metric: str = "RMSE", progress=None):
    """Choose between forecaster settings by a walk-forward backtest *within* ``series``.

    Pass the training part only: the last ``test_size`` steps of it (default: one horizon)
    serve as the inner validation, so the final held-out data never shapes the choice.

    Args:
        candidates: ``Forecaster`` objects with the settings to compare.
        series: the training part of the series.
        test_size, metric: the inner validation length and the metric minimised (RMSE, MAE,
            MASE, ...).

    Returns:
        ``(best, scores)``: the best candidate (unfitted) and a ``DataFrame`` with one row per
        candidate: its differencing, strategy, lookback and inner ``metric``.

    >>> import numpy as np
    >>> y = np.arange(80.0)
    >>> best, scores = select([Forecaster(4, 2, epochs=5), Forecaster(4, 2, differencing=1, epochs=5)], y)
    >>> best.differencing
    1
    """
    candidates = list(candidates)
    if not candidates:
        raise ValueError("select: `candidates` is empty; pass at least one Forecaster.")
    rows = []
    for candidate in candidates:
        result = backtest(candidate, series, test_size=test_size, progress=progress)
        if metric not in result.metrics.columns:
            raise ValueError(f"select: unknown `metric` {metric!r}. Expected one of: "
                             f"{', '.join(repr(m) for m in result.metrics.columns)}.")
        rows.append({"differencing": candidate.differencing, "strategy": candidate.strategy,
                     "lookback": candidate.lookback, metric: result.metrics.loc[MODEL, metric]})
    scores = pd.DataFrame(rows)
    best = int(np.nanargmin(scores[metric].to_numpy()))
    logger.info("select: inner validation %s per candidate: %s; chose #%d", metric,
                ", ".join(f"{v:.4g}" for v in scores[metric]), best + 1)
    return candidates[best].clone(), scores
