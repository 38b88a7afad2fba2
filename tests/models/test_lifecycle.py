"""Define, compile, fit, evaluate, predict: behaviour and every error message of issue 3."""

import logging
import math

import numpy as np
import pytest
import torch

import lstmkit
from lstmkit.errors import NotBuiltError, NotCompiledError, TrainingDivergedError
from lstmkit.layers import LSTM, Dense, Embedding, Masking


def regression_data(n=128, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)) + 0.1
    return x, y


def dense_model(**kw):
    return lstmkit.Sequential([Dense(8, activation="tanh"), Dense(1)], input_shape=(3,), **kw)


# ---------------------------------------------------------------- define

def test_sequential_builds_from_input_shape_and_checks_inputs():
    model = dense_model()
    assert model.built
    with pytest.raises(ValueError, match=r"Sequential: expected input of shape \(batch, 3\), got \(2, 4\)"):
        model.predict(np.zeros((2, 4), np.float32))
    seq = lstmkit.Sequential([LSTM(4)], input_shape=(None, 2))
    assert seq.predict(np.zeros((1, 7, 2), np.float32)).shape == (1, 4)
    with pytest.raises(ValueError, match=r"Sequential: expected input of shape \(batch, time, 2\), got \(1, 7, 3\)"):
        seq.predict(np.zeros((1, 7, 3), np.float32))


def test_sequential_argument_errors():
    with pytest.raises(ValueError, match=r"Sequential: `input_shape` must be a tuple of positive sizes"):
        lstmkit.Sequential([Dense(1)], input_shape=(0, 3))
    with pytest.raises(TypeError, match=r"Sequential: expected a layer \(a torch.nn.Module\), got type. Did you pass "
                                        r"a layer class instead of an instance"):
        lstmkit.Sequential([Dense])
    with pytest.raises(TypeError, match=r"Model: `module` must be a torch.nn.Module, got str"):
        lstmkit.Model("net")


def test_summary_lists_layers_shapes_and_parameter_counts():
    model = lstmkit.Sequential([LSTM(5, return_sequences=True), Dense(2)], input_shape=(7, 3))
    text = model.summary(print_fn=None)
    assert "LSTM" in text and "(None, 7, 5)" in text and "(None, 7, 2)" in text
    lstm_params = 4 * 5 * (3 + 5) + 2 * 4 * 5  # weight_ih, weight_hh, bias_ih, bias_hh
    assert f"{lstm_params:,}" in text and f"Total params: {lstm_params + 12:,}" in text
    printed = []
    model.summary(print_fn=printed.append)
    assert printed == [text]
    lazy = lstmkit.Sequential([Dense(2)])
    assert "not built yet" in lazy.summary(print_fn=None)


def test_model_wraps_any_torch_module_and_subclasses():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    model = lstmkit.Model(net)
    model.compile(optimizer="adam", loss="mse", learning_rate=0.01)
    x, y = regression_data()
    hist = model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    assert hist.history["loss"][-1] < 0.2 * hist.history["loss"][0]

    class Net(lstmkit.Model):
        def __init__(self):
            super().__init__()
            self.lstm = LSTM(4, input_size=2)
            self.out = Dense(1, input_size=4)

        def forward(self, x):
            return self.out(self.lstm(x))

    sub = Net()
    sub.compile("sgd", "mse")
    assert sub.predict(np.zeros((3, 5, 2), np.float32)).shape == (3, 1)
    assert sub.evaluate(np.zeros((3, 5, 2), np.float32), np.zeros((3, 1), np.float32))["loss"] >= 0


def test_wrapped_module_must_return_a_tensor():
    model = lstmkit.Model(torch.nn.LSTM(2, 3, batch_first=True))
    with pytest.raises(TypeError, match=r"Model: the network must return a tensor, got tuple. Wrap it so forward "
                                        r"returns the prediction alone"):
        model.predict(np.zeros((1, 4, 2), np.float32))


# ---------------------------------------------------------------- compile

def test_compile_accepts_names_and_torch_objects():
    model = dense_model()
    model.compile(optimizer="adam", loss="mse", metrics=["mae", "rmse"], learning_rate=0.05, clipnorm=1.0,
                  clipvalue=0.5)
    assert isinstance(model.optimizer, torch.optim.Adam) and model.optimizer.param_groups[0]["lr"] == 0.05
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.compile(optimizer=opt, loss=torch.nn.MSELoss(), metrics=[lambda p, y: (p - y).abs().mean()])
    assert model.optimizer is opt
    model.compile(optimizer=torch.optim.RMSprop, loss="huber", learning_rate=0.01)
    assert isinstance(model.optimizer, torch.optim.RMSprop) and model.optimizer.param_groups[0]["lr"] == 0.01
    x, y = regression_data(32)
    logs = model.evaluate(x, y)
    assert set(logs) == {"loss"}


def test_compile_unknown_names_list_the_valid_ones():
    model = dense_model()
    with pytest.raises(ValueError, match=r"compile: unknown `optimizer` 'adamm'. Expected one of: 'adam', 'adamw', "
                                         r"'sgd', 'rmsprop'"):
        model.compile(optimizer="adamm", loss="mse")
    with pytest.raises(ValueError, match=r"compile: unknown `loss` 'mse2'. Expected one of: 'mse', "
                                         r"'mean_squared_error', 'mae'.*'binary_crossentropy'"):
        model.compile(optimizer="adam", loss="mse2")
    with pytest.raises(ValueError, match=r"compile: unknown metric 'acuracy' in `metrics`. Expected one of: "
                                         r"'accuracy'"):
        model.compile(optimizer="adam", loss="mse", metrics=["acuracy"])
    with pytest.raises(ValueError, match=r"compile: `loss` is required"):
        model.compile(optimizer="adam")
    with pytest.raises(TypeError, match=r"compile: `optimizer` must be a name such as 'adam'"):
        model.compile(optimizer=3, loss="mse")
    with pytest.raises(ValueError, match=r"compile: `clipnorm` must be >= 0.0, got -1.0"):
        model.compile(optimizer="adam", loss="mse", clipnorm=-1.0)


def test_losses_follow_keras_conventions():
    from lstmkit.models.losses import Loss

    p = torch.tensor([[0.9, 0.2], [0.3, 0.6]])
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    bce = -(y * p.log() + (1 - y) * (1 - p).log()).mean()
    assert torch.allclose(Loss("binary_crossentropy")(p, y), bce)
    q = torch.softmax(torch.randn(4, 3), -1)
    ids = torch.tensor([0, 2, 1, 2])
    assert torch.allclose(Loss("sparse_categorical_crossentropy")(q, ids),
                          Loss("categorical_crossentropy")(q, torch.nn.functional.one_hot(ids, 3).float()))
    assert torch.allclose(Loss("rmse")(p, y), Loss("mse")(p, y).sqrt())
    with pytest.raises(ValueError, match=r"mse: targets of shape \(2, 3\) do not match the model's output \(2, 2\)"):
        Loss("mse")(p, torch.zeros(2, 3))
    # (B,) targets fit a (B, 1) output instead of silently broadcasting to (B, B)
    assert torch.allclose(Loss("mse")(torch.zeros(3, 1), torch.ones(3)), torch.tensor(1.0))


# ---------------------------------------------------------------- fit

def test_fit_lowers_the_loss_and_reports_metrics():
    lstmkit.set_seed(0)
    model = dense_model()
    model.compile(optimizer="adam", loss="mse", metrics=["mae"], learning_rate=0.01)
    x, y = regression_data()
    hist = model.fit(x, y, epochs=20, batch_size=16, verbose=0)
    assert set(hist.history) == {"loss", "mae"}
    assert len(hist.history["loss"]) == 20 and hist.epoch == list(range(20))
    assert hist.history["loss"][-1] < 0.1 * hist.history["loss"][0]
    logs = model.evaluate(x, y)
    assert set(logs) == {"loss", "mae"} and logs["loss"] < 0.1 * hist.history["loss"][0]


def test_fit_accepts_tensors_and_dataloaders_alike():
    x, y = regression_data(64)
    results = []
    for kind in ("numpy", "tensor", "loader"):
        lstmkit.set_seed(1)
        model = dense_model()
        model.compile(optimizer="sgd", loss="mse")
        if kind == "numpy":
            model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
        elif kind == "tensor":
            model.fit(torch.from_numpy(x), torch.from_numpy(y), epochs=2, batch_size=16, shuffle=False, verbose=0)
        else:
            ds = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
            model.fit(torch.utils.data.DataLoader(ds, batch_size=16), epochs=2, verbose=0)
        results.append(model.predict(x))
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])


def test_validation_split_takes_the_last_fraction_unshuffled():
    seen = []

    class Spy(lstmkit.callbacks.Callback):
        pass

    model = lstmkit.Sequential([Dense(1)], input_shape=(1,))
    model.compile("sgd", "mse")
    x = np.arange(10, dtype=np.float32)[:, None]
    y = np.zeros((10, 1), np.float32)
    original = model._run

    def spying_run(xb):
        seen.append((model.training, xb[:, 0].tolist()))
        return original(xb)

    model._run = spying_run
    model.fit(x, y, epochs=2, batch_size=3, validation_split=0.3, shuffle=True, verbose=0, callbacks=[Spy()])
    train_rows = sorted(v for training, batch in seen if training for v in batch)
    val_rows = [v for training, batch in seen if not training for v in batch]
    assert train_rows == sorted(list(range(7)) * 2)  # both epochs, every training row once
    assert val_rows == [7.0, 8.0, 9.0] * 2  # the last 30 %, in order, every epoch


def test_validation_data_gives_val_metrics():
    x, y = regression_data(64)
    model = dense_model()
    model.compile("adam", "mse", metrics=["mae"])
    hist = model.fit(x[:48], y[:48], epochs=2, validation_data=(x[48:], y[48:]), verbose=0)
    assert set(hist.history) == {"loss", "mae", "val_loss", "val_mae"}
    assert hist.history["val_loss"][-1] == pytest.approx(model.evaluate(x[48:], y[48:])["loss"])


def test_fit_argument_errors():
    model = dense_model()
    x, y = regression_data(10)
    with pytest.raises(NotCompiledError, match=r"fit: the model is not compiled. Call model.compile\(optimizer=..., "
                                               r"loss=...\) first"):
        model.fit(x, y)
    with pytest.raises(NotCompiledError, match=r"evaluate: the model is not compiled. Call model.compile"):
        model.evaluate(x, y)
    model.compile("adam", "mse")
    with pytest.raises(ValueError, match=r"fit: `x` has 10 samples but `y` has 9"):
        model.fit(x, y[:9], verbose=0)
    with pytest.raises(ValueError, match=r"fit: `y` \(the targets\) is required"):
        model.fit(x, verbose=0)
    with pytest.raises(ValueError, match=r"fit: `validation_split` must be in \[0.0, 1.0\), got 1.5"):
        model.fit(x, y, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match=r"fit: `validation_split`=0.05 of 10 samples leaves 0 for validation"):
        model.fit(x, y, validation_split=0.05, verbose=0)
    with pytest.raises(TypeError, match=r"fit: `x` must be a NumPy array, a torch tensor or a DataLoader, got dict"):
        model.fit({"a": 1}, y, verbose=0)
    with pytest.raises(TypeError, match=r"fit: `x` must hold numbers, got an array of <U1"):
        model.fit(np.array([["a"]]), y[:1], verbose=0)
    with pytest.raises(ValueError, match=r"fit: unknown `verbose` 3. Expected one of: 0, 1, 2"):
        model.fit(x, y, verbose=3)
    with pytest.raises(ValueError, match=r"fit: unknown `reset_states` 'always'"):
        model.fit(x, y, verbose=0, reset_states="always")
    with pytest.raises(TypeError, match=r"fit: every entry of `callbacks` must be a lstmkit.callbacks.Callback, got str"):
        model.fit(x, y, verbose=0, callbacks=["EarlyStopping"])
    with pytest.raises(TypeError, match=r"fit: `validation_data` must be a pair \(x_val, y_val\) or a DataLoader"):
        model.fit(x, y, verbose=0, validation_data=x)


def test_predict_on_an_unbuilt_model_says_what_to_call_first():
    model = lstmkit.Sequential([LSTM(3), Dense(1)])
    with pytest.raises(NotBuiltError, match=r"predict: the model has no weights yet. Call fit\(\) first, or give the "
                                            r"input shape"):
        model.predict(np.zeros((1, 2, 2), np.float32))
    with pytest.raises(NotBuiltError, match=r"save: Sequential has no weights yet"):
        model.save("unused")
    model.compile("adam", "mse")
    model.fit(np.zeros((4, 2, 2), np.float32), np.zeros((4, 1), np.float32), verbose=0)
    assert model.predict(np.zeros((1, 2, 2), np.float32)).shape == (1, 1)


def test_predict_classes_and_proba():
    model = lstmkit.Sequential([Dense(3, activation="softmax")], input_shape=(2,))
    x = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
    p = model.predict_proba(x)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(model.predict_classes(x), p.argmax(1))
    binary = lstmkit.Sequential([Dense(1, activation="sigmoid")], input_shape=(2,))
    np.testing.assert_array_equal(binary.predict_classes(x), (binary.predict(x)[:, 0] > 0.5).astype(int))
    assert binary.predict_classes(x).shape == (5,)


def test_verbose_two_logs_one_line_per_epoch_and_zero_is_silent(caplog, capsys):
    x, y = regression_data(32)
    model = dense_model()
    model.compile("adam", "mse")
    with caplog.at_level(logging.INFO, logger="lstmkit.models"):
        model.fit(x, y, epochs=2, verbose=2)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Epoch")]
    assert len(lines) == 2 and lines[0].startswith("Epoch 1/2 - loss: ")
    caplog.clear()
    model.fit(x, y, epochs=1, verbose=0)
    out = capsys.readouterr()
    assert not caplog.records and out.out == "" and out.err == ""
    model.fit(x, y, epochs=1, verbose=1)
    assert "Epoch 1/1" in capsys.readouterr().err  # the progress bar


def test_nan_loss_stops_with_a_clear_message_and_keeps_finite_weights():
    x, y = regression_data(32)
    y[20] = np.nan
    model = dense_model()
    model.compile("sgd", "mse")
    model.fit(x[:16], y[:16], epochs=1, batch_size=8, verbose=0)
    with pytest.raises(TrainingDivergedError, match=r"fit: training stopped at epoch 1, batch 3: the loss became nan"
                                                    r".*keeps the weights from before that batch") as info:
        model.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert info.value.history.history == {}  # no epoch completed


def test_exploding_gradient_stops_before_the_update():
    model = dense_model()
    model.compile("sgd", "mse", learning_rate=1e30)
    x, y = regression_data(64)
    with pytest.raises(TrainingDivergedError, match=r"fit: training stopped at epoch \d+, batch \d+.*became (inf|nan)"):
        model.fit(x * 1e10, y, epochs=5, batch_size=8, verbose=0)
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("clipnorm", [None, 1.0])
def test_a_non_finite_gradient_under_a_finite_loss_stops_before_the_update(clipnorm):
    # sqrt(|e|) is finite at e = 0, its gradient is not: the check must look at the gradients.
    model = lstmkit.Sequential([Dense(1)], input_shape=(2,))
    model.compile("sgd", lambda pred, y: torch.sqrt((pred - y).abs()).mean(), clipnorm=clipnorm)
    x = np.zeros((4, 2), np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(TrainingDivergedError, match=r"batch 1 \(gradient\): the gradient norm became nan"):
        model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_grads_finite_checks_every_dtype_and_leaves_the_values_alone():
    from lstmkit.models.model import _grads_finite

    for dtype in (torch.float32, torch.float64, torch.bfloat16, torch.complex64):
        grads = [torch.randn(4, 3, dtype=dtype), torch.randn(2, dtype=dtype)]
        copies = [g.clone() for g in grads]
        assert _grads_finite(grads) and all(torch.equal(a, b) for a, b in zip(grads, copies))
        for bad in (float("inf"), float("-inf"), float("nan")):
            grads[1][1] = bad
            assert not _grads_finite(grads)
    # mixed dtypes are checked group by group; a huge finite float64 is finite
    mixed = [torch.ones(3), torch.tensor([1e300, 1.0], dtype=torch.float64)]
    assert _grads_finite(mixed)
    mixed[1][1] = float("nan")
    assert not _grads_finite(mixed)
    # sparse gradients are checked through their values
    sparse = torch.sparse_coo_tensor([[0, 2]], [1.0, float("inf")], (4,), check_invariants=True)
    assert not _grads_finite([torch.ones(2), sparse])
    assert _grads_finite([torch.ones(2), torch.sparse_coo_tensor([[0, 2]], [1.0, 2.0], (4,), check_invariants=True)])


def test_clipping_bounds_the_update():
    model = lstmkit.Sequential([Dense(1, use_bias=False)], input_shape=(1,))
    with torch.no_grad():
        model.layers[0].weight.zero_()
    model.compile("sgd", "mse", learning_rate=1.0, clipnorm=0.5)
    model.fit(np.ones((1, 1), np.float32), np.full((1, 1), 100.0, np.float32), epochs=1, verbose=0)
    assert model.layers[0].weight.item() == pytest.approx(0.5)
    model.compile("sgd", "mse", learning_rate=1.0, clipvalue=0.25)
    model.fit(np.ones((1, 1), np.float32), np.full((1, 1), 100.0, np.float32), epochs=1, verbose=0)
    assert model.layers[0].weight.item() == pytest.approx(0.75)


def test_masking_reaches_the_recurrent_layer_and_the_loss():
    lstmkit.set_seed(0)
    model = lstmkit.Sequential([Masking(0.0), LSTM(4, return_sequences=True), Dense(1)], input_shape=(5, 2))
    model.compile("adam", "mse")
    x = np.random.default_rng(0).normal(size=(3, 5, 2)).astype(np.float32)
    x[:, 3:] = 0.0
    y = np.zeros((3, 5, 1), np.float32)
    y_changed = y.copy()
    y_changed[:, 3:] = 100.0  # targets on padded steps must not count
    assert model.evaluate(x, y)["loss"] == pytest.approx(model.evaluate(x, y_changed)["loss"])
    with pytest.raises(TypeError, match=r"Sequential: Linear does not support masking but receives a mask"):
        lstmkit.Sequential([Masking(0.0), torch.nn.Linear(2, 2)], input_shape=(5, 2))
    ids = lstmkit.Sequential([Embedding(10, 4, mask_zero=True), LSTM(3)], input_shape=(6,))
    assert ids.predict(np.array([[1, 2, 3, 0, 0, 0]])).shape == (1, 3)


# ---------------------------------------------------------------- stateful and truncated BPTT

def stateful_model(seed=0):
    lstmkit.set_seed(seed)
    model = lstmkit.Sequential([LSTM(4, return_sequences=True, stateful=True), Dense(2)],
                               input_shape=(None, 3), batch_size=2)
    model.compile("sgd", "mse", learning_rate=0.1)
    return model


def test_stateful_model_carries_state_and_resets():
    model = stateful_model()
    x = np.random.default_rng(0).normal(size=(4, 5, 3)).astype(np.float32)
    model.fit(x, np.zeros((4, 5, 2), np.float32), batch_size=2, epochs=1, shuffle=False, verbose=0)
    assert model.layers[0].states is not None
    model.reset_states()
    assert model.layers[0].states is None
    model.fit(x, np.zeros((4, 5, 2), np.float32), epochs=2, shuffle=False, verbose=0, reset_states="epoch")
    with pytest.raises(ValueError, match=r"fit: the model was defined with a fixed batch size of 2 \(`batch_size` in "
                                         r"Sequential\), got `batch_size`=3"):
        model.fit(x, np.zeros((4, 5, 2), np.float32), batch_size=3, verbose=0)
    with pytest.raises(ValueError, match=r"fit: the model has a fixed batch size of 2, but `x` has 3 samples"):
        model.fit(x[:3], np.zeros((3, 5, 2), np.float32), verbose=0, shuffle=False)
    with pytest.warns(UserWarning, match=r"fit: shuffling the samples of a stateful model"):
        model.fit(x, np.zeros((4, 5, 2), np.float32), verbose=0)


def test_reset_states_epoch_matches_manual_resets():
    x = np.random.default_rng(1).normal(size=(4, 5, 3)).astype(np.float32)
    y = np.random.default_rng(2).normal(size=(4, 5, 2)).astype(np.float32)
    a = stateful_model()
    a.fit(x, y, epochs=3, shuffle=False, verbose=0, reset_states="epoch")
    b = stateful_model()
    for _ in range(3):  # the tutorials' loop
        b.reset_states()
        b.fit(x, y, epochs=1, shuffle=False, verbose=0)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_tbptt_one_window_equals_full_bptt():
    x = np.random.default_rng(3).normal(size=(4, 6, 3)).astype(np.float32)
    y = np.random.default_rng(4).normal(size=(4, 6, 2)).astype(np.float32)

    def model():
        lstmkit.set_seed(5)
        m = lstmkit.Sequential([LSTM(4, return_sequences=True), Dense(2)], input_shape=(None, 3))
        m.compile("sgd", "mse", learning_rate=0.1)
        return m

    full, chunked = model(), model()
    full.fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0)
    chunked.fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0, tbptt=6)
    for p, q in zip(full.parameters(), chunked.parameters()):
        torch.testing.assert_close(p, q)


def reference_model(seed=5):
    lstmkit.set_seed(seed)
    m = lstmkit.Sequential([LSTM(4, return_sequences=True), Dense(2)], input_shape=(None, 3))
    m.compile("sgd", "mse", learning_rate=0.1)
    return m


def test_tbptt_k_is_chunks_with_the_state_carried_detached():
    x = torch.randn(2, 7, 3, generator=torch.Generator().manual_seed(0))
    y = torch.randn(2, 7, 2, generator=torch.Generator().manual_seed(1))
    model = reference_model()
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, tbptt=3)

    ref = reference_model()
    lstm, dense = ref.layers
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    state = None
    for start in (0, 3, 6):  # chunks [0, 3), [3, 6), [6, 7)
        lstm.return_state = True
        seq, h, c = lstm(x[:, start:start + 3], initial_state=state)
        lstm.return_state = False
        loss = torch.nn.functional.mse_loss(dense(seq), y[:, start:start + 3])
        opt.zero_grad()
        loss.backward()
        opt.step()
        state = (h.detach(), c.detach())
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q)


def test_tbptt_k1_k2_backpropagates_through_the_last_k2_steps():
    # tbptt=(1, T): after every step, back-propagate from the newest output to the first step.
    x = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(2))
    y = torch.randn(2, 4, 2, generator=torch.Generator().manual_seed(3))
    model = reference_model()
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, tbptt=(1, 4))

    ref = reference_model()
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    for t in range(1, 5):
        out = ref(x[:, :t])  # re-run from the start with the current weights
        loss = torch.nn.functional.mse_loss(out[:, -1], y[:, t - 1])
        opt.zero_grad()
        loss.backward()
        opt.step()
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q)


def test_tbptt_errors_say_what_shapes_it_needs():
    model = reference_model()
    x = np.zeros((2, 6, 3), np.float32)
    with pytest.raises(ValueError, match=r"fit: `tbptt`=\(k1, k2\) needs k2 >= k1 .* got \(3, 2\)"):
        model.fit(x, np.zeros((2, 6, 2), np.float32), tbptt=(3, 2), verbose=0)
    with pytest.raises(ValueError, match=r"fit: `tbptt` needs one target per time step: `y` of shape \(batch, 6, "
                                         r"\.\.\.\) to match `x` \(2, 6, 3\), got \(2, 2\)"):
        model.fit(x, np.zeros((2, 2), np.float32), tbptt=2, verbose=0)
    last = lstmkit.Sequential([LSTM(4), Dense(2)], input_shape=(None, 3))
    last.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"fit: `tbptt` needs a model that returns one output per time step.*"
                                         r"Set return_sequences=True"):
        last.fit(x, np.zeros((2, 6, 2), np.float32), tbptt=2, verbose=0)
    dense = lstmkit.Sequential([Dense(2)], input_shape=(6, 3))
    dense.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"fit: `tbptt` needs a model with lstmkit recurrent layers"):
        dense.fit(x, np.zeros((2, 6, 2), np.float32), tbptt=2, verbose=0)
    with pytest.raises(TypeError, match=r"fit: `tbptt` must be an integer, got 'all'"):
        model.fit(x, np.zeros((2, 6, 2), np.float32), tbptt="all", verbose=0)


def test_tbptt_leaves_non_stateful_layers_stateless_and_stateful_ones_carrying():
    model = reference_model()
    x = np.random.default_rng(0).normal(size=(2, 6, 3)).astype(np.float32)
    model.fit(x, np.zeros((2, 6, 2), np.float32), tbptt=(2, 4), verbose=0)
    assert model.layers[0].states is None and model.layers[0].stateful is False
    streaming = stateful_model()
    streaming.fit(x, np.zeros((2, 6, 2), np.float32), tbptt=(2, 4), shuffle=False, verbose=0)
    assert streaming.layers[0].states is not None


def test_fit_overhead_for_many_one_epoch_calls_is_small():
    # The tutorials call fit once per step; the call itself must not dominate (measured in
    # benchmarks/lifecycle.py; here only that repeated calls keep working and stay consistent).
    model = stateful_model()
    x = np.zeros((2, 1, 3), np.float32)
    for _ in range(50):
        hist = model.fit(x, np.zeros((2, 1, 2), np.float32), epochs=1, verbose=0, shuffle=False)
    assert len(hist.history["loss"]) == 1 and math.isfinite(hist.history["loss"][0])


def test_unknown_length_builds_models_that_need_a_minimum_length():
    import torch

    from lstmkit.layers import Conv1D, LSTM, MaxPooling1D

    model = lstmkit.Sequential([Conv1D(8, 3), MaxPooling1D(2), Conv1D(8, 3), MaxPooling1D(2), LSTM(4)],
                               input_shape=(None, 2))
    assert model.built
    assert model.predict(torch.randn(3, 40, 2)).shape == (3, 4)


def test_predict_runs_in_evaluation_mode_and_restores_each_modules_own_mode():
    from lstmkit.layers import Dropout

    model = lstmkit.Sequential([LSTM(8), Dropout(0.5), Dense(1)], input_shape=(5, 2))
    model.train()
    model.layers[1].eval()  # a module the user put in eval mode by hand stays there
    x = torch.randn(4, 5, 2)
    model.layers[1].train()
    first = model.predict(x)
    assert (first == model.predict(x)).all()  # no dropout while predicting
    model.layers[1].eval()
    model.predict(x)
    assert [layer.training for layer in model.layers] == [True, False, True] and model.training


def test_predict_runs_without_a_graph_and_restores_the_grad_mode_even_after_an_error():
    model = lstmkit.Sequential([LSTM(8), Dense(1)], input_shape=(5, 2))
    x = torch.randn(3, 5, 2)
    for enabled in (True, False):
        with torch.set_grad_enabled(enabled):
            model.predict(x)
            assert torch.is_grad_enabled() is enabled
            with pytest.raises(ValueError, match="expected input of shape"):
                model.predict(torch.randn(3, 5, 4))
            assert torch.is_grad_enabled() is enabled and model.training
    seen = []
    model.layers[1].register_forward_hook(lambda m, i, out: seen.append(out.requires_grad))
    model.predict(x)
    assert seen == [False]


def test_predict_keeps_a_float64_models_precision_and_reads_dtype_and_device_in_one_walk():
    from lstmkit.models.model import _modules_of

    model = lstmkit.Sequential([LSTM(4), Dense(1)], input_shape=(3, 2)).double()
    x = np.random.default_rng(0).standard_normal((5, 3, 2))
    out = model.predict(x)
    assert out.dtype == np.float64
    with torch.no_grad():
        np.testing.assert_allclose(out, model(torch.from_numpy(x)).numpy(), rtol=0, atol=0)
    assert _modules_of(model) == list(model.modules())
    assert model._dtype_and_device() == (torch.float64, torch.device("cpu"))
    # a module shared twice appears once, in the order of modules()
    shared = Dense(2)
    twice = lstmkit.Sequential([shared, lstmkit.layers.Activation("relu"), shared], input_shape=(2,))
    assert _modules_of(twice) == list(twice.modules())


def test_predict_gives_the_same_through_its_one_batch_shortcut_and_its_batches():
    model = lstmkit.Sequential([LSTM(4), Dense(2)], input_shape=(3, 2))
    x = torch.randn(7, 3, 2)
    whole = model.predict(x)  # a float32 tensor in one batch: the shortcut
    np.testing.assert_allclose(model.predict(x, batch_size=3), whole, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(model.predict(x.numpy()), whole, rtol=0, atol=0)
    np.testing.assert_allclose(model.predict(x.double()), whole, rtol=1e-6, atol=1e-7)  # converted
    out = model.predict(x)
    out += 1.0  # the array is the caller's: editing it changes nothing inside
    np.testing.assert_allclose(model.predict(x), whole, rtol=0, atol=0)
    for bad in (0, -1, True, 2.5):
        with pytest.raises((ValueError, TypeError), match="batch_size"):
            model.predict(x, batch_size=bad)
    with pytest.raises(ValueError, match="no samples"):
        model.predict(torch.zeros(0, 3, 2))
    fixed = lstmkit.Sequential([LSTM(4, stateful=True), Dense(2)], input_shape=(3, 2), batch_size=7)
    with pytest.raises(ValueError, match="fixed batch size"):
        fixed.predict(x, batch_size=5)
