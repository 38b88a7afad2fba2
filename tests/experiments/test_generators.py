"""Every generator gives exactly what its task promises (Hochreiter & Schmidhuber 1997; Gers et al. 2000)."""

import re

import numpy as np
import pytest

from lstmkit.experiments import adding, continual_reber, long_lag, reber, temporal_order

# Reber's grammar written independently of lstmkit.experiments.reber.GRAPH, as a regular expression:
# from the node after "TS*X" or "PT*VP", loop (X T* V P)*, then leave with S or X T* V V.
_TAIL = "(?:XT*VP)*(?:S|XT*VV)"
REBER = f"B(?:TS*X{_TAIL}|PT*V(?:V|P{_TAIL}))E"
EMBEDDED = re.compile(f"B(?:T{REBER}T|P{REBER}P)E")


def test_regex_knows_the_textbook_strings():
    for s in ("BTSSXXTVVE", "BPVVE", "BTXSE", "BPTVPSE", "BTSXXVPSE"):
        assert re.fullmatch(REBER, s), s
    for s in ("BTSSXXTVE", "BPVE", "BTXE", "BTSSE"):
        assert not re.fullmatch(REBER, s), s


def test_every_embedded_string_is_accepted_by_the_grammar():
    rng = np.random.default_rng(0)
    strings = reber.make_set(3000, rng)
    assert all(EMBEDDED.fullmatch(s) for s in strings)
    assert all(s[1] == s[-2] for s in strings)
    share_t = np.mean([s[1] == "T" for s in strings])
    assert 0.45 < share_t < 0.55
    assert min(map(len, strings)) == 9


def test_next_symbols_known_answers():
    def sets(string):
        return [set(x) for x in reber.next_symbols(string)]

    assert sets("BPBPVVEPE") == [set(x) for x in ["TP", "B", "TP", "TV", "PV", "E", "P", "E", "B"]]
    assert sets("BTBTSSXXTVVETE") == [set(x) for x in ["TP", "B", "TP", "SX", "SX", "SX", "SX", "TV", "TV", "PV",
                                                      "E", "T", "E", "B"]]


def test_next_symbols_contain_the_actual_next_symbol_and_accept_only_grammar_strings():
    rng = np.random.default_rng(1)
    for s in reber.make_set(500, rng):
        sets = reber.next_symbols(s)
        assert len(sets) == len(s)
        assert all(s[k + 1] in sets[k] for k in range(len(s) - 1))
    for bad in ("BTBTXSEPE", "BTBTXXEPE", "BTBTXSTE", "BTSXSE"):
        with pytest.raises(ValueError, match="next_symbols"):
            reber.next_symbols(bad)


def test_reber_encoding_shapes_and_targets():
    x, y, legal = reber.encode("BTBTXSETE")
    assert x.shape == y.shape == legal.shape == (8, 7)
    assert (x.argmax(1)[1:] == y.argmax(1)[:-1]).all()
    assert legal[np.arange(8), y.argmax(1)].all()
    assert legal.sum(1).tolist() == [2, 1, 2, 2, 2, 1, 1, 1]


@pytest.mark.parametrize("p", [4, 100])
def test_lag_2a_is_exactly_the_two_sequences(p):
    ids = long_lag.sequences(400, p, False, np.random.default_rng(0))
    assert ids.shape == (400, p + 1)
    assert set(map(tuple, ids.tolist())) == {(k, *range(2, p + 1), k) for k in (0, 1)}
    x, y = long_lag.make_batch(5, p, False, np.random.default_rng(0))
    assert x.shape == y.shape == (5, p, p + 1)
    assert (x.argmax(-1)[:, 1:] == y.argmax(-1)[:, :-1]).all()


def test_lag_2b_random_middle():
    p = 100
    ids = long_lag.sequences(300, p, True, np.random.default_rng(0))
    assert (ids[:, 0] == ids[:, -1]).all() and set(ids[:, 0]) == {0, 1}
    middle = ids[:, 1:-1]
    assert middle.min() >= 2 and middle.max() <= p
    assert len(set(map(tuple, middle.tolist()))) == 300  # no local regularity
    assert len(np.unique(middle)) == p - 1


@pytest.mark.parametrize("T", [100, 500])
def test_adding_markers_lengths_and_targets(T):
    rng = np.random.default_rng(0)
    saw_first_marked = False
    for _ in range(400):
        x, target = adding.sequence(T, rng)
        L = len(x)
        values, markers = x[:, 0], x[:, 1]
        assert T <= L <= T + T // 10
        assert np.all(np.abs(values) <= 1.0)
        assert markers[-1] == -1.0
        assert set(np.unique(markers)) <= {-1.0, 0.0, 1.0}
        marked = np.flatnonzero(markers == 1.0)
        assert len(marked) == 2
        first, second = marked if markers[0] != 1.0 or marked[0] == 0 else marked
        assert first < 10
        if first == 0:
            saw_first_marked = True
            assert values[0] == 0.0
        else:
            assert markers[0] == -1.0
        # X2 is one of the first T/2 - 1 pairs that had no marker: the pair at index 0 carries
        # one, so X2 lies in [1, T/2 - 1], shifted by one when X1 lies before it.
        assert 1 <= second <= T // 2 - 1 + (first < second and first > 0)
        assert abs(target - (0.5 + (values[first] + values[second]) / 4)) < 1e-6
        assert 0.0 <= target <= 1.0
    assert saw_first_marked


def test_adding_batch_shares_one_length():
    x, y = adding.make_batch(16, 100, np.random.default_rng(3))
    assert x.shape[0] == 16 and 100 <= x.shape[1] <= 110 and y.shape == (16, 1)


def test_temporal_order_positions_and_labels():
    rng = np.random.default_rng(0)
    X, Y = temporal_order.SYMBOLS.index("X"), temporal_order.SYMBOLS.index("Y")
    labels = []
    for _ in range(1000):
        ids, label = temporal_order.sequence(rng)
        assert 100 <= len(ids) <= 110
        assert temporal_order.SYMBOLS[ids[0]] == "E" and temporal_order.SYMBOLS[ids[-1]] == "B"
        where = np.flatnonzero((ids == X) | (ids == Y))
        assert len(where) == 2
        t1, t2 = where + 1  # times counted from 1
        assert 10 <= t1 <= 20 and 50 <= t2 <= 60
        order = "".join("X" if ids[t] == X else "Y" for t in where)
        assert temporal_order.CLASSES[label] == order
        rest = np.delete(ids, [0, len(ids) - 1, *where])
        assert rest.max() <= 3  # a, b, c, d
        labels.append(label)
    assert set(labels) == {0, 1, 2, 3}


def test_continual_stream_is_grammar_strings_back_to_back():
    stream = continual_reber.Stream(np.random.default_rng(0))
    ids, legal = stream.take(5000)
    text = "".join(reber.SYMBOLS[i] for i in ids)
    strings = re.findall(r"B[TP]B.*?E[TP]E", text)
    assert all(EMBEDDED.fullmatch(s) for s in strings)
    assert len("".join(strings)) >= len(text) - 40  # only the cut-off last string is missing
    assert legal[np.arange(4999), ids[1:]].all()  # the actual next symbol is always legal
    ends = np.flatnonzero(ids[:-1] == reber.SYMBOLS.index("E"))
    after_final_e = [k for k in ends if legal[k].sum() == 1 and legal[k, 0]]
    assert after_final_e and all(ids[k + 1] == 0 for k in after_final_e)  # next string's B
    stream.take(3)
    stream.restart()
    again, _ = stream.take(2)
    assert reber.SYMBOLS[again[0]] == "B" and reber.SYMBOLS[again[1]] in "TP"


def test_legal_sets_match_what_the_grammar_produces():
    # Every short prefix extended by a legal symbol occurs in some generated string, and none
    # extended by an illegal one does (with 5,000 strings every prefix of up to 7 symbols occurs).
    rng = np.random.default_rng(2)
    strings = reber.make_set(5000, rng)
    prefixes = {s[:k] for s in strings for k in range(1, 8)}
    for s in strings[:300]:
        for k, allowed in enumerate(reber.next_symbols(s)[:6]):
            for symbol in reber.SYMBOLS:
                assert (s[:k + 1] + symbol in prefixes) == (symbol in allowed), (s[:k + 1], symbol)
