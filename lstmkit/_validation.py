"""Argument checks shared by every module: each raises a clear TypeError/ValueError."""

from __future__ import annotations

import numbers


def check_int(owner: str, name: str, value, *, minimum: int | None = None, allow_none: bool = False):
    """Return ``value`` as an int, or raise naming ``owner`` and ``name``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: `{name}` must be an integer, got {value!r} ({type(value).__name__}).")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{owner}: `{name}` must be >= {minimum}, got {value}.")
    return value


def check_float(owner: str, name: str, value, *, low: float | None = None, high: float | None = None,
                high_inclusive: bool = True):
    """Return ``value`` as a float within [low, high] (or [low, high)), or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: `{name}` must be a number, got {value!r} ({type(value).__name__}).")
    value = float(value)
    if value != value:
        raise ValueError(f"{owner}: `{name}` must not be NaN.")
    bad_high = high is not None and (value > high if high_inclusive else value >= high)
    if (low is not None and value < low) or bad_high:
        if high is None:
            expected = f">= {low}"
        elif low is None:
            expected = f"<= {high}" if high_inclusive else f"< {high}"
        else:
            expected = f"in [{low}, {high}{']' if high_inclusive else ')'}"
        raise ValueError(f"{owner}: `{name}` must be {expected}, got {value}.")
    return value


def check_choice(owner: str, name: str, value, choices):
    """Return ``value`` if it is one of ``choices``, else raise listing them."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{owner}: unknown `{name}` {value!r}. Expected one of: {listed}.")
    return value
