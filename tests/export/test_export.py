"""Export to ONNX (run in onnxruntime) and TorchScript: the same numbers as predict, any batch and length."""

import numpy as np
import pytest
import torch

import lstmkit
from lstmkit.layers import GRU, LSTM, Bidirectional, Dense, Dropout, Embedding, Masking, SimpleRNN, TimeDistributed
from lstmkit.models.export import ExportError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

ARCHITECTURES = {
    "vanilla": lambda: [LSTM(6), Dense(2)],
    "gru": lambda: [GRU(5, return_sequences=True), TimeDistributed(Dense(1))],
    "stacked": lambda: [LSTM(6, return_sequences=True), Dropout(0.3), LSTM(4, go_backwards=True), Dense(1)],
    "bidirectional": lambda: [Bidirectional(LSTM(5, return_sequences=True)),
                              Bidirectional(GRU(3), merge_mode="sum"), Dense(1)],
    "peephole": lambda: [LSTM(5, variant="peephole", return_sequences=True), Dense(1)],
    "variants": lambda: [LSTM(4, variant="layernorm", return_sequences=True),
                         LSTM(5, variant="cifg", go_backwards=True, return_sequences=True),
                         LSTM(5, proj_size=3, return_sequences=True), GRU(4, reset_after=False, return_sequences=True),
                         LSTM(3, variant="fgr", return_sequences=True), SimpleRNN(3, nonlinearity="relu"), Dense(1)],
}


def session(path):
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the optional-state initializers draw an advisory warning
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def randomized(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=gen) - 0.5)
    return model


def data(batch, steps, seed):
    return np.random.default_rng(seed).normal(size=(batch, steps, 3)).astype(np.float32)


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_onnx_and_torchscript_match_predict(tmp_path, name):
    lstmkit.set_seed(0)
    model = randomized(lstmkit.Sequential(ARCHITECTURES[name](), input_shape=(None, 3)))
    onnx_file = model.export(tmp_path / "model.onnx")
    script_file = model.export(tmp_path / "model.pt")
    onnx.checker.check_model(onnx_file)
    sess = session(onnx_file)
    script = torch.jit.load(script_file)
    for batch, steps in [(1, 1), (4, 9), (7, 23)]:  # none of them the traced sizes (2, 3)
        x = data(batch, steps, seed=steps)
        want = model.predict(x)
        got = sess.run(["y"], {"x": x})[0]
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
        y, states = script(torch.from_numpy(x))
        np.testing.assert_allclose(y.numpy(), want, atol=1e-5, rtol=0)


def test_a_stateful_model_streams_through_the_state_inputs_and_outputs(tmp_path):
    lstmkit.set_seed(0)
    model = randomized(lstmkit.Sequential([LSTM(6, stateful=True, return_sequences=True),
                                           GRU(4, stateful=True), Dense(1)], input_shape=(None, 3), batch_size=2))
    stream = data(2, 12, seed=5)
    chunks = [stream[:, i:i + 4] for i in range(0, 12, 4)]
    model.reset_states()
    want = [model.predict(c, batch_size=2) for c in chunks]  # the model carries its state across calls

    sess = session(model.export(tmp_path / "model.onnx"))
    state_names = [i.name for i in sess.get_overridable_initializers()]
    assert state_names == ["layer0_h_in", "layer0_c_in", "layer1_h_in"]
    outputs = [o.name for o in sess.get_outputs()]
    assert outputs == ["y", "layer0_h_out", "layer0_c_out", "layer1_h_out"]
    feed = {}
    for chunk, expected in zip(chunks, want):
        y, *final = sess.run(None, {"x": chunk, **feed})
        np.testing.assert_allclose(y, expected, atol=1e-5, rtol=0)
        feed = {name: value for name, value in zip(state_names, final)}

    script = torch.jit.load(model.export(tmp_path / "model.pt"))
    states = None
    for chunk, expected in zip(chunks, want):
        y, states = script(torch.from_numpy(chunk), states)
        np.testing.assert_allclose(y.numpy(), expected, atol=1e-5, rtol=0)


def test_export_leaves_the_model_trainable_and_unchanged(tmp_path):
    lstmkit.set_seed(0)
    model = lstmkit.Sequential([LSTM(4), Dense(1)], input_shape=(None, 3))
    model.compile("adam", "mse")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.export(tmp_path / "m.pt")
    assert all(p.requires_grad for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    model.fit(data(4, 5, 0), np.zeros((4, 1), np.float32), epochs=1, verbose=0)


def test_embedding_inputs_export(tmp_path):
    lstmkit.set_seed(0)
    model = lstmkit.Sequential([Embedding(10, 4), LSTM(5, variant="peephole"), Dense(2)], input_shape=(None,))
    ids = np.random.default_rng(0).integers(0, 10, size=(3, 7))
    want = model.predict(ids)
    got = session(model.export(tmp_path / "m.onnx")).run(["y"], {"x": ids.astype(np.int64)})[0]
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_unsupported_layers_are_named(tmp_path):
    model = lstmkit.Sequential([Masking(0.0), LSTM(4), Dense(1)], input_shape=(None, 3))
    with pytest.raises(ExportError, match=r"export: layer 0 \(Masking\) makes a mask"):
        model.export(tmp_path / "m.onnx")
    model = lstmkit.Sequential([Bidirectional(LSTM(4), merge_mode=None)], input_shape=(None, 3))
    with pytest.raises(ExportError, match=r"export: layer 0 \(Bidirectional\) has merge_mode=None"):
        model.export(tmp_path / "m.pt")
    model = lstmkit.Sequential([LSTM(4, return_state=True)], input_shape=(None, 3))
    with pytest.raises(ExportError, match=r"export: layer 0 \(LSTM\) has return_state=True"):
        model.export(tmp_path / "m.pt")


def test_unknown_format_is_refused(tmp_path):
    model = lstmkit.Sequential([LSTM(4), Dense(1)], input_shape=(None, 3))
    with pytest.raises(ValueError, match=r"export: unknown format '.pt2'.*use .pt \(TorchScript\)"):
        model.export(tmp_path / "m.pt2")
    with pytest.raises(ValueError, match=r"unknown format '.h5'"):
        model.export(tmp_path / "m.h5")
    assert not list(tmp_path.iterdir())  # nothing half-written
