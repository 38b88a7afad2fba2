"""``lstmkit forecast``: train, backtest against the baselines, forecast, write a CSV and a plot.

With no arguments it runs on the embedded airline-passengers series. Light to import: torch and
pandas load only when the command runs.
"""

from __future__ import annotations

import os
import sys
import time


class InputError(Exception):
    """A problem with the user's data or arguments: one line to stderr, exit status 2."""


def add_forecast_command(commands) -> None:
    """Register ``lstmkit forecast`` on the top-level sub-command parsers."""
    p = commands.add_parser(
        "forecast", help="forecast a time series with an LSTM and backtest it against baselines",
        description="Train an LSTM forecaster, backtest it walk-forward on the last part of the series "
        "next to persistence, seasonal naive, drift and mean, print the table, and write the future "
        "forecast to a CSV and a plot to a PNG. Without a CSV or --dataset it uses the embedded "
        "airline-passengers series.")
    p.add_argument("csv", nargs="?", help="a CSV file with a header row (default: --dataset)")
    p.add_argument("--dataset", default=None, metavar="NAME",
                   help="an embedded series: airline_passengers (default), shampoo_sales, sunspots_monthly, "
                   "melbourne_max_temperature, us_macrodata (with --target)")
    p.add_argument("--target", metavar="COL", help="the column to forecast (needed when there are several)")
    p.add_argument("--time-column", metavar="COL", help="the column of dates (default: rows are numbered)")
    p.add_argument("--covariates", nargs="+", metavar="COL", default=[],
                   help="other columns to use as inputs (past covariates)")
    p.add_argument("--horizon", type=int, metavar="N", help="steps to forecast (default: the season, else 12)")
    p.add_argument("--lookback", type=int, metavar="N", help="input steps (default: twice the horizon)")
    p.add_argument("--strategy", choices=("direct", "recursive", "seq2seq"), default="direct",
                   help="multi-step strategy (default: direct)")
    p.add_argument("--season", type=int, metavar="N", help="seasonal period (default: from the dates, e.g. 12)")
    p.add_argument("--test-size", type=int, metavar="N",
                   help="held-out steps for the backtest (default: twice the horizon)")
    p.add_argument("--differencing", default="auto",
                   help="'auto' (chosen on the training part), 'none', or lags such as '1', '12', '12,1'")
    p.add_argument("--units", type=int, default=32, metavar="N", help="LSTM units (default: 32)")
    p.add_argument("--epochs", type=int, default=200, metavar="N",
                   help="most epochs per run; early stopping on an inner validation split (default: 200)")
    p.add_argument("--runs", type=int, default=3, metavar="N",
                   help="networks trained with different seeds; the forecast is their mean (default: 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", metavar="FILE.csv", help="where to write the forecast")
    p.add_argument("--plot", metavar="FILE.png", help="where to write the plot")
    p.set_defaults(handler=main)


def main(args) -> int:
    try:
        return _run(args)
    except InputError as err:
        print(f"lstmkit forecast: error: {err}", file=sys.stderr)
        return 2


# ----------------------------------------------------------------------------- reading the data

def _read_csv(path: str, target: str | None, time_column: str | None, covariates: list[str]):
    """The CSV as a DataFrame of floats (target first, then covariates), indexed by time or row."""
    import numpy as np
    import pandas as pd

    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file.")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a readable CSV file ({str(err).splitlines()[0]}).") from None
    columns = list(raw.columns)
    listed = ", ".join(repr(c) for c in columns)
    for option, name in (("--time-column", time_column), *(("--covariates", c) for c in covariates)):
        if name is not None and name not in columns:
            raise InputError(f"{path}: {option} {name!r} is not a column; the columns are {listed}.")
    if target is None:
        others = [c for c in columns if c != time_column and c not in covariates]
        if len(others) != 1:
            raise InputError(f"{path}: name the column to forecast with --target; the columns are {listed}.")
        target = others[0]
    elif target not in columns:
        raise InputError(f"{path}: --target {target!r} is not a column; the columns are {listed}.")
    frame = pd.DataFrame(index=raw.index)
    for name in [target, *[c for c in covariates if c != target]]:
        text = raw[name].str.strip()
        numbers = pd.to_numeric(text, errors="coerce")
        bad = ~np.isfinite(numbers.to_numpy(dtype=float))  # text, empty cells, inf
        if bad.any():
            row = int(bad.argmax())
            what = "is empty" if text.iloc[row] == "" else f"has {text.iloc[row]!r}, not a number"
            raise InputError(f"{path}: column {name!r} {what} at line {row + 2} (data row {row + 1}).")
        frame[name] = numbers.astype(float)
    if time_column is not None:
        text = raw[time_column].str.strip()
        dates = pd.to_datetime(text, errors="coerce", format="mixed") if len(text) else text
        if dates.isna().any():
            row = int(dates.isna().to_numpy().argmax())
            raise InputError(f"{path}: column {time_column!r} has {text.iloc[row]!r} at line {row + 2} "
                             f"(data row {row + 1}), which is not a date.")
        index = pd.DatetimeIndex(dates, name=time_column)
        if not index.is_monotonic_increasing or index.has_duplicates:
            order = index.to_series().diff().dt.total_seconds().fillna(1).to_numpy()
            row = int((order <= 0).argmax())
            raise InputError(f"{path}: the dates in {time_column!r} must increase strictly; line {row + 2} "
                             f"({text.iloc[row]}) does not come after the line before.")
        freq = pd.infer_freq(index) if len(index) > 2 else None
        if freq and freq.split("-")[0] in ("MS", "ME", "M", "QS", "QE", "Q", "YS", "YE", "Y", "A", "AS"):
            frame.index = pd.PeriodIndex(index, freq=freq.split("-")[0].rstrip("ES") or "M", name=time_column)
        else:
            frame.index = index if freq is None else pd.DatetimeIndex(index, freq=freq)
    return frame, target


def _load(args):
    import pandas as pd

    from lstmkit import datasets

    if args.csv is not None:
        if args.dataset is not None:
            raise InputError("pass either a CSV file or --dataset, not both.")
        frame, target = _read_csv(args.csv, args.target, args.time_column, args.covariates)
        return frame, target, os.path.splitext(os.path.basename(args.csv))[0]
    name = args.dataset or "airline_passengers"
    if name not in datasets.names():
        raise InputError(f"--dataset: unknown dataset {name!r}; the series are: airline_passengers, shampoo_sales, "
                         f"sunspots_monthly, melbourne_max_temperature, us_macrodata.")
    data = datasets.load(name)
    if not isinstance(data, (pd.Series, pd.DataFrame)):
        raise InputError(f"--dataset: {name!r} is a classification set, not a time series.")
    frame = data.to_frame() if isinstance(data, pd.Series) else data
    target = args.target or (frame.columns[0] if frame.shape[1] == 1 else None)
    if target is None or target not in frame.columns:
        raise InputError(f"--dataset {name}: name the column to forecast with --target; the columns are "
                         f"{', '.join(repr(c) for c in frame.columns)}.")
    missing = [c for c in args.covariates if c not in frame.columns]
    if missing:
        raise InputError(f"--dataset {name}: --covariates {missing[0]!r} is not a column.")
    return frame[[target, *[c for c in args.covariates if c != target]]], target, name


def _differencing_candidates(option: str, season: int):
    if option == "auto":
        candidates = [None, 1]
        if season > 1:
            candidates += ["seasonal", ["seasonal", 1]]
        return candidates
    if option.strip().lower() in ("none", "0"):
        return [None]
    try:
        lags = [int(part) for part in option.split(",")]
    except ValueError:
        raise InputError(f"--differencing: expected 'auto', 'none' or lags such as '1' or '12,1', got {option!r}.") from None
    if any(lag < 1 for lag in lags):
        raise InputError(f"--differencing: lags must be >= 1, got {option!r}.")
    return [lags[0] if len(lags) == 1 else lags]


def _positive(name: str, value):
    if value is not None and value < 1:
        raise InputError(f"{name} must be >= 1, got {value}.")
    return value


# ----------------------------------------------------------------------------- the job

def _candidates_that_fit(candidates, season: int, rows: int, lookback: int, horizon: int):
    """Drop differencing candidates that leave fewer than 8 training windows in ``rows`` steps."""
    def lag_sum(c):
        items = c if isinstance(c, list) else [c]
        return sum(season if d == "seasonal" else d for d in items if d)

    return [c for c in candidates if rows - lag_sum(c) - lookback - horizon + 1 >= 8], lag_sum


def job(frame, target, *, horizon: int | None = None, lookback: int | None = None, season: int | None = None,
        test_size: int | None = None, strategy: str = "direct", units: int = 32, epochs: int = 200, runs: int = 3,
        seed: int = 0, differencing: str = "auto", quiet: bool = True, where: str = "data") -> dict:
    """The forecasting job behind the command, callable from Python (the benchmarks use it).

    Chooses the differencing on the training part (inner walk-forward over its last horizon),
    backtests that choice on the last ``test_size`` steps next to the baselines (fitted once,
    before the first origin), then fits on all the data and forecasts the next ``horizon`` steps.

    Returns:
        a dict with ``result`` (:class:`BacktestResult`), ``forecast`` (DataFrame: ``forecast``
        and ``run_k`` columns, future dates), ``differencing``, ``horizon``, ``lookback``,
        ``season``, ``test_size``, ``selection`` (inner scores or None), ``seconds``.
    """
    from lstmkit.forecast.forecaster import infer_season  # light: no torch until a network is built

    started = time.perf_counter()
    season = season or infer_season(frame.index)
    horizon = horizon or (season if season > 1 else 12)
    lookback = lookback or 2 * max(horizon, season)
    test_size = test_size or 2 * horizon
    wanted = _differencing_candidates(differencing, season)
    inner_rows = len(frame) - test_size - (horizon if len(wanted) > 1 else 0)
    candidates, lag_sum = _candidates_that_fit(wanted, season, inner_rows, lookback, horizon)
    if not candidates:
        needed = test_size + (horizon if len(wanted) > 1 else 0) + min(lag_sum(c) for c in wanted) + lookback + horizon + 7
        raise InputError(f"{where}: {len(frame)} rows is too few: lookback {lookback} + horizon {horizon} + "
                         f"differencing + backtest {test_size} + at least 8 training windows need {needed}. "
                         f"Use a smaller --lookback, --horizon or --test-size.")
    import torch
    from tqdm.auto import tqdm

    from lstmkit.forecast import Forecaster, backtest, select

    # Small networks: one thread is faster than two, and far steadier on a shared machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    template = Forecaster(lookback=lookback, horizon=horizon, strategy=strategy, target=target, units=units,
                          season=season, epochs=epochs, n_runs=runs, seed=seed)
    fits = (len(candidates) if len(candidates) > 1 else 0) + 2 * runs
    bar = tqdm(total=fits * epochs, desc="training", unit="epoch", disable=quiet or None,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}", file=sys.stderr)
    selection = None
    try:
        with bar:
            if len(candidates) > 1:
                bar.set_description("choosing differencing (inner validation)")
                options = [template.clone(differencing=d, n_runs=1) for d in candidates]
                chosen, selection = select(options, frame.iloc[:len(frame) - test_size], test_size=horizon,
                                           progress=bar)
                chosen_differencing = chosen.differencing
            else:
                chosen_differencing = candidates[0]
            settings = template.clone(differencing=chosen_differencing)
            bar.set_description(f"backtest on the last {test_size}")
            result = backtest(settings, frame, test_size=test_size, progress=bar)
            bar.set_description("final fit on all data")
            forecast = settings.fit(frame, progress=bar).predict(per_run=True)
    except ValueError as err:
        raise InputError(f"{where}: {err}") from None
    finally:
        torch.set_num_threads(threads)
    forecast.insert(0, "forecast", forecast.mean(axis=1))
    return {"result": result, "forecast": forecast, "differencing": chosen_differencing, "horizon": horizon,
            "lookback": lookback, "season": season, "test_size": test_size, "selection": selection,
            "seconds": time.perf_counter() - started}


def _run(args) -> int:
    started = time.perf_counter()
    for name in ("horizon", "lookback", "season", "test_size", "units", "epochs", "runs"):
        _positive("--" + name.replace("_", "-"), getattr(args, name))
    frame, target, label = _load(args)
    import logging

    logging.getLogger("lstmkit.models").setLevel(logging.WARNING)  # per-run early-stopping chatter
    out_csv = args.output or f"{label}_forecast.csv"
    out_png = args.plot or f"{label}_forecast.png"
    for path in (out_csv, out_png):
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise InputError(f"cannot write {path}: the folder {folder} does not exist.")
    where = args.csv or f"--dataset {label}"
    out = job(frame, target, horizon=args.horizon, lookback=args.lookback, season=args.season,
              test_size=args.test_size, strategy=args.strategy, units=args.units, epochs=args.epochs,
              runs=args.runs, seed=args.seed, differencing=args.differencing, quiet=args.quiet, where=where)
    result, forecast = out["result"], out["forecast"]

    shown = label if args.csv is None else os.path.basename(args.csv)
    print(f"{shown}: forecasting {target!r}, {len(frame)} steps ({frame.index[0]} to {frame.index[-1]})"
          + (f" with covariates {', '.join(map(repr, frame.columns[1:]))}" if frame.shape[1] > 1 else ""))
    diff = out["differencing"]
    print(f"LSTM({args.units}) {args.strategy}, lookback {out['lookback']}, horizon {out['horizon']}, "
          f"differencing {'none' if diff is None else diff}"
          f"{' (chosen on the training part)' if out['selection'] is not None else ''}, {args.runs} run(s)")
    origins = result.predictions["origin"].unique()
    print(f"\nBacktest: {len(origins)} origin(s) over the last {out['test_size']} steps "
          f"({', '.join(str(o) for o in origins[:6])}{', ...' if len(origins) > 6 else ''}), "
          f"fitted once before the first\n")
    print(result.table())
    _write_outputs(forecast, frame[target], result, out_csv, out_png,
                   title=f"{shown}: {target} - LSTM forecast, {out['horizon']} steps")
    print(f"\nForecast of the next {out['horizon']} steps written to {out_csv}")
    print(f"Plot written to {out_png}")
    print(f"Done in {time.perf_counter() - started:.1f} s.")
    return 0


def _write_outputs(forecast, history, result, out_csv: str, out_png: str, title: str) -> None:
    """Write both files under temporary names, then rename them into place: all or nothing."""
    from lstmkit._io import atomic_path
    from lstmkit.forecast.plot import plot_forecast

    with atomic_path(out_csv) as tmp_csv, atomic_path(out_png) as tmp_png:
        table = forecast.copy()
        table.index = table.index.astype(str)
        table.index.name = history.index.name or "step"
        table.to_csv(tmp_csv, float_format="%.6g")
        plot_forecast(history, forecast, result, title=title, file=tmp_png)
