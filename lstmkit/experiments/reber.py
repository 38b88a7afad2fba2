"""Embedded Reber grammar (Hochreiter & Schmidhuber 1997, section 5.1, Experiment 1).

Reber's grammar is a small finite-state machine over the symbols ``B T P S X V E``; every
branch is taken with probability 0.5. An *embedded* Reber string is ``B``, then ``T`` or ``P``
(p = 0.5), then a whole Reber string, then the same ``T`` or ``P`` again, then ``E``. The net
reads one symbol at a time (one-hot, 7 inputs) and predicts the next one (7 outputs); to predict
the second-to-last symbol it must remember the second one across the whole inner string.

Criterion (the paper's): a set of 256 training strings and a separate set of 256 test strings;
solved when, at every step of every string of both sets, the outputs of *all* legal next symbols
are larger than the outputs of all illegal ones. "Sequences to success" counts training strings
presented until then. The training target at each step is the symbol that actually comes next
(one-hot), as in the paper.

>>> rng = np.random.default_rng(0)
>>> s = embedded_string(rng)
>>> s[0], s[1] == s[-2], s[-1]
('B', True, 'E')
>>> next_symbols("BTBTXSETE")
['TP', 'B', 'TP', 'SX', 'XS', 'E', 'T', 'E', 'B']
"""

from __future__ import annotations

import time

import numpy as np
import torch

from lstmkit.experiments import _common as C

SYMBOLS = "BTPSXVE"
N_SYMBOLS = len(SYMBOLS)
_INDEX = {s: k for k, s in enumerate(SYMBOLS)}

# Reber's grammar as drawn by Cleeremans, Servan-Schreiber & McClelland (1989): state -> its two
# branches (symbol, next state). State 0 follows the initial B; reaching state 5 means E comes next.
GRAPH = {
    0: (("T", 1), ("P", 2)),
    1: (("S", 1), ("X", 3)),
    2: (("T", 2), ("V", 4)),
    3: (("X", 2), ("S", 5)),
    4: (("P", 3), ("V", 5)),
}
_END = 5

PAPER = {
    "source": "Hochreiter & Schmidhuber 1997, Table 1",
    "rows": [("RTRL", "some fraction", "173,000 (3 units) / 25,000 (12 units)"),
             ("Elman net", "0%", "> 200,000"), ("recurrent cascade-correlation", "50%", "182,000"),
             ("LSTM 4 blocks x 1 cell, lr 0.1", "100%", "39,740"),
             ("LSTM 3 blocks x 2 cells, lr 0.1", "100%", "21,730"),
             ("LSTM 3 blocks x 2 cells, lr 0.5", "100%", "8,440")],
}
DEFAULTS = dict(units=8, learning_rate=0.01, batch_size=16, n_train=256, n_test=256,
                max_sequences=100_000, check_every=256)
QUICK = dict(max_sequences=60_000)


def reber_string(rng: np.random.Generator) -> str:
    """One string of Reber's grammar: ``B``, a walk through :data:`GRAPH`, ``E``."""
    out, state = ["B"], 0
    while state != _END:
        symbol, state = GRAPH[state][int(rng.integers(2))]
        out.append(symbol)
    out.append("E")
    return "".join(out)


def embedded_string(rng: np.random.Generator) -> str:
    """``B``, ``T`` or ``P``, a Reber string, the same ``T`` or ``P``, ``E``."""
    c = "TP"[int(rng.integers(2))]
    return "B" + c + reber_string(rng) + c + "E"


def next_symbols(string: str) -> list[str]:
    """For each position k of an embedded Reber string: the symbols that may legally follow ``string[:k+1]``.

    The last entry (after the final ``E``) is ``"B"``: in a continual stream the next string starts.
    Raises ValueError if ``string`` is not an embedded Reber string.
    """
    if len(string) < 9 or string[0] != "B" or string[1] not in "TP" or string[-2] != string[1] or string[-1] != "E":
        raise ValueError(f"next_symbols: `string` {string!r} is not an embedded Reber string "
                         "(B, T|P, a Reber string, the same T|P, E).")
    inner = string[2:-2]
    if inner[0] != "B" or inner[-1] != "E":
        raise ValueError(f"next_symbols: the inner string {inner!r} must start with B and end with E.")
    sets = ["TP", "B"]
    state = 0
    sets.append("".join(s for s, _ in GRAPH[0]))  # after the inner B
    for symbol in inner[1:-1]:
        branches = dict(GRAPH.get(state, ()))
        if symbol not in branches:
            raise ValueError(f"next_symbols: {symbol!r} cannot follow state {state} in {string!r}.")
        state = branches[symbol]
        sets.append("E" if state == _END else "".join(s for s, _ in GRAPH[state]))
    if state != _END:
        raise ValueError(f"next_symbols: the inner string {inner!r} stops before the grammar's end.")
    sets += [string[1], "E", "B"]
    return sets


def encode(string: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs ``(L-1, 7)`` (every symbol but the last), one-hot targets ``(L-1, 7)`` (the next
    symbol) and the legal-next masks ``(L-1, 7)`` bool, for a string of length L."""
    ids = [_INDEX[s] for s in string]
    legal = np.zeros((len(string) - 1, N_SYMBOLS), dtype=bool)
    for k, allowed in enumerate(next_symbols(string)[:-1]):
        legal[k, [_INDEX[s] for s in allowed]] = True
    return C.one_hot(ids[:-1], N_SYMBOLS), C.one_hot(ids[1:], N_SYMBOLS), legal


def make_set(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` embedded Reber strings."""
    return [embedded_string(rng) for _ in range(n)]


def pad(arrays: list[np.ndarray]) -> np.ndarray:
    """Stack ``(L_k, F)`` arrays into ``(B, max L, F)``, zeros after each one's end."""
    T = max(a.shape[0] for a in arrays)
    out = np.zeros((len(arrays), T, arrays[0].shape[1]), dtype=arrays[0].dtype)
    for k, a in enumerate(arrays):
        out[k, :a.shape[0]] = a
    return out


def strings_correct(outputs: list[np.ndarray], legal: list[np.ndarray]) -> np.ndarray:
    """Per string: at every step, every legal symbol's output exceeds every illegal symbol's.

    >>> out = [np.array([[0.4, 0.3, 0.3, 0, 0, 0, 0]])]
    >>> ok = [np.array([[False, True, True, False, False, False, False]])]
    >>> strings_correct(out, ok).tolist()
    [False]
    """
    result = []
    for out, ok in zip(outputs, legal):
        lowest_legal = np.where(ok, out, np.inf).min(-1)
        highest_illegal = np.where(ok, -np.inf, out).max(-1)
        result.append(bool((lowest_legal > highest_illegal).all()))
    return np.array(result)


def trial(cell: str, seed: int, settings: dict, verbose: bool = True) -> dict:
    """Train one network from ``seed`` until both sets are predicted correctly (or the budget ends)."""
    rng, start = C.start_trial(seed)
    s = settings
    train_set, test_set = make_set(s["n_train"], rng), make_set(s["n_test"], rng)
    train_enc, test_enc = [encode(x) for x in train_set], [encode(x) for x in test_set]
    loss = C.RecordingLoss("categorical")
    model = C.build_network(cell, N_SYMBOLS, N_SYMBOLS, units=s["units"], activation="softmax", loss=loss,
                            learning_rate=s["learning_rate"], return_sequences=True)
    order: list[int] = []
    state = {"since_check": 0, "train_ok": 0, "test_ok": 0}

    def draw():
        if len(order) < s["batch_size"]:
            order.extend(rng.permutation(len(train_enc)).tolist())
        idx = [order.pop() for _ in range(s["batch_size"])]
        return (torch.from_numpy(pad([train_enc[k][0] for k in idx])),
                torch.from_numpy(pad([train_enc[k][1] for k in idx])))

    def evaluate(encoded) -> int:
        outputs = C.predict_all(model, [e[0] for e in encoded])
        return int(strings_correct(outputs, [e[2] for e in encoded]).sum())

    def judge(_outputs, batch) -> bool:
        state["since_check"] += batch[0].shape[0]
        if state["since_check"] < s["check_every"]:
            return False
        state["since_check"] = 0
        state["train_ok"] = evaluate(train_enc)
        if state["train_ok"] < len(train_enc):
            return False
        state["test_ok"] = evaluate(test_enc)
        return state["test_ok"] == len(test_enc)

    met, seen = C.train_online(model, loss, draw, judge, max_sequences=s["max_sequences"],
                               desc=f"reber {cell} seed {seed}", verbose=verbose)
    train_ok, test_ok = evaluate(train_enc), evaluate(test_enc)
    return {"solved": bool(met), "sequences": seen if met else None, "sequences_seen": seen,
            "train_wrong": len(train_enc) - train_ok, "test_wrong": len(test_enc) - test_ok,
            "test_total": len(test_enc), "seconds": time.perf_counter() - start}
