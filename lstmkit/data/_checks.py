"""Input checks shared by the data transforms: numbers only, finite where required, the right ndim.

Every error names the function and the argument in backticks, says what was expected and what
arrived, and how to fix it.
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np
import pandas as pd


@dataclasses.dataclass(frozen=True)
class PandasInfo:
    """What is needed to put a NumPy result back into the pandas container it came from."""

    kind: str  # "ndarray", "series" or "frame"
    index: pd.Index | None = None
    columns: pd.Index | None = None
    name: object = None

    def wrap(self, values: np.ndarray, index: pd.Index | None = None):
        """Return ``values`` as the same kind of object as the input (index defaults to the input's)."""
        if self.kind == "ndarray":
            return values
        index = self.index if index is None else index
        if self.kind == "series":
            return pd.Series(values, index=index, name=self.name)
        return pd.DataFrame(values, index=index, columns=self.columns)


def pandas_info(data) -> PandasInfo:
    if isinstance(data, pd.DataFrame):
        return PandasInfo("frame", data.index, data.columns)
    if isinstance(data, pd.Series):
        return PandasInfo("series", data.index, None, data.name)
    return PandasInfo("ndarray")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _describe_ndim(ndims) -> str:
    words = {1: "1-D (time,)", 2: "2-D (time, features)", 3: "3-D (samples, time, features)"}
    return " or ".join(words.get(n, f"{n}-D") for n in ndims)


def check_numeric(owner: str, name: str, data) -> np.ndarray:
    """Return ``data`` as a NumPy array of numbers, or raise naming the non-numeric part."""
    if data is None:
        raise TypeError(f"{owner}: `{name}` must be an array, Series or DataFrame of numbers, got None.")
    if isinstance(data, pd.DataFrame):
        bad = [c for c in data.columns if not pd.api.types.is_numeric_dtype(data[c].dtype)]
        if bad:
            dtypes = ", ".join(f"{c!r} ({data[c].dtype})" for c in bad)
            raise TypeError(
                f"{owner}: `{name}` has non-numeric {'column' if len(bad) == 1 else 'columns'} "
                f"{dtypes}; drop {'it' if len(bad) == 1 else 'them'} or encode {'it' if len(bad) == 1 else 'them'} "
                f"as numbers first (e.g. with lstmkit.data.IntegerEncoder).")
        return data.to_numpy()
    if isinstance(data, pd.Series):
        if not pd.api.types.is_numeric_dtype(data.dtype):
            raise TypeError(
                f"{owner}: `{name}` is a Series of dtype {data.dtype}, not numbers; convert it with "
                f"pd.to_numeric or encode it (e.g. with lstmkit.data.IntegerEncoder).")
        return data.to_numpy()
    try:
        array = np.asarray(data)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise TypeError(f"{owner}: `{name}` could not be read as a rectangular array of numbers "
                        f"({exc}); pass a NumPy array, Series or DataFrame.") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"{owner}: `{name}` must hold numbers, got an array of dtype {array.dtype}; convert it "
            f"to float (np.asarray(x, dtype=float)) or encode symbols with lstmkit.data.IntegerEncoder.")
    return array


def as_float(array: np.ndarray) -> np.ndarray:
    """float32 and float64 stay as they are; integers and booleans become float64."""
    if array.dtype in (np.float32, np.float64):
        return array
    return array.astype(np.float64)


def _label(label) -> str:
    if isinstance(label, np.generic):
        label = label.item()
    return repr(label) if isinstance(label, (str, int, float)) else str(label)


def _where(array: np.ndarray, flat_position: int, info: PandasInfo) -> str:
    position = np.unravel_index(flat_position, array.shape)
    if info.kind != "ndarray" and info.index is not None:
        label = info.index[position[0]]
        if info.kind == "frame" and array.ndim == 2:
            return f"row {_label(label)}, column {_label(info.columns[position[1]])}"
        return f"index {_label(label)}"
    if array.ndim == 1:
        return f"position {position[0]}"
    return f"position {tuple(int(p) for p in position)}"


def check_finite(owner: str, name: str, array: np.ndarray, info: PandasInfo | None = None, *,
                 allow_nan: bool = False) -> None:
    """Raise if ``array`` holds infinities (always) or NaN (unless ``allow_nan``)."""
    if array.dtype.kind != "f":
        return
    info = info or PandasInfo("ndarray")
    if not allow_nan:
        nan = np.isnan(array)
        if nan.any():
            count = int(nan.sum())
            first = int(np.flatnonzero(nan.ravel())[0])
            raise ValueError(
                f"{owner}: `{name}` contains {_plural(count, 'NaN value')} (first at "
                f"{_where(array, first, info)}); fill or drop them, or mark them for masking "
                f"with lstmkit.data.mark_missing.")
    inf = np.isinf(array)
    if inf.any():
        count = int(inf.sum())
        first = int(np.flatnonzero(inf.ravel())[0])
        raise ValueError(
            f"{owner}: `{name}` contains {_plural(count, 'infinite value')} (first at "
            f"{_where(array, first, info)}); replace them with finite numbers (or NaN to mark "
            f"them missing).")


def check_array(owner: str, name: str, data, *, ndims=(1, 2), allow_nan: bool = False,
                to_float: bool = True) -> tuple[np.ndarray, PandasInfo]:
    """Validate ``data`` at a public boundary and return it as a NumPy array plus its pandas info."""
    info = pandas_info(data)
    array = check_numeric(owner, name, data)
    if array.ndim not in ndims:
        raise ValueError(
            f"{owner}: `{name}` must be {_describe_ndim(ndims)}, got a {array.ndim}-D array of "
            f"shape {array.shape}.")
    if array.size == 0 or array.shape[0] == 0:
        raise ValueError(f"{owner}: `{name}` is empty (shape {array.shape}); pass at least one time step.")
    if to_float:
        array = as_float(array)
    check_finite(owner, name, array, info, allow_nan=allow_nan)
    return array, info


def check_bool(owner: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: `{name}` must be True or False, got {value!r} ({type(value).__name__}).")
    return bool(value)


def is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
