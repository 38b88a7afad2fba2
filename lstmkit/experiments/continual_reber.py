"""Continual embedded Reber grammar (Gers, Schmidhuber & Cummins 2000, "Learning to Forget").

Embedded Reber strings (:mod:`lstmkit.experiments.reber`) follow one another in a single
stream, with no reset of the network's state between them. At every step the net reads a symbol
and predicts *all* symbols that may legally come next: the target is 1 for each legal next
symbol and 0 for the others (after a string's final ``E`` the next string's ``B``). A prediction
is correct when every output's absolute error is below 0.49.

Protocol (the paper's, batched): a training stream ends at its first wrong prediction or after
``stream_symbols`` symbols (paper: 10^6); the network's state is then reset and a new stream
begins. ``batch_size`` streams run side by side, trained with truncated BPTT: one update per
``chunk`` symbols, the state carried across chunks (a stateful model and the library's ``fit``);
a stream that erred inside a chunk ends at the end of that chunk. From time to time the network
is tested on 10 fresh streams of ``test_symbols`` symbols each (paper: 10^6), from a zero state,
never reset; a network that predicts all of them without a single error is a *perfect solution*.
The paper's comparison: the 1997 LSTM (``cell="lstm1997"``, no forget gate) almost never solves
this without external resets, the forget-gate LSTM often does.

>>> s = Stream(np.random.default_rng(0))
>>> ids, legal = s.take(12)
>>> SYMBOLS[ids[0]], legal.shape, bool(legal[np.arange(11), ids[1:]].all())
('B', (12, 7), True)
"""

from __future__ import annotations

import time

import numpy as np
import torch

from lstmkit._validation import check_int
from lstmkit.experiments import _common as C
from lstmkit.experiments.reber import N_SYMBOLS, SYMBOLS, embedded_string, next_symbols

_INDEX = {s: k for k, s in enumerate(SYMBOLS)}

PAPER = {
    "source": "Gers, Schmidhuber & Cummins 2000, Table 2 (100 networks, 4 blocks x 2 cells)",
    "rows": [("1997 LSTM, external resets at string boundaries", "74%"), ("1997 LSTM, no resets", "about 0%"),
             ("forget-gate LSTM", "18%"), ("forget-gate LSTM, learning-rate decay", "62%")],
}
DEFAULTS = dict(units=8, learning_rate=0.01, batch_size=16, chunk=50, forget_bias=None,
                stream_symbols=1_000_000, test_streams=10, test_symbols=100_000, check_every=100,
                max_symbols=8_000_000)
QUICK = dict(test_symbols=10_000, max_symbols=4_000_000)
ERROR = 0.49


def check(settings: dict) -> dict:
    for key in ("chunk", "stream_symbols", "test_streams", "test_symbols", "check_every", "max_symbols"):
        settings[key] = check_int("experiment continual-reber", key, settings[key], minimum=1)
    return settings


_CACHE: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def encode_string(string: str) -> tuple[np.ndarray, np.ndarray]:
    """Symbol ids ``(L,)`` and the legal-next masks ``(L, 7)`` (bool) of one embedded string."""
    if string not in _CACHE:
        legal = np.zeros((len(string), N_SYMBOLS), dtype=bool)
        for k, allowed in enumerate(next_symbols(string)):
            legal[k, [_INDEX[s] for s in allowed]] = True
        _CACHE[string] = (np.array([_INDEX[s] for s in string]), legal)
    return _CACHE[string]


class Stream:
    """An endless stream of embedded Reber strings: ``take(n)`` gives the next n symbol ids and,
    for each, the symbols that may legally follow it. ``restart()`` drops the rest of the current
    string, so that the next symbol taken begins a new string."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.ids: list[np.ndarray] = []
        self.legal: list[np.ndarray] = []
        self.buffered = 0

    def restart(self) -> None:
        self.ids, self.legal, self.buffered = [], [], 0

    def take(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        while self.buffered < n:
            ids, legal = encode_string(embedded_string(self.rng))
            self.ids.append(ids)
            self.legal.append(legal)
            self.buffered += len(ids)
        ids, legal = np.concatenate(self.ids), np.concatenate(self.legal)
        self.ids, self.legal, self.buffered = [ids[n:]], [legal[n:]], len(ids) - n
        return ids[:n], legal[:n]


def wrong_steps(outputs: np.ndarray, legal: np.ndarray) -> np.ndarray:
    """``(..., T)`` bool: True where some output is 0.49 or more away from its 0/1 target."""
    return (np.abs(outputs - legal) >= ERROR).any(-1)


def test_streams(model, n_streams: int, symbols: int, rng: np.random.Generator, chunk: int = 1000) -> list[int]:
    """Run ``n_streams`` fresh streams of ``symbols`` symbols from a zero state, never reset.

    Returns, per stream, the number of symbols predicted correctly before the first error
    (``symbols`` when there was none).
    """
    layer, head = model.layers[0], model.layers[1]
    saved = layer.states
    streams = [Stream(rng) for _ in range(n_streams)]
    first_error = [symbols] * n_streams
    eye = np.eye(N_SYMBOLS, dtype=np.float32)
    was_training = model.training
    model.eval()
    state = None
    try:
        with torch.no_grad():
            for begin in range(0, symbols, chunk):
                n = min(chunk, symbols - begin)
                parts = [s.take(n) for s in streams]
                x = torch.from_numpy(eye[np.stack([p[0] for p in parts])])
                if state is None:
                    state = layer.cell.initial_state(n_streams, x.dtype)
                out = head(layer(x, initial_state=state)).numpy()
                state = layer.states
                wrong = wrong_steps(out, np.stack([p[1] for p in parts]))
                for k in range(n_streams):
                    if first_error[k] == symbols and wrong[k].any():
                        first_error[k] = begin + int(np.argmax(wrong[k]))
                if all(e < symbols for e in first_error):
                    break
    finally:
        layer.states = saved
        model.train(was_training)
    return first_error


def trial(cell: str, seed: int, settings: dict, verbose: bool = True) -> dict:
    """Train one network from ``seed`` until it passes the test streams (or the budget ends)."""
    rng, start = C.start_trial(seed)
    s = settings
    B, K = s["batch_size"], s["chunk"]
    loss = C.RecordingLoss("binary")
    model = C.build_network(cell, N_SYMBOLS, N_SYMBOLS, units=s["units"], activation="sigmoid", loss=loss,
                            learning_rate=s["learning_rate"], return_sequences=True, batch_size=B,
                            stateful=True, forget_bias=s["forget_bias"])
    layer = model.layers[0]
    streams = [Stream(rng) for _ in range(B)]
    length = np.zeros(B, dtype=np.int64)  # symbols in each row's current stream
    eye = np.eye(N_SYMBOLS, dtype=np.float32)
    seen, n_streams, updates, solved, best = 0, B, 0, False, []
    clean_since_check = np.ones(B, dtype=bool)
    with C.progress(s["max_symbols"], f"continual-reber {cell} seed {seed}", verbose) as bar:
        while seen < s["max_symbols"]:
            parts = [st.take(K) for st in streams]
            x = torch.from_numpy(eye[np.stack([p[0] for p in parts])])
            y = torch.from_numpy(np.stack([p[1] for p in parts]).astype(np.float32))
            model.fit(x, y, batch_size=B, epochs=1, verbose=0, shuffle=False)
            updates += 1
            seen += B * K
            bar.update(B * K)
            length += K
            ended = wrong_steps(loss.last.numpy(), y.numpy()).any(-1)
            clean_since_check &= ~ended
            ended |= length >= s["stream_symbols"]
            if ended.any():
                # zero the ended streams' rows of every state tensor: (h, c) for an LSTM, (h,) else
                keep = torch.from_numpy(~ended).to(layer.states[0].dtype)[:, None]
                layer.states = tuple(s * keep for s in layer.states)
                for k in np.flatnonzero(ended):
                    streams[k].restart()
                length[ended] = 0
                n_streams += int(ended.sum())
            if updates % s["check_every"] == 0:
                if clean_since_check.any():
                    best = test_streams(model, s["test_streams"], s["test_symbols"], rng)
                    if min(best) == s["test_symbols"]:
                        solved = True
                        break
                clean_since_check[:] = True
    final = best if solved else test_streams(model, s["test_streams"], s["test_symbols"], rng)
    return {"solved": solved, "sequences": n_streams if solved else None, "sequences_seen": n_streams,
            "symbols_seen": seen, "test_wrong": sum(e < s["test_symbols"] for e in final),
            "test_total": s["test_streams"], "test_symbols_before_error": final,
            "seconds": time.perf_counter() - start}
