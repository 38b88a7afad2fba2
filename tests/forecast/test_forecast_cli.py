"""`lstmkit forecast` as a user runs it: a real process, real files."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "lstmkit.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def write_csv(path, n=60, replace=None):
    t = np.arange(n)
    frame = pd.DataFrame({"date": pd.date_range("2015-01-01", periods=n, freq="MS").strftime("%Y-%m-%d"),
                          "sales": (200 + 2 * t + 20 * np.sin(2 * np.pi * t / 12)).round(2),
                          "region": "north"})
    frame = frame.astype(object)
    for (column, row), value in (replace or {}).items():
        frame.loc[row, column] = value
    frame.to_csv(path, index=False)
    return path


FAST = ["--epochs", "15", "--runs", "1", "--horizon", "6", "--lookback", "12", "--differencing", "12"]


def test_end_to_end_on_a_csv(tmp_path):
    data = write_csv(tmp_path / "shop.csv")
    result = run("forecast", str(data), "--target", "sales", "--time-column", "date", *FAST,
                 "--output", "out.csv", "--plot", "out.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "persistence" in result.stdout and "seasonal naive (m=12)" in result.stdout
    assert "written to out.csv" in result.stdout and "Plot written to out.png" in result.stdout
    forecast = pd.read_csv(tmp_path / "out.csv", index_col=0)
    assert list(forecast.index) == ["2020-01", "2020-02", "2020-03", "2020-04", "2020-05", "2020-06"]
    assert list(forecast.columns) == ["forecast", "run_1"]
    assert forecast["forecast"].between(150, 400).all()  # original units, not scaled ones
    assert (tmp_path / "out.png").read_bytes()[:8] == PNG_SIGNATURE
    assert sorted(os.listdir(tmp_path)) == ["out.csv", "out.png", "shop.csv"]  # no temporary files left


def test_default_run_on_airline_passengers_quick(tmp_path):
    # The command with no data arguments; fewer epochs than the default to keep the test quick.
    result = run("forecast", "--epochs", "10", "--runs", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "airline_passengers: forecasting 'passengers', 144 steps (1949-01 to 1960-12)" in result.stdout
    assert "origin(s) over the last 24 steps (1959-01, 1960-01)" in result.stdout
    assert "single runs" in result.stdout
    forecast = pd.read_csv(tmp_path / "airline_passengers_forecast.csv", index_col=0)
    assert forecast.index[0] == "1961-01" and len(forecast) == 12
    assert (tmp_path / "airline_passengers_forecast.png").read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.slow
def test_default_run_takes_under_a_minute_and_beats_the_baselines(tmp_path):
    result = run("forecast", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "lower than the best baseline (seasonal naive" in result.stdout
    seconds = float(result.stdout.rsplit("Done in ", 1)[1].split()[0])
    assert seconds < 60


@pytest.mark.parametrize("case, args, message", [
    ("missing target column", ["--target", "revenue", "--time-column", "date"],
     "--target 'revenue' is not a column; the columns are 'date', 'sales', 'region'."),
    ("missing time column", ["--target", "sales", "--time-column", "when"],
     "--time-column 'when' is not a column"),
    ("non-numeric value", ["--target", "sales", "--time-column", "date"],
     "column 'sales' has 'n/a', not a number at line 12 (data row 11)."),
    ("empty value", ["--target", "sales", "--time-column", "date"],
     "column 'sales' is empty at line 5 (data row 4)."),
    ("unparseable date", ["--target", "sales", "--time-column", "date"],
     "column 'date' has 'someday' at line 8 (data row 7), which is not a date."),
    ("non-numeric target", ["--target", "region", "--time-column", "date"],
     "column 'region' has 'north', not a number at line 2 (data row 1)."),
    ("too few rows", ["--target", "sales", "--time-column", "date"], "rows is too few"),
    ("no such file", ["--target", "sales"], "no such file"),
])
def test_bad_csv_gives_one_line_exit_2_and_no_files(tmp_path, case, args, message):
    data = tmp_path / "data.csv"
    if case == "non-numeric value":
        write_csv(data, replace={("sales", 10): "n/a"})
    elif case == "empty value":
        write_csv(data, replace={("sales", 3): ""})
    elif case == "unparseable date":
        write_csv(data, replace={("date", 6): "someday"})
    elif case == "too few rows":
        write_csv(data, n=20)
    elif case != "no such file":
        write_csv(data)
    before = sorted(os.listdir(tmp_path))
    result = run("forecast", str(data), *args, *FAST, "--output", "out.csv", "--plot", "out.png", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lstmkit forecast: error: ")
    assert message in lines[0]
    assert sorted(os.listdir(tmp_path)) == before  # nothing written, not even a temporary file


def test_unknown_dataset_and_bad_numbers(tmp_path):
    result = run("forecast", "--dataset", "nope", cwd=tmp_path)
    assert result.returncode == 2 and "unknown dataset 'nope'" in result.stderr
    result = run("forecast", "--horizon", "0", cwd=tmp_path)
    assert result.returncode == 2 and "--horizon must be >= 1, got 0" in result.stderr
    assert os.listdir(tmp_path) == []
