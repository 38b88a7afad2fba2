"""The layers the zoo adds: convolutions, pooling, Attention, Seq2Seq, Parallel."""

import numpy as np
import pytest
import torch

import lstmkit
from lstmkit.layers import (Attention, Conv1D, Conv2D, Dense, GlobalAveragePooling1D, GlobalMaxPooling1D,
                            MaxPooling1D, MaxPooling2D, Parallel, RepeatVector, Seq2Seq, TimeDistributed,
                            deserialize, serialize)


def roundtrip(layer):
    return deserialize(serialize(layer))


def test_conv1d_matches_torch_and_pads_causally():
    torch.manual_seed(0)
    layer = Conv1D(4, 3, input_size=2)
    x = torch.randn(5, 9, 2)
    ref = torch.nn.functional.conv1d(x.transpose(1, 2), layer.weight, layer.bias).transpose(1, 2)
    torch.testing.assert_close(layer(x), ref)
    causal = Conv1D(4, 3, padding="causal", input_size=2)
    y = causal(x)
    x2 = x.clone()
    x2[:, 5:] = 7.0  # changing the future must not change the past
    torch.testing.assert_close(causal(x2)[:, :5], y[:, :5])
    assert Conv1D(4, 4, strides=2, padding="same")(x).shape == (5, 5, 4)


def test_conv2d_channels_last_and_pooling():
    layer = Conv2D(3, (3, 2), input_size=1)
    x = torch.randn(2, 6, 5, 1)
    ref = torch.nn.functional.conv2d(x.permute(0, 3, 1, 2), layer.weight, layer.bias).permute(0, 2, 3, 1)
    torch.testing.assert_close(layer(x), ref)
    assert MaxPooling2D(2)(layer(x)).shape == (2, 2, 2, 3)
    assert MaxPooling1D(3)(torch.zeros(2, 9, 4)).shape == (2, 3, 4)


def test_global_pooling_respects_mask():
    x = torch.tensor([[[1.0], [5.0], [100.0]]])
    mask = torch.tensor([[True, True, False]])
    assert GlobalAveragePooling1D()(x, mask=mask).item() == 3.0
    assert GlobalMaxPooling1D()(x, mask=mask).item() == 5.0


@pytest.mark.parametrize("layer", [Conv1D(3, 2, padding="causal", activation="relu"), Conv2D(2, (3, 3)),
                                   MaxPooling1D(2), MaxPooling2D((2, 1)), GlobalAveragePooling1D(),
                                   Attention("additive", units=4), Seq2Seq(5, 6, 2, units=4, attention="dot"),
                                   Parallel([[RepeatVector(2)], [RepeatVector(3)]])])
def test_config_round_trip(layer):
    assert roundtrip(layer).get_config() == layer.get_config()


def test_conv_errors_name_the_argument():
    with pytest.raises(ValueError, match="Conv1D: unknown `padding` 'full'"):
        Conv1D(2, 3, padding="full")
    with pytest.raises(ValueError, match="fewer than `kernel_size`=5"):
        Conv1D(2, 5)(torch.zeros(1, 3, 1))
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, time, channels\) with 2 channels"):
        Conv1D(2, 1, input_size=2)(torch.zeros(1, 3, 1))
    with pytest.raises(ValueError, match="padding='same' needs `strides`=1"):
        Conv2D(2, 3, strides=2, padding="same")


def test_attention_weights_are_a_distribution_and_mask_works():
    torch.manual_seed(0)
    for score in ("dot", "general", "additive"):
        att = Attention(score)
        q, k = torch.randn(3, 2, 4), torch.randn(3, 5, 4)
        mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2, [True, True, False, False, False]])
        context, weights = att(q, k, mask=mask)
        torch.testing.assert_close(weights.sum(-1), torch.ones(3, 2))
        assert float(weights[1, :, 3:].detach().abs().max()) == 0.0
        torch.testing.assert_close(context, weights @ k)


def test_attention_over_one_step_is_refused():
    with pytest.raises(ValueError, match="`keys` has 1 time step; attention needs at least 2"):
        Attention("dot")(torch.zeros(1, 2, 3), torch.zeros(1, 1, 3))
    with pytest.raises(ValueError, match="'dot' score needs queries and keys of one size"):
        Attention("dot")(torch.zeros(1, 2, 3), torch.zeros(1, 4, 5))


def test_seq2seq_layer_errors():
    with pytest.raises(ValueError, match=r"`out_steps` \(the decoder length\) must be >= 1, got 0"):
        Seq2Seq(5, 5, 0)
    layer = Seq2Seq(5, 5, out_steps=3, units=4, attention="additive")
    with pytest.raises(ValueError, match=r"leaves 1 source steps after the 3 target steps; expected at least 2 \(attention needs"):
        layer(torch.tensor([[1, 2, 3, 4]]))
    with pytest.raises(ValueError, match=r"source ids must lie in \[0, 4\] \(`input_dim`=5\), got values in \[1, 9\]"):
        layer(torch.tensor([[1, 9, 3, 1, 2, 3]]))
    with pytest.raises(TypeError, match="expected integer ids"):
        layer(torch.zeros(1, 6))


def test_seq2seq_training_mode_uses_the_target_and_eval_mode_ignores_it():
    torch.manual_seed(0)
    layer = Seq2Seq(6, 6, out_steps=3, units=8, attention="dot")
    a, b = torch.tensor([[1, 2, 3, 4, 1, 1, 1]]), torch.tensor([[1, 2, 3, 4, 5, 2, 3]])
    assert not torch.allclose(layer.train()(a), layer.train()(b))
    torch.testing.assert_close(layer.eval()(a), layer.eval()(b))
    assert layer.last_attention.shape == (1, 3, 4)


def test_sequential_with_new_layers_saves_and_loads(tmp_path):
    model = lstmkit.Sequential([TimeDistributed(Conv2D(2, 3, activation="relu")), TimeDistributed(MaxPooling2D(2)),
                                TimeDistributed(lstmkit.layers.Flatten()), lstmkit.layers.LSTM(4), Dense(2)],
                               input_shape=(3, 8, 8, 1))
    x = np.random.default_rng(0).random((2, 3, 8, 8, 1)).astype("float32")
    same = lstmkit.load_model(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(same.predict(x), model.predict(x))
