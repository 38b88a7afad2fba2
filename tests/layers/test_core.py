"""The non-recurrent layers: shapes, masks, config round trips and error messages."""

import pytest
import torch

from lstmkit.layers import (Activation, Dense, Dropout, Embedding, Flatten, Masking, RepeatVector,
                            TimeDistributed, deserialize, serialize)

ALL = [
    lambda: Dense(3, activation="relu", input_size=4),
    lambda: Activation("softmax"),
    lambda: Dropout(0.25),
    lambda: Flatten(),
    lambda: RepeatVector(3),
    lambda: TimeDistributed(Dense(2, input_size=4)),
    lambda: Masking(-1.0),
    lambda: Embedding(10, 4, mask_zero=True),
]


@pytest.mark.parametrize("make", ALL)
def test_config_round_trip(make):
    layer = make()
    spec = serialize(layer)
    again = deserialize(spec)
    assert type(again) is type(layer)
    assert again.get_config() == layer.get_config()


def test_dense_works_on_the_last_axis_and_builds_lazily():
    layer = Dense(3)
    assert not layer.built
    y = layer(torch.randn(2, 5, 4))
    assert layer.built and layer.weight.shape == (3, 4) and y.shape == (2, 5, 3)
    step = layer(torch.randn(2, 4))
    assert step.shape == (2, 3)
    with pytest.raises(ValueError, match=r"Dense: expected input of shape \(batch, \.\.\., 4\), got \(2, 5\)"):
        layer(torch.randn(2, 5))


def test_dense_matches_linear_and_keras_initialisation():
    torch.manual_seed(0)
    layer = Dense(3, input_size=4)
    assert torch.equal(layer.bias, torch.zeros(3))  # Keras: zero bias
    bound = (6 / (3 + 4)) ** 0.5  # Glorot uniform
    assert layer.weight.abs().max() <= bound
    x = torch.randn(5, 4)
    assert torch.allclose(layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias))


def test_dense_and_activation_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"Dense: unknown `activation` 'relux'. Expected one of: 'linear', 'relu'"):
        Dense(2, activation="relux")
    with pytest.raises(TypeError, match=r"Dense: `units` must be an integer, got 2.5"):
        Dense(2.5)
    with pytest.raises(ValueError, match=r"Dense: `units` must be >= 1, got 0"):
        Dense(0)
    with pytest.raises(TypeError, match=r"Activation: `activation` must be a name such as 'relu' or None"):
        Activation(torch.relu)


def test_activation_softmax_is_over_the_last_axis():
    y = Activation("softmax")(torch.randn(2, 3, 4))
    assert torch.allclose(y.sum(-1), torch.ones(2, 3))


def test_dropout_is_identity_in_eval_and_scales_in_training():
    layer = Dropout(0.5)
    x = torch.ones(1000)
    layer.eval()
    assert torch.equal(layer(x), x)
    layer.train()
    y = layer(x)
    assert set(y.unique().tolist()) <= {0.0, 2.0}
    with pytest.raises(ValueError, match=r"Dropout: `rate` must be in \[0.0, 1.0\), got 1.0"):
        Dropout(1.0)


def test_flatten_and_repeat_vector_drop_the_mask():
    x = torch.randn(2, 3, 4)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    assert Flatten()(x).shape == (2, 12)
    assert Flatten().compute_mask(x, mask) is None
    r = RepeatVector(5)(torch.randn(2, 4))
    assert r.shape == (2, 5, 4)
    assert RepeatVector(5).compute_mask(x, mask) is None
    with pytest.raises(ValueError, match=r"RepeatVector: expected input of shape \(batch, features\), got \(2, 3, 4\)"):
        RepeatVector(2)(x)


def test_time_distributed_applies_one_layer_to_every_step():
    dense = Dense(2, input_size=4)
    td = TimeDistributed(dense)
    x = torch.randn(3, 5, 4)
    y = td(x)
    assert y.shape == (3, 5, 2)
    assert torch.allclose(y[:, 1], dense(x[:, 1]))
    with pytest.raises(TypeError, match=r"TimeDistributed: `layer` must be a layer, got int"):
        TimeDistributed(3)


def test_masking_marks_steps_where_every_feature_equals_the_mask_value():
    x = torch.tensor([[[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]],
                      [[-1.0, -1.0], [0.0, 0.0], [0.0, 0.0]]])
    layer = Masking(0.0)
    assert layer.compute_mask(x, None).tolist() == [[True, False, True], [True, False, False]]
    m = Masking(-1.0)
    out = m(x)
    assert m.compute_mask(x, None).tolist() == [[True, True, True], [False, True, True]]
    assert torch.equal(out[1, 0], torch.zeros(2))  # masked steps are zeroed, as in Keras


def test_masking_with_nan_points_to_mark_missing():
    with pytest.raises(ValueError, match=r"mask_value.*NaN.*mark_missing"):
        Masking(float("nan"))


def test_embedding_ids_mask_and_errors():
    emb = Embedding(6, 3, mask_zero=True)
    ids = torch.tensor([[1, 2, 0, 0], [5, 0, 0, 0]])
    out = emb(ids)
    assert out.shape == (2, 4, 3)
    assert torch.equal(out[0, 0], emb.weight[1])
    assert emb.compute_mask(ids, None).tolist() == [[True, True, False, False], [True, False, False, False]]
    assert emb.weight.abs().max() <= 0.05  # Keras: uniform(-0.05, 0.05)
    assert Embedding(6, 3).compute_mask(ids, None) is None
    with pytest.raises(ValueError, match=r"Embedding: ids must be in \[0, 5\] \(`input_dim`=6\), got values in \[0, 6\]"):
        emb(torch.tensor([[6, 0]]))
    with pytest.raises(TypeError, match=r"Embedding: expected integer ids \(an int64 tensor\), got torch.float32"):
        emb(torch.zeros(1, 2))
