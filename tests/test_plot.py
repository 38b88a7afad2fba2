"""lstmkit.plot: the learning-curve verdict, and gate traces that agree with the layer."""

import numpy as np
import pytest
import torch

import lstmkit
from lstmkit import plot
from lstmkit.layers import LSTM


@pytest.mark.parametrize("loss, val, verdict", [
    ([1.0, 0.5, 0.3, 0.2, 0.15, 0.12, 0.1, 0.08, 0.07, 0.06], [1.0, 0.6, 0.45, 0.4, 0.42, 0.5, 0.55, 0.6, 0.7, 0.8],
     "over-fit"),
    ([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2], [1.1, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.35, 0.3],
     "under-fit"),
    ([1.0, 0.99, 0.99, 0.985, 0.985, 0.985], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0], "under-fit"),
    ([1.0, 0.4, 0.25, 0.21, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2], [1.0, 0.45, 0.3, 0.26, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25],
     "good"),
])
def test_diagnose(loss, val, verdict):
    d = plot.diagnose({"loss": loss, "val_loss": val})
    assert d.verdict == verdict
    assert str(d).startswith(verdict + ": ")


def test_history_plot_from_fit_and_file(tmp_path):
    lstmkit.set_seed(0)
    x = np.random.default_rng(0).random((64, 5, 1)).astype("float32")
    model = lstmkit.Sequential([LSTM(4), lstmkit.layers.Dense(1)], input_shape=(5, 1))
    model.compile(optimizer="adam", loss="mse", learning_rate=0.01)
    history = model.fit(x, x.mean(1), epochs=4, validation_split=0.25, verbose=0)
    fig, verdict = plot.history(history, title="sum", file=tmp_path / "h.png")
    assert (tmp_path / "h.png").stat().st_size > 1000
    assert verdict.verdict in ("under-fit", "over-fit", "good")
    with pytest.raises(TypeError, match="`history` must be what fit"):
        plot.history([1, 2, 3])


@pytest.mark.parametrize("variant", ["vanilla", "peephole", "cifg", "layernorm", "fgr", "nig"])
def test_trace_agrees_with_the_layer(variant):
    torch.manual_seed(0)
    layer = LSTM(5, variant, input_size=3, return_sequences=True)
    x = torch.randn(7, 3)
    trace = plot.lstm_trace(layer, x)
    with torch.no_grad():
        h = layer(x[None])[0].numpy()
    np.testing.assert_allclose(trace["h"], h, atol=1e-5)
    for gate in "ifo":
        assert trace[gate].shape == (7, 5) and trace[gate].min() >= 0 and trace[gate].max() <= 1
    # c_t = f * c_{t-1} + i * g, from the recorded gates
    c_prev = np.vstack([np.zeros((1, 5)), trace["c"][:-1]])
    np.testing.assert_allclose(trace["c"], trace["f"] * c_prev + trace["i"] * trace["g"], atol=1e-5)


def test_gate_heatmaps_show_the_memory_cell_of_the_memory_demo(tmp_path):
    from lstmkit.experiments import memory

    result = memory.run("bptt", seed=0)
    assert result["solved"]
    layer = result["model"].layers[0]
    x, _ = memory.make_data()
    fig, trace = plot.gates(layer, x[0], labels=[3, 0, 1, 2], file=tmp_path / "g.png")
    other = plot.lstm_trace(layer, x[1])
    gap = np.abs(trace["c"][1:] - other["c"][1:]).min(axis=0)  # held through the shared steps 0, 1, 2
    cell = int(gap.argmax())
    assert gap[cell] > 0.5 > np.median(gap)  # one cell carries the first symbol; most do not
    assert trace["f"][1:, cell].min() > 0.9  # and its forget gate stays open to keep it
    assert (tmp_path / "g.png").stat().st_size > 1000


def test_trace_rejects_what_it_cannot_trace():
    with pytest.raises(TypeError, match="not built yet"):
        plot.lstm_trace(LSTM(3), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"one sequence of shape \(time, 2\)"):
        plot.lstm_trace(LSTM(3, input_size=2), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"`weights` must be \(out_steps, source_steps\)"):
        plot.attention(np.zeros(3))
