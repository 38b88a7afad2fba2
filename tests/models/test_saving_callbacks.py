"""Save and load, checkpoints and resuming, and the callbacks."""

import csv
import json
import os

import numpy as np
import pytest
import torch

import lstmkit
from lstmkit.callbacks import (Callback, CSVLogger, EarlyStopping, LearningRateScheduler, ModelCheckpoint,
                               ReduceLROnPlateau)
from lstmkit.layers import LSTM, Dense, Dropout, Embedding, Masking, TimeDistributed


def sequence_data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6, 2)).astype(np.float32)
    y = x.sum(axis=(1, 2))[:, None].astype(np.float32) / 4
    return x, y


def lstm_model(seed=0):
    lstmkit.set_seed(seed)
    model = lstmkit.Sequential([LSTM(8, dropout=0.2), Dropout(0.1), Dense(1)], input_shape=(None, 2))
    model.compile("adam", "mse", metrics=["mae"], learning_rate=0.01)
    return model


# ---------------------------------------------------------------- save / load

def test_save_load_predict_is_identical(tmp_path):
    model = lstm_model()
    x, y = sequence_data()
    model.fit(x, y, epochs=2, verbose=0)
    path = model.save(tmp_path / "m")
    assert sorted(os.listdir(path)) == ["config.json", "model.safetensors"]
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["lstmkit_version"] == lstmkit.__version__ and config["class_name"] == "Sequential"
    assert [layer["class_name"] for layer in config["config"]["layers"]] == ["LSTM", "Dropout", "Dense"]
    assert config["compile"] == {"optimizer": "adam", "loss": "mse", "metrics": ["mae"], "learning_rate": 0.01,
                                 "clipnorm": None, "clipvalue": None}
    loaded = lstmkit.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.evaluate(x, y) == model.evaluate(x, y)  # compiled again from the config
    loaded.fit(x, y, epochs=1, verbose=0)  # and trainable


def test_save_load_lazy_models_and_many_layer_kinds(tmp_path):
    lstmkit.set_seed(0)
    ids = lstmkit.Sequential([Embedding(12, 4, mask_zero=True), LSTM(5, return_sequences=True),
                              TimeDistributed(Dense(3, activation="softmax"))])
    ids.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).integers(1, 12, size=(8, 7))
    x[:, 5:] = 0
    ids.fit(x, np.zeros((8, 7), np.int64), epochs=1, verbose=0)
    loaded = lstmkit.load_model(ids.save(tmp_path / "ids"))
    np.testing.assert_array_equal(loaded.predict(x), ids.predict(x))

    masked = lstmkit.Sequential([Masking(-1.0), LSTM(3)], input_shape=(4, 2))
    again = lstmkit.load_model(masked.save(tmp_path / "masked"), compile=False)
    z = np.random.default_rng(1).normal(size=(2, 4, 2)).astype(np.float32)
    np.testing.assert_array_equal(again.predict(z), masked.predict(z))


@pytest.mark.parametrize("loss", ["mse", "mae", "huber", "rmse", "binary_crossentropy", "sparse_categorical_crossentropy"])
def test_a_whole_compiled_model_pickles(loss, tmp_path):
    # torch.save(model) is plain PyTorch practice: every activation and loss the model keeps must
    # pickle (a lambda does not)
    from lstmkit.layers.core import _ACTIVATIONS

    lstmkit.set_seed(0)
    hidden = [Dense(3, activation=name) for name in _ACTIVATIONS] + [Dense(3)]
    head = Dense(3, activation="softmax") if loss == "sparse_categorical_crossentropy" else Dense(1, activation="sigmoid")
    model = lstmkit.Sequential([LSTM(4, stateful=True), *hidden, head], input_shape=(5, 2), batch_size=4)
    model.compile("adam", loss)
    x = np.random.default_rng(0).normal(size=(4, 5, 2)).astype(np.float32)
    y = np.zeros((4,), np.int64) if loss == "sparse_categorical_crossentropy" else np.full((4, 1), 0.5, np.float32)
    model.fit(x, y, epochs=1, verbose=0, shuffle=False)
    model.predict(x)  # the stateful layer now carries a state
    torch.save(model, tmp_path / "whole.pt")
    again = torch.load(tmp_path / "whole.pt", weights_only=False)
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    assert again.evaluate(x, y) == model.evaluate(x, y)


def test_wrapped_module_saves_weights_and_loads_into_a_fresh_instance(tmp_path):
    torch.manual_seed(0)
    model = lstmkit.Model(torch.nn.Linear(3, 2))
    path = model.save(tmp_path / "wrapped")
    with pytest.raises(ValueError, match=r"load_model: .* holds a Model wrapping torch.nn.modules.linear.Linear, "
                                         r"which cannot be rebuilt from a config. Pass a fresh instance: "
                                         r"load_model\(path, module=Linear\(...\)\)"):
        lstmkit.load_model(path)
    loaded = lstmkit.load_model(path, module=torch.nn.Linear(3, 2))
    x = np.ones((1, 3), np.float32)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_load_errors_say_what_is_wrong(tmp_path):
    model = lstmkit.Sequential([Dense(2)], input_shape=(3,))
    path = model.save(tmp_path / "m")
    with pytest.raises(FileNotFoundError, match=r"load_model: no saved model at .*nowhere.*expected a directory with "
                                                r"config.json and model.safetensors"):
        lstmkit.load_model(tmp_path / "nowhere")

    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"load_model: .*config.json is not valid JSON .*the file is corrupt"):
        lstmkit.load_model(path)
    model.save(path)

    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:20])
    with pytest.raises(ValueError, match=r"load_model: .*model.safetensors is corrupt or not a safetensors file"):
        lstmkit.load_model(path)

    lstmkit.Sequential([Dense(2)], input_shape=(4,)).save(tmp_path / "other")
    os.replace(tmp_path / "other" / "model.safetensors", weights)
    with pytest.raises(ValueError, match=r"load_model: the weights in .* do not match the model's architecture "
                                         r"\(shape mismatch: layers.0.weight: saved \(2, 4\), model \(2, 3\)\)"):
        lstmkit.load_model(path)

    lstmkit.Sequential([Dense(2), Dense(2)], input_shape=(3,)).save(tmp_path / "deeper")
    os.replace(tmp_path / "deeper" / "model.safetensors", weights)
    with pytest.raises(ValueError, match=r"not in the model: layers.1.bias, layers.1.weight"):
        lstmkit.load_model(path)

    (tmp_path / "m" / "config.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match=r"is not an lstmkit model config"):
        lstmkit.load_model(path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"save: .*file' is a file; a saved model is a directory"):
        model.save(tmp_path / "file")


def test_loading_never_unpickles(tmp_path):
    # The weights file is safetensors (a JSON header and raw bytes); no pickle opcodes anywhere.
    lstmkit.Sequential([Dense(2)], input_shape=(3,)).save(tmp_path / "m")
    blob = (tmp_path / "m" / "model.safetensors").read_bytes()
    assert b"\x80\x04" not in blob[:16] and blob[8:9] == b"{"


# ---------------------------------------------------------------- checkpoints and resume

class InterruptAfter(Callback):
    order = 1000  # after ModelCheckpoint has written the epoch

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_interrupted_and_resumed_run_equals_the_uninterrupted_one(tmp_path):
    x, y = sequence_data()
    full = lstm_model(seed=3)
    full_hist = full.fit(x, y, epochs=5, batch_size=8, validation_split=0.25, verbose=0,
                         callbacks=[ModelCheckpoint(tmp_path / "full"), EarlyStopping("val_loss", patience=10)])

    first = lstm_model(seed=3)
    with pytest.raises(KeyboardInterrupt):
        first.fit(x, y, epochs=5, batch_size=8, validation_split=0.25, verbose=0,
                  callbacks=[ModelCheckpoint(tmp_path / "ckpt"), InterruptAfter(1),
                             EarlyStopping("val_loss", patience=10)])
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["config.json", "model.safetensors", "training_state.safetensors"]

    resumed = lstm_model(seed=99)  # another seed: the checkpoint must restore everything
    hist = resumed.fit(x, y, epochs=5, batch_size=8, validation_split=0.25, verbose=0,
                       callbacks=[EarlyStopping("val_loss", patience=10)], resume_from=tmp_path / "ckpt")
    for (name, p), q in zip(full.named_parameters(), resumed.parameters()):
        assert torch.equal(p, q), name
    assert hist.history == full_hist.history
    for p, q in zip(full.optimizer.state_dict()["state"].values(), resumed.optimizer.state_dict()["state"].values()):
        assert torch.equal(p["exp_avg_sq"], q["exp_avg_sq"])


def test_resume_errors(tmp_path):
    x, y = sequence_data()
    model = lstm_model()
    with pytest.raises(FileNotFoundError, match=r"resume_from: no checkpoint at .*: expected a directory written by "
                                                r"ModelCheckpoint"):
        model.fit(x, y, epochs=1, verbose=0, resume_from=tmp_path / "none")
    model.fit(x, y, epochs=2, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "c", monitor="loss")])
    other = lstmkit.Sequential([LSTM(8), Dense(1)], input_shape=(None, 2))
    other.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"resume_from: the weights in .* do not match the model's architecture"):
        other.fit(x, y, epochs=3, verbose=0, resume_from=tmp_path / "c")
    sgd = lstm_model()
    sgd.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"resume_from: .* holds Adam optimizer state, but the model is compiled with "
                                         r"SGD"):
        sgd.fit(x, y, epochs=3, verbose=0, resume_from=tmp_path / "c")
    # a checkpoint whose two files come from different epochs (a crash between the two writes)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "d", monitor="loss")])
    os.replace(tmp_path / "d" / "training_state.safetensors", tmp_path / "c" / "training_state.safetensors")
    with pytest.raises(ValueError, match=r"resume_from: .* is inconsistent: the weights are from epoch 2, the "
                                         r"training state from epoch 1"):
        lstm_model().fit(x, y, epochs=3, verbose=0, resume_from=tmp_path / "c")


def test_model_checkpoint_save_best_only_and_filename_pattern(tmp_path):
    x, y = sequence_data()
    model = lstm_model()
    losses = iter([3.0, 1.0, 2.0, 0.5])

    class FakeVal(Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(losses)

    ckpt = ModelCheckpoint(str(tmp_path / "ep{epoch:02d}"), save_best_only=True)
    model.fit(x, y, epochs=4, verbose=0, callbacks=[FakeVal(), ckpt])
    assert sorted(os.listdir(tmp_path)) == ["ep01", "ep02", "ep04"]
    assert ckpt.last_saved == str(tmp_path / "ep04")
    with pytest.raises(ValueError, match=r"ModelCheckpoint: cannot fill in `filepath` '.*\{acc\}' \(KeyError\('acc'\)\)"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(str(tmp_path / "{acc}"), monitor="loss")])
    with pytest.raises(ValueError, match=r"ModelCheckpoint: `monitor`='val_loss' is not among the logged values "
                                         r"\('loss', 'mae'\). Pass `validation_data` or `validation_split`"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "x", save_best_only=True)])


# ---------------------------------------------------------------- callbacks

def test_early_stopping_restores_the_best_weights():
    x, y = sequence_data()
    model = lstm_model()
    losses = iter([5.0, 1.0, 2.0, 3.0, 4.0, 0.1])
    snapshots = []

    class FakeVal(Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(losses)
            snapshots.append({k: v.clone() for k, v in self.model.state_dict().items()})

    stop = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    hist = model.fit(x, y, epochs=6, verbose=0, callbacks=[FakeVal(), stop])
    assert len(hist.history["loss"]) == 4  # stopped after 2 epochs without improvement on 1.0
    assert stop.stopped_epoch == 3 and stop.best_epoch == 1
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshots[1][k])


def test_early_stopping_mode_and_min_delta():
    x, y = sequence_data()
    model = lstm_model()
    accs = iter([0.5, 0.6, 0.605, 0.606, 0.9])

    class FakeAcc(Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_accuracy"] = next(accs)

    stop = EarlyStopping(monitor="val_accuracy", min_delta=0.01, patience=1)
    hist = model.fit(x, y, epochs=5, verbose=0, callbacks=[FakeAcc(), stop])
    assert stop.tracker.mode == "max" and len(hist.history["loss"]) == 3  # 0.605 is not 0.01 better
    with pytest.raises(ValueError, match=r"EarlyStopping: unknown `mode` 'lowest'. Expected one of: 'auto', 'min', 'max'"):
        EarlyStopping(mode="lowest")
    with pytest.raises(ValueError, match=r"EarlyStopping: `monitor`='val_loss' is not among the logged values"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[EarlyStopping()])


def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    x, y = sequence_data()
    model = lstm_model()
    path = tmp_path / "log.csv"
    model.fit(x, y, epochs=3, validation_split=0.25, verbose=0, callbacks=[CSVLogger(path)])
    rows = list(csv.DictReader(path.open()))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert set(rows[0]) == {"epoch", "loss", "mae", "val_loss", "val_mae"}
    model.fit(x, y, epochs=1, verbose=0, callbacks=[CSVLogger(path, append=True)])
    assert len(list(csv.DictReader(path.open()))) == 4
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_learning_rate_callbacks():
    x, y = sequence_data()
    model = lstm_model()
    seen = []

    class Record(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.model.optimizer.param_groups[0]["lr"])

    model.fit(x, y, epochs=3, verbose=0, callbacks=[LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1)), Record()])
    assert seen == pytest.approx([0.1, 0.05, 0.1 / 3])
    with pytest.raises(ValueError, match=r"LearningRateScheduler: `schedule` must return a finite number, got None"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda epoch, lr: None)])

    model.compile("sgd", "mse", learning_rate=1.0)
    losses = iter([1.0, 1.0, 1.0, 1.0, 1.0])
    seen.clear()

    class Flat(Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(losses)

    model.fit(np.zeros_like(x), np.zeros_like(y), epochs=5, verbose=0,
              callbacks=[Flat(), ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.3), Record()])
    assert seen == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.3])
    with pytest.raises(ValueError, match=r"ReduceLROnPlateau: `factor` must be in \[0.0, 1.0\), got 1.5"):
        ReduceLROnPlateau(factor=1.5)
