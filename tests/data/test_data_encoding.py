"""Integer / one-hot encoders and the character vocabulary."""

import json

import numpy as np
import pytest

from lstmkit.data import CharVocabulary, IntegerEncoder, OneHotEncoder
from lstmkit.errors import NotFittedError


def test_integer_encoder_learns_a_sorted_alphabet():
    enc = IntegerEncoder().fit("cab", "bad")
    assert enc.alphabet_ == ("a", "b", "c", "d")
    assert enc.encode("dab").tolist() == [3, 0, 1]
    assert enc.encode("dab").dtype == np.int64
    assert enc.decode(np.array([3, 0, 1])) == ["d", "a", "b"]
    assert len(enc) == enc.size == 4


def test_integer_encoder_symbols_of_any_hashable_type():
    enc = IntegerEncoder().fit([10, 30, 20, 10])
    assert enc.alphabet_ == (10, 20, 30)
    mixed = IntegerEncoder().fit(["b", 1, "a", 1])  # unorderable: first-seen order
    assert mixed.alphabet_ == ("b", 1, "a")
    assert mixed.decode(mixed.encode([1, "a"])) == [1, "a"]


def test_given_alphabet_needs_no_fit_and_keeps_its_order():
    enc = IntegerEncoder(alphabet="zyx")
    assert enc.encode("xyz").tolist() == [2, 1, 0]


def test_unknown_symbols_raise_by_default():
    enc = IntegerEncoder().fit("abc")
    with pytest.raises(ValueError, match=r"IntegerEncoder\.encode: symbol 'z' at position 2 of `sequence` is not "
                                         r"in the fitted alphabet of 3 symbols; refit including it, or create the "
                                         r"encoder with unknown='reserve' to map unknown symbols to index 0\."):
        enc.encode("abz")


def test_unknown_symbols_map_to_reserved_index_zero():
    enc = IntegerEncoder(unknown="reserve", unknown_token="<unk>").fit("abc")
    assert enc.size == 4
    assert enc.encode("azc").tolist() == [1, 0, 3]
    assert enc.decode([1, 0, 3]) == ["a", "<unk>", "c"]


def test_decode_rejects_out_of_range_and_non_integers():
    enc = IntegerEncoder().fit("ab")
    with pytest.raises(ValueError, match=r"IntegerEncoder\.decode: index 5 at position 1 of `indices` is outside "
                                         r"0\.\.1, the encoder's 2 indices\."):
        enc.decode([0, 5])
    with pytest.raises(TypeError, match=r"IntegerEncoder\.decode: `indices` must be integers, got dtype float64"):
        enc.decode([0.5])
    with pytest.raises(ValueError, match=r"IntegerEncoder\.decode: `indices` must be 1-D, got shape \(1, 2\)\."):
        enc.decode([[0, 1]])


def test_use_before_fit():
    with pytest.raises(NotFittedError, match=r"IntegerEncoder\.encode: the encoder has no alphabet yet; call "
                                             r"fit\(sequence\) first or pass `alphabet` to the constructor\."):
        IntegerEncoder().encode("a")
    with pytest.raises(NotFittedError, match=r"OneHotEncoder\.decode: the encoder has no alphabet yet"):
        OneHotEncoder().decode(np.eye(2))


def test_bad_constructor_and_fit_arguments():
    with pytest.raises(ValueError, match=r"IntegerEncoder: unknown `unknown` 'ignore'\. Expected one of: "
                                         r"'error', 'reserve'\."):
        IntegerEncoder(unknown="ignore")
    with pytest.raises(ValueError, match=r"IntegerEncoder: `alphabet` lists a symbol more than once"):
        IntegerEncoder(alphabet="aa")
    with pytest.raises(ValueError, match=r"IntegerEncoder\.fit: the sequences are empty; there is no alphabet"):
        IntegerEncoder().fit("")
    with pytest.raises(ValueError, match=r"IntegerEncoder\.fit: pass at least one sequence"):
        IntegerEncoder().fit()
    with pytest.raises(TypeError, match=r"IntegerEncoder\.fit: `sequences\[0\]` must be a sequence of symbols"):
        IntegerEncoder().fit(5)
    with pytest.raises(ValueError, match=r"IntegerEncoder\.encode: `sequence` must be one sequence \(1-D\), got "
                                         r"an array of shape \(2, 2\)"):
        IntegerEncoder().fit([1, 2]).encode(np.ones((2, 2)))


def test_one_hot_round_trip_and_shapes():
    enc = OneHotEncoder().fit("hello")
    onehot = enc.encode("hole")
    assert onehot.shape == (4, 4) and onehot.dtype == np.float32
    assert onehot.sum(axis=1).tolist() == [1, 1, 1, 1]
    assert enc.decode(onehot) == list("hole")
    batch = np.stack([enc.encode("he"), enc.encode("lo")])  # (B, T, V)
    assert enc.decode(batch) == [["h", "e"], ["l", "o"]]


def test_one_hot_decodes_scores_by_argmax():
    enc = OneHotEncoder(alphabet="abc")
    assert enc.decode(np.array([[0.2, 0.5, 0.3], [0.9, 0.05, 0.05]])) == ["b", "a"]


def test_one_hot_reserved_column_zero():
    enc = OneHotEncoder(unknown="reserve").fit("ab")
    assert enc.encode("az").tolist() == [[0, 1, 0], [1, 0, 0]]
    assert enc.decode(enc.encode("az")) == ["a", "<unk>"]


def test_one_hot_decode_wrong_width():
    enc = OneHotEncoder().fit("abc")
    with pytest.raises(ValueError, match=r"OneHotEncoder\.decode: `onehot` must have shape \(T, 3\) or "
                                         r"\(B, T, 3\), got \(2, 4\)\."):
        enc.decode(np.zeros((2, 4)))


def test_char_vocabulary_round_trips_text():
    text = "to be or not to be"
    vocab = CharVocabulary().fit(text)
    assert vocab.alphabet_ == (" ", "b", "e", "n", "o", "r", "t")
    assert vocab.decode(vocab.encode(text)) == text
    assert isinstance(vocab.decode([0]), str)


def test_char_vocabulary_unknown_characters():
    vocab = CharVocabulary(unknown="reserve").fit("abc")
    assert vocab.decode(vocab.encode("abz")) == "ab?"
    with pytest.raises(TypeError, match=r"CharVocabulary\.fit: `texts\[0\]` must be a string, got list\."):
        CharVocabulary().fit(["a", "b"])


def test_config_round_trips_through_json():
    for enc in (IntegerEncoder(unknown="reserve").fit("xyz"), OneHotEncoder().fit([1, 2, 3]),
                CharVocabulary().fit("hello")):
        config = json.loads(json.dumps(enc.get_config()))
        again = type(enc).from_config(config)
        assert again.alphabet_ == enc.alphabet_ and again.size == enc.size
        sample = enc.alphabet_[:2]
        assert np.array_equal(again.encode(sample), enc.encode(sample))
