"""One picture of a forecast: the history, the backtest forecasts at each origin, and the future."""

from __future__ import annotations

import pandas as pd


def _x(index: pd.Index):
    """Matplotlib-friendly x values: periods become timestamps."""
    return index.to_timestamp() if isinstance(index, pd.PeriodIndex) else index


def plot_forecast(history: pd.Series, forecast: pd.DataFrame, backtest=None, *, title: str = "", file=None):
    """Draw ``history``, the backtest forecasts and ``forecast`` (columns ``forecast`` and ``run_k``).

    Args:
        history: the observed target series.
        forecast: the future: a ``forecast`` column (the ensemble) and optionally ``run_1``, ...;
            the runs' range is shaded.
        backtest: a :class:`~lstmkit.forecast.BacktestResult`, whose held-out forecasts are drawn
            at their origins; None draws none.
        file: a path or binary file to write a PNG to; None only returns the figure.

    Returns:
        the ``matplotlib.figure.Figure``.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.5), dpi=100)
    ax = fig.add_subplot()
    ax.plot(_x(history.index), history.to_numpy(), color="0.25", lw=1.3, label="observed")
    if backtest is not None:
        preds = backtest.predictions
        for k, (_, fold) in enumerate(preds.groupby("fold")):
            index = pd.Index(fold["date"])
            ax.plot(_x(index), fold["lstm"].to_numpy(), color="tab:orange", lw=1.6,
                    label="backtest (LSTM)" if k == 0 else None)
            if "seasonal_naive" in fold:
                ax.plot(_x(index), fold["seasonal_naive"].to_numpy(), color="tab:green", lw=1, ls="--",
                        label="backtest (seasonal naive)" if k == 0 else None)
    runs = [c for c in forecast.columns if c.startswith("run_")]
    x = _x(forecast.index)
    if len(runs) > 1:
        ax.fill_between(x, forecast[runs].min(axis=1), forecast[runs].max(axis=1), color="tab:blue", alpha=0.2,
                        label=f"range of {len(runs)} runs")
    ax.plot(x, forecast["forecast"].to_numpy(), color="tab:blue", lw=2, label="forecast")
    ax.set_title(title)
    ax.set_ylabel(str(history.name) if history.name is not None else "value")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    fig.tight_layout()
    if file is not None:
        fig.savefig(file, format="png")
    return fig
