"""compile(precision=...): autocast forward passes, float32 loss and weights."""

import numpy as np
import pytest
import torch

import lstmkit
from lstmkit.layers import LSTM, Dense


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6, 3)).astype(np.float32)
    return x, x.sum(axis=(1, 2))[:, None] / 4


def test_bf16_trains_with_float32_weights_and_loss():
    lstmkit.set_seed(0)
    model = lstmkit.Sequential([LSTM(8, engine="fused"), Dense(1)], input_shape=(None, 3))
    model.compile("adam", "mse", learning_rate=0.02, precision="bf16")
    x, y = data()
    history = model.fit(x, y, epochs=5, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.predict(x).dtype == np.float32
    assert model._compile_config()["precision"] == "bf16"


def test_fp16_needs_a_gpu_and_unknown_precisions_are_named():
    model = lstmkit.Sequential([Dense(1)], input_shape=(3,))
    with pytest.raises(ValueError, match=r"compile: unknown `precision` 'fp8'. Expected one of: 'fp32', 'bf16', 'fp16'"):
        model.compile("sgd", "mse", precision="fp8")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    model.compile("sgd", "mse", precision="fp16")
    with pytest.raises(ValueError, match=r"precision='fp16'\) needs a CUDA GPU"):
        model.fit(np.zeros((4, 3), np.float32), np.zeros((4, 1), np.float32), verbose=0)
