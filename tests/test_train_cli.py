"""`lstmkit train CONFIG`: a run described by one TOML or YAML file, in a real process."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import lstmkit
from lstmkit.train_cli import ConfigError, build_model, read_config

TOML = """
seed = 0

[data]
npz = "data.npz"

[model]
input_shape = [5, 2]
layers = [{type = "LSTM", units = 4}, {type = "Dense", units = 1}]

[compile]
optimizer = "adam"
loss = "mse"
learning_rate = 0.01

[fit]
epochs = 2
batch_size = 8
validation_split = 0.25

[output]
model = "run/model"
checkpoint = "run/checkpoint"
export = "run/model.pt"
"""

YAML = """
seed: 0
data: {npz: data.npz}
model:
  input_shape: [5, 2]
  layers:
    - {type: GRU, units: 3}
    - {type: Dense, units: 1}
compile: {optimizer: sgd, loss: mae}
fit: {epochs: 1, batch_size: 8}
"""


def write_run(tmp_path, name, text):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 5, 2)).astype(np.float32)
    np.savez(tmp_path / "data.npz", x=x, y=x.sum(axis=(1, 2))[:, None] / 4)
    (tmp_path / name).write_text(text)
    return tmp_path / name


def train(config, *extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "lstmkit.cli", "-q", "train", str(config), *extra],
                          capture_output=True, text=True, timeout=180, env=env)


def test_train_from_toml_saves_checkpoints_exports_and_reports(tmp_path):
    config = write_run(tmp_path, "run.toml", TOML)
    result = train(config)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["epochs"] == 2 and report["processes"] == 1 and report["samples_per_second"] > 0
    assert set(report["logs"]) == {"loss", "val_loss"}
    model = lstmkit.load_model(tmp_path / "run" / "model")
    assert model.predict(np.zeros((1, 5, 2), np.float32)).shape == (1, 1)
    assert (tmp_path / "run" / "model.pt").is_file()
    assert (tmp_path / "run" / "checkpoint" / "training_state.safetensors").is_file()
    # Run again: it resumes from the checkpoint, which has done every epoch already.
    again = train(config)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout.strip().splitlines()[-1])["epochs"] == 0


@pytest.mark.slow
def test_train_on_two_processes(tmp_path):
    config = write_run(tmp_path, "run.toml", TOML)
    result = train(config, "--nproc", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["processes"] == 2


def test_yaml_config_builds_the_model(tmp_path):
    config = read_config(str(write_run(tmp_path, "run.yaml", YAML)))
    model = build_model(config["model"])
    assert [type(layer).__name__ for layer in model.layers] == ["GRU", "Dense"]
    assert config["compile"] == {"optimizer": "sgd", "loss": "mae"}


def test_config_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown section\(s\) 'trainer'"):
        read_config(str(write_run(tmp_path, "a.toml", TOML + "\n[trainer]\nx = 1\n")))
    with pytest.raises(ConfigError, match=r"must end in .toml, .yaml or .yml"):
        read_config(str(write_run(tmp_path, "a.json", "{}")))
    with pytest.raises(ConfigError, match=r"layers\[0\] must be a table with `type`"):
        build_model({"layers": ["LSTM"]})
    result = train(write_run(tmp_path, "b.toml", "[data]\nnpz = 'data.npz'\n"))
    assert result.returncode == 2
    assert "needs a [model] section" in result.stderr
