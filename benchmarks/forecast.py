"""Forecasting benchmarks: accuracy on every embedded series, and lstmkit next to darts / neuralforecast.

    python benchmarks/forecast.py accuracy [--runs 5]   # the docs/forecasting.md results table
    python benchmarks/forecast.py compare  [--runs 3]   # wall time + accuracy vs darts, neuralforecast

``accuracy`` runs the same job as ``lstmkit forecast`` on each embedded univariate series with the
protocol fixed below (horizon, held-out length) before any result was seen: the differencing is
chosen on the training part by an inner walk-forward, the LSTM is fitted once before the first
held-out origin, and the baselines forecast from the same history at every origin.

``compare`` times ``lstmkit forecast``'s job on airline passengers (train on 1949-1958, forecast
1959 and 1960 from origins 1959-01 and 1960-01, no refit) and, where they import, darts'
``RNNModel(model="LSTM")`` and neuralforecast's ``LSTM`` on the same split and horizon, each in
its library's usual set-up (min-max scaling, no differencing, default-sized networks). Packages
that do not import are reported as skipped. All in one process, one thread.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import torch

from lstmkit import datasets
from lstmkit.forecast import mase_scale, naive, rmse, seasonal_naive
from lstmkit.forecast.cli import job

# Fixed before running: horizon, held-out steps, lookback (None: the command's default, twice
# max(horizon, season)) and a note on why.
PROTOCOL = {
    "airline_passengers": dict(horizon=12, test_size=24, lookback=None, note="the command's default run"),
    "shampoo_sales": dict(horizon=3, test_size=12, lookback=6, note="36 values: a short window"),
    "sunspots_monthly": dict(horizon=12, test_size=120, lookback=None, note="the last 10 years, 10 origins"),
    "melbourne_max_temperature": dict(horizon=7, test_size=364, lookback=None, note="the last year, 52 weekly origins"),
}


def accuracy(runs: int) -> None:
    rows = []
    for name, spec in PROTOCOL.items():
        series = datasets.load(name)
        frame = series.to_frame()
        out = job(frame, frame.columns[0], horizon=spec["horizon"], lookback=spec["lookback"],
                  test_size=spec["test_size"], runs=runs, where=name)
        res = out["result"]
        m, r = res.metrics, res.runs
        row = dict(name=name, h=out["horizon"], L=out["lookback"], test=out["test_size"],
                   folds=res.predictions["fold"].nunique(), diff=out["differencing"], season=res.season,
                   seconds=out["seconds"])
        for metric in ("RMSE", "MASE"):
            row[f"lstm_{metric}"] = m.loc["lstm", metric]
            row[f"runs_{metric}"] = (r[metric].mean(), r[metric].std(ddof=1))
            for b in ("naive", "seasonal_naive", "drift", "mean"):
                row[f"{b}_{metric}"] = m.loc[b, metric]
        row["beats_naive"] = res.beats("naive", "RMSE") and res.beats("naive", "MASE")
        row["beats_snaive"] = res.beats("seasonal_naive", "RMSE") and res.beats("seasonal_naive", "MASE")
        row["runs_beat_naive"] = int((r["RMSE"] < m.loc["naive", "RMSE"]).sum())
        rows.append(row)
        print(f"\n## {name} ({spec['note']})\n{res.table()}", flush=True)

    print(f"\n| series | h | lookback | held out (origins) | differencing (chosen) | LSTM ensemble of {runs} RMSE / MASE "
          "| single runs RMSE mean ± sd | persistence | seasonal naive | drift | mean | beats persistence | "
          "beats seasonal naive | time |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        def pair(key):
            return f"{row[key + '_RMSE']:.2f} / {row[key + '_MASE']:.3f}"

        mean, sd = row["runs_RMSE"]
        print(f"| {row['name']} | {row['h']} | {row['L']} | {row['test']} ({row['folds']}) | {row['diff']} | "
              f"**{pair('lstm')}** | {mean:.2f} ± {sd:.2f} | {pair('naive')} | {pair('seasonal_naive')} "
              f"(m={row['season']}) | {pair('drift')} | {pair('mean')} | "
              f"{'yes' if row['beats_naive'] else 'NO'} ({row['runs_beat_naive']}/{runs} runs) | "
              f"{'yes' if row['beats_snaive'] else 'NO'} | {row['seconds']:.0f} s |")


def _airline_split():
    y = datasets.load("airline_passengers")
    return y, 120, 12  # series, first origin, horizon (origins 120 and 132)


def _score(y, preds, origins, horizon):
    actual = np.concatenate([y.to_numpy()[o:o + horizon] for o in origins])
    scale = [mase_scale(y.to_numpy()[:o], 12) for o in origins]
    pred = np.concatenate(preds)
    mase = np.mean(np.abs(actual - pred) / np.repeat(scale, horizon))
    return rmse(actual, pred), mase


def compare(runs: int) -> None:
    torch.set_num_threads(1)
    y, first, horizon = _airline_split()
    origins = [first, first + horizon]
    rows = []
    started = time.perf_counter()
    out = job(y.to_frame(), y.name, runs=runs, test_size=24)
    res = out["result"]
    rows.append(("lstmkit forecast (whole job: selection + backtest + final fit)", time.perf_counter() - started,
                 res.metrics.loc["lstm", "RMSE"], res.metrics.loc["lstm", "MASE"], f"{runs} runs, ensemble"))
    for label, fn in (("seasonal naive", seasonal_naive), ("persistence", naive)):
        preds = [fn(y.to_numpy()[:o], horizon, season=12) for o in origins]
        rows.append((label, 0.0, *_score(y, preds, origins, horizon), ""))

    try:
        from darts import TimeSeries
        from darts.dataprocessing.transformers import Scaler
        from darts.models import RNNModel
    except Exception as err:  # noqa: BLE001 - any import failure means "not available here"
        rows.append(("darts RNNModel(LSTM)", float("nan"), float("nan"), float("nan"), f"skipped: {err!r}"[:80]))
    else:
        scores, seconds = [], 0.0
        for seed in range(runs):
            t0 = time.perf_counter()
            ts = TimeSeries.from_series(y.to_timestamp().astype(np.float32))
            scaler = Scaler()
            train = scaler.fit_transform(ts[:first])
            full = scaler.transform(ts)
            model = RNNModel(model="LSTM", input_chunk_length=24, training_length=36, hidden_dim=32, n_epochs=200,
                             random_state=seed, pl_trainer_kwargs={"accelerator": "cpu",
                                                                    "enable_progress_bar": False,
                                                                    "enable_model_summary": False})
            model.fit(train, verbose=False)
            preds = []
            for o in origins:
                p = model.predict(horizon, series=full[:o], verbose=False)
                preds.append(scaler.inverse_transform(p).values().ravel())
            seconds += time.perf_counter() - t0
            scores.append(_score(y, preds, origins, horizon))
        s = np.array(scores)
        rows.append(("darts RNNModel(LSTM), 200 epochs, per run", seconds / runs, s[:, 0].mean(), s[:, 1].mean(),
                     f"RMSE sd {s[:, 0].std(ddof=1):.2f} over {runs} runs" if runs > 1 else ""))

    try:
        import pandas as pd
        from neuralforecast import NeuralForecast
        from neuralforecast.models import LSTM as NFLSTM
    except Exception as err:  # noqa: BLE001
        rows.append(("neuralforecast LSTM", float("nan"), float("nan"), float("nan"), f"skipped: {err!r}"[:80]))
    else:
        scores, seconds = [], 0.0
        frame = pd.DataFrame({"unique_id": "airline", "ds": y.index.to_timestamp(), "y": y.to_numpy()})
        for seed in range(runs):
            t0 = time.perf_counter()
            model = NFLSTM(h=horizon, input_size=24, max_steps=500, scaler_type="minmax", random_seed=seed,
                           enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                           logger=False)
            nf = NeuralForecast(models=[model], freq="MS")
            nf.fit(frame.iloc[:first])
            preds = []
            for o in origins:
                p = nf.predict(df=frame.iloc[:o])
                preds.append(p[[c for c in p.columns if c.startswith("LSTM")][0]].to_numpy())
            seconds += time.perf_counter() - t0
            scores.append(_score(y, preds, origins, horizon))
        s = np.array(scores)
        rows.append(("neuralforecast LSTM, 500 steps, per run", seconds / runs, s[:, 0].mean(), s[:, 1].mean(),
                     f"RMSE sd {s[:, 0].std(ddof=1):.2f} over {runs} runs" if runs > 1 else ""))

    print("\n| model | wall time (s) | RMSE | MASE (m=12) | note |\n|---|---|---|---|---|")
    for label, seconds, err, mase, note in rows:
        shown = "n/a" if seconds != seconds else f"{seconds:.1f}"
        print(f"| {label} | {shown} | {err:.2f} | {mase:.3f} | {note} |")
    print(f"\ntorch {torch.__version__}, threads {torch.get_num_threads()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("accuracy", "compare"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    (accuracy if args.what == "accuracy" else compare)(args.runs)


if __name__ == "__main__":
    main()
